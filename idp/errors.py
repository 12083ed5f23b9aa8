"""The root of idp's own errors; each package raises specific leaves, and only the web edge and the CLI
turn them into HTTP answers or messages.

Errors that belong to the script contract (WrongUsernameOrPassword, hashes.UnsupportedHash) and
Authlib's protocol errors stay outside: scripts and OAuth clients see those.
"""


class IdpError(Exception):
    """Something idp refuses or cannot do; the message says what, without secrets."""


class ConfigurationError(IdpError):
    """The configuration cannot run a provider; the message says how to fix it."""


class InvalidInput(IdpError):
    """A value an operator or user gave that we refuse; the message says why."""


class Unavailable(IdpError):
    """Something idp depends on (a legacy store, the sandbox, the mail server) did not answer."""
