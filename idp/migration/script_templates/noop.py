"""No-op scripts: the legacy store is disconnected, so no user is found there any more.

Configuration keys: none. Hash format: none.
Use after every user has moved over (`idp connections disconnect`): import stays on, so sign-ups,
logins and resets all run against idp's own store.
"""


def login(email, password, configuration):
    """Find no legacy user."""
    return None


def get_user(email, configuration):
    """Find no legacy user."""
    return None
