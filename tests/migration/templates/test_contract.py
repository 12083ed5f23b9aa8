"""Every shipped template keeps the script contract, including those no server here can run.

SQL Server, Oracle and MongoDB have no server on our machines, so their templates are checked only
for what can be checked without one: they compile, define both scripts with the right arguments,
document their configuration and hash format, never build SQL by formatting, and import their
driver lazily (the module loads without it).
"""

import ast
import importlib.util
import re
import sys

import pytest

from idp.connections import registry as connections
from idp.migration.sandbox import Pool, ScriptFailed

TEMPLATES = ["aspnet_membership", "mongodb", "mssql", "mysql", "noop", "oracle", "postgres", "sqlite",
             "webservice"]
DRIVERS = {"mssql": "pymssql", "oracle": "oracledb", "mongodb": "pymongo"}
ARGUMENTS = {"login": ["email", "password", "configuration"], "get_user": ["email", "configuration"]}
OPTIONAL = {"count_users": ["configuration"], "export_users": ["cursor", "configuration"]}
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET)\b", re.IGNORECASE | re.DOTALL)
PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|:\w+|\?")


def source(name: str) -> str:
    return connections.template(name)


def functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def configuration_keys(tree: ast.Module) -> set[str]:
    """Return the keys the script reads from `configuration`, by subscript or .get()."""
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and node.value.id == "configuration" and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "configuration" \
                and node.args and isinstance(node.args[0], ast.Constant):
            keys.add(node.args[0].value)
    return keys


def strings(node: ast.AST) -> str:
    """Return the literal text inside an expression (an f-string's constant parts included)."""
    return " ".join(n.value for n in ast.walk(node)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str))


def formatted_sql(tree: ast.Module) -> list[int]:
    """Return the lines where SQL text is built by f-string, %, + or .format()."""
    lines = []
    for node in ast.walk(tree):
        built = (
            isinstance(node, ast.JoinedStr)
            or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add))
            or (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "format")
        )
        if built and SQL.search(strings(node)):
            lines.append(node.lineno)
    return lines


@pytest.fixture(scope="module")
def pool():
    with Pool(size=1, timeout=10) as pool:
        yield pool


def test_every_store_the_design_names_has_a_template():
    assert connections.templates() == TEMPLATES


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_template_defines_both_scripts_with_the_right_arguments(name):
    text = source(name)
    for function in ARGUMENTS:
        connections.check_script(text, function)  # what `idp connections create --template` checks
    defined = functions(ast.parse(text))
    for function, arguments in ARGUMENTS.items():
        assert [a.arg for a in defined[function].args.args] == arguments
        assert ast.get_docstring(defined[function]), f"{name}.{function} has no docstring"


@pytest.mark.parametrize("name", [t for t in TEMPLATES if t != "noop"])
def test_the_template_can_count_and_export_its_users(name):
    text = source(name)
    for function in OPTIONAL:
        connections.check_script(text, function)
    defined = functions(ast.parse(text))
    for function, arguments in OPTIONAL.items():
        assert [a.arg for a in defined[function].args.args] == arguments
        assert ast.get_docstring(defined[function]), f"{name}.{function} has no docstring"
    assert re.search(r"count_users and export_users let", ast.get_docstring(ast.parse(text)) or "")


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_docstring_documents_every_configuration_key_and_the_hash_format(name):
    tree = ast.parse(source(name))
    doc = ast.get_docstring(tree) or ""
    assert re.search(r"^Configuration keys:", doc, re.MULTILINE), f"{name}: no 'Configuration keys:'"
    assert re.search(r"\b(Password hash|Hash format):", doc), f"{name}: no hash format"
    section = doc.split("Configuration keys:", 1)[1].split("\n\n", 1)[0]
    for key in configuration_keys(tree):
        assert re.search(rf"^\s+{re.escape(key)}\b", section, re.MULTILINE), f"{name}: `{key}` undocumented"


@pytest.mark.parametrize("name", [t for t in TEMPLATES if t != "noop"])
def test_both_scripts_return_one_profile_and_only_login_refuses(name):
    defined = functions(ast.parse(source(name)))

    def calls(function: str) -> set[str]:
        return {n.func.id for n in ast.walk(defined[function]) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name)}

    assert "_profile" in calls("login") and "_profile" in calls("get_user")
    assert "WrongUsernameOrPassword" in calls("login")
    assert "WrongUsernameOrPassword" not in calls("get_user")  # get_user says None for nobody


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_sql_is_built_by_formatting_and_every_query_takes_parameters(name):
    text = source(name)
    tree = ast.parse(text)
    assert formatted_sql(tree) == [], f"{name}: SQL built by formatting on lines {formatted_sql(tree)}"
    docstring = ast.get_docstring(tree, clean=False)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value != docstring \
                and re.search(r"\bWHERE\b", node.value):
            assert PLACEHOLDER.search(node.value), f"{name}: a query without parameters: {node.value!r}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_drivers_are_imported_lazily(name, monkeypatch):
    tree = ast.parse(source(name))
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for module in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]):
                assert module.split(".")[0] in sys.stdlib_module_names, f"{name} imports {module} at load"
    for driver in ("psycopg", "pymysql", "pymssql", "oracledb", "pymongo", "requests", "bcrypt", "idp"):
        monkeypatch.setitem(sys.modules, driver, None)  # importing it now raises ImportError
    namespace: dict[str, object] = {}
    exec(compile(source(name), f"<{name}>", "exec"), namespace)  # loads without any driver
    assert callable(namespace["login"]) and callable(namespace["get_user"])


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_a_missing_driver_is_a_failure_that_names_it(name, pool):
    driver = DRIVERS[name]
    if importlib.util.find_spec(driver) is not None:
        pytest.skip(f"{driver} is installed here")
    with pytest.raises(ScriptFailed, match=f"No module named '{driver}'"):
        pool.call(source(name), "get_user", ["ada@example.com", {"host": "db", "dsn": "db/x", "uri": "mongodb://db"}])
