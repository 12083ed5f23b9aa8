"""The Python appended to an action's source: it builds `event` and `api`, calls the action, and
returns the commands the action gave, for the provider to check and apply.

It runs in the jailed worker, so the provider trusts nothing it returns (runner.py checks it all).
"""

ENTRY = "__idp_post_login__"

SOURCE = '''


def __idp_post_login__(payload):
    """Run on_execute_post_login on the event in payload (JSON text); return the commands it gave."""
    import json

    class Record(dict):
        """A dict whose keys read as attributes too; a missing one reads as None."""

        def __getattr__(self, name):
            if name.startswith("__"):  # copy, pickle and friends probe for special methods
                raise AttributeError(name)
            return self.get(name)

    def wrap(value):
        if isinstance(value, dict):
            return Record((k, wrap(v)) for k, v in value.items())
        if isinstance(value, list):
            return [wrap(v) for v in value]
        return value

    data = json.loads(payload)
    commands = []

    class Tokens:
        def __init__(self, kind):
            self._kind = kind

        def set_custom_claim(self, name, value):
            commands.append([self._kind + "_claim", name, value])

    class AccessToken(Tokens):
        def add_scope(self, scope):
            commands.append(["add_scope", scope])

        def remove_scope(self, scope):
            commands.append(["remove_scope", scope])

    class Access:
        def deny(self, reason):
            commands.append(["deny", reason])

    class User:
        def set_app_metadata(self, key, value):
            commands.append(["app_metadata", key, value])

        def set_user_metadata(self, key, value):
            commands.append(["user_metadata", key, value])

    class Api:
        id_token = Tokens("id_token")
        access_token = AccessToken("access_token")
        access = Access()
        user = User()

    event = wrap(data["event"])
    event["secrets"] = Record(data["secrets"])
    on_execute_post_login(event, Api())
    return commands
'''
