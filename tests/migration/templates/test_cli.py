"""The admin's way in: `idp connections create --template` and `idp connections test` over live stores."""

from tests.migration.templates.conftest import Store


def run(app, *args: str):
    """Invoke the idp CLI in-process."""
    return app.test_cli_runner().invoke(args=list(args))


def test_a_connection_made_from_the_template_finds_agreeing_profiles(app, store: Store):
    settings = [arg for key, value in store.configuration.items() for arg in ("--config", f"{key}={value}")]
    made = run(app, "connections", "create", "--name", "legacy", "--migrate", "--template", store.template,
               *settings)
    assert made.exit_code == 0, made.output
    lin = store.person("lin")
    agree = run(app, "connections", "test", "legacy", "--email", lin.email.upper(),
                "--password", lin.password)
    assert agree.exit_code == 0, agree.output
    assert "the profiles agree" in agree.output and lin.email in agree.output
    assert lin.password not in agree.output
    wrong = run(app, "connections", "test", "legacy", "--email", lin.email, "--password", "not it")
    assert "login: wrong email or password" in wrong.output
    nobody = run(app, "connections", "test", "legacy", "--email", "nobody@example.com")
    assert "get_user: no user" in nobody.output
