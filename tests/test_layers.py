"""idp's packages import each other in one direction only, and the script machinery stays free of Flask."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "idp"

# Lowest first. A module may import modules of its own layer and of the layers below, never above:
# no two domains import each other, directly or round a loop. Only the wiring sees everything.
LAYERS = [
    {"errors", "redact", "cache", "config", "db", "edge", "web", "counters", "mail_queue", "production"},
    {"events"},  # log events in Auth0's shape: written by the layers above, read by management
    {"keys"},
    {"mail"},
    {"migration"},  # runs a connection's scripts: the sandbox, jail, worker, hashes, profiles
    {"users"},
    {"connections"},  # the user stores: native, and migrating through the scripts
    {"actions"},  # post-login actions, run in the script sandbox after each sign-in
    {"oauth"},
    {"pages"},
    {"management"},  # the management API (/api/v2/, Auth0's shapes)
    {"admin"},  # the admin dashboard (/admin/), a first-party client of idp
    {"commands"},
    {"__init__", "cli"},  # create_app and the `idp` entry point: the wiring
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
# What the sandbox side must never load: it runs beside, or inside, a jailed worker.
WEB = ("flask", "werkzeug", "sqlalchemy", "flask_sqlalchemy", "flask_wtf", "authlib")


def _unit(module: str) -> str:
    """Return the layer unit of a dotted module name under idp ("idp.users.models" -> "users")."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py")
            if "schema" not in p.relative_to(PACKAGE).parts[:1] and "script_templates" not in p.parts]


def _imports(path: Path) -> set[str]:
    """Return every module a file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "idp")
    return found


def _name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(relative.parts).removesuffix(".__init__")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path: Path):
    unit = _unit(_name(path))
    assert unit in RANK, f"{unit} belongs in a layer"
    upward = sorted(m for m in _imports(path)
                    if m.startswith("idp.") and m != "idp" and RANK.get(_unit(m), -1) > RANK[unit])
    assert not upward, f"{_name(path)} imports a layer above its own: {upward}"


def test_every_unit_has_a_layer():
    units = {_unit(_name(p)) for p in _modules()}
    assert units <= set(RANK), units - set(RANK)
    assert set(RANK) - {"__init__", "cli"} <= units  # no stale names left in the table


@pytest.mark.parametrize("path", sorted((PACKAGE / "migration").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_script_side_never_loads_flask(path: Path):
    web = sorted(m for m in _imports(path) if m.split(".")[0] in WEB)
    idp_web = sorted(m for m in _imports(path)
                     if m.startswith("idp.") and _unit(m) not in ("migration", "errors", "redact"))
    assert not web and not idp_web, f"{path.name} imports {web + idp_web}"
