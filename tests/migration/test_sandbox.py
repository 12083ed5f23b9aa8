"""The script sandbox, with real worker processes: answers, failures, limits, isolation, concurrency."""

import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from idp import ConfigurationError, create_app
from idp.migration.sandbox import (
    BadResult,
    Outcome,
    Pool,
    ScriptCrashed,
    ScriptError,
    ScriptFailed,
    ScriptTimeout,
    WrongCredentials,
)
from tests.migration.processes import alive, in_jail, jail_of
from tests.support import in_threads

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "hunter2-correct-horse"
CONFIGURATION = {"path": "/nowhere", "db_password": "legacy-db-secret"}

SCRIPT = '''
import os
import time

calls = 0


def login(email, password, configuration):
    global calls
    calls += 1
    if password != "hunter2-correct-horse":
        raise WrongUsernameOrPassword(email, "wrong password")
    return {"user_id": 42, "email": email, "calls": calls, "pid": os.getpid()}


def get_user(email, configuration):
    return None


def pid(*args):
    return {"pid": os.getpid()}


def nap(seconds):
    time.sleep(seconds)
    return {"pid": os.getpid()}
'''


@pytest.fixture
def pool() -> Iterator[Pool]:
    """A pool of two workers with a short timeout."""
    with Pool(size=2, timeout=3.0) as pool:
        yield pool


def fails(pool: Pool, source: str, function: str = "f", args: list | None = None) -> ScriptFailed:
    """Return the ScriptFailed that a call raises."""
    with pytest.raises(ScriptFailed) as caught:
        pool.call(source, function, args or [])
    return caught.value




def test_call_returns_the_scripts_value(pool: Pool) -> None:
    outcome = pool.call(SCRIPT, "login", ["lin@example.com", PASSWORD, CONFIGURATION])
    assert outcome.value is not None
    assert outcome.value["user_id"] == 42 and outcome.value["email"] == "lin@example.com"
    assert outcome.output == ""
    assert 0 < outcome.duration < 3
    assert pool.call(SCRIPT, "get_user", ["nobody@example.com", CONFIGURATION]).value is None


def test_globals_persist_between_calls_of_one_worker() -> None:
    with Pool(size=1) as pool:
        counts = [pool.call(SCRIPT, "login", ["a@example.com", PASSWORD, {}]).value["calls"]
                  for _ in range(3)]
    assert counts == [1, 2, 3]


def test_two_sources_do_not_share_globals() -> None:
    first = "secret = 'mine'\ndef f():\n    return {'seen': secret}\n"
    second = "def f():\n    return {'seen': globals().get('secret')}\n"
    with Pool(size=1) as pool:
        assert pool.call(first, "f", []).value == {"seen": "mine"}
        assert pool.call(second, "f", []).value == {"seen": None}


def test_wrong_username_or_password_is_an_answer_not_a_failure(pool: Pool) -> None:
    with pytest.raises(WrongCredentials) as caught:
        pool.call(SCRIPT, "login", ["lin@example.com", "wrong", CONFIGURATION])
    assert not isinstance(caught.value, ScriptError)
    # A script (or a helper it imports) may define its own class of that name, as Auth0 ports do.
    own = "class WrongUsernameOrPassword(Exception):\n    pass\ndef f():\n    raise WrongUsernameOrPassword\n"
    with pytest.raises(WrongCredentials):
        pool.call(own, "f", [])


def test_an_exception_is_reported_with_the_scripts_own_line(pool: Pool) -> None:
    source = ("import json\n\ndef f(text):\n    return json.loads(text)\n\n"
              "def g():\n    raise ValueError('no such table')\n")
    error = fails(pool, source, "g")
    assert (error.type_name, error.message, error.line) == ("ValueError", "no such table", 7)
    assert "line 7, in g" in error.traceback and "raise ValueError('no such table')" in error.traceback
    assert "ValueError: no such table (script line 7)" in str(error)
    deep = fails(pool, source, "f", ["{"])  # raised inside the json module: only the script's frame shows
    assert deep.type_name == "json.decoder.JSONDecodeError" and deep.line == 4
    assert "worker.py" not in deep.traceback and "json/decoder.py" not in deep.traceback


def test_syntax_errors_and_missing_functions_are_failures(pool: Pool) -> None:
    error = fails(pool, "def f():\n    return {\n\ndef g(:\n", "f")
    assert error.type_name == "SyntaxError" and error.line in (2, 4)
    error = fails(pool, "def login(email, password, configuration):\n    return None\n", "get_user", ["a"])
    assert error.type_name == "NameError" and "get_user" in error.message
    error = fails(pool, "x = 1\nraise RuntimeError('cannot connect at import')\ndef f():\n    pass\n")
    assert (error.type_name, error.line) == ("RuntimeError", 2)
    assert fails(pool, "import sys\ndef f():\n    sys.exit(2)\n").type_name == "SystemExit"


def test_the_password_never_appears_in_errors_or_output(pool: Pool) -> None:
    source = (
        "def login(email, password, configuration):\n"
        "    print('checking', password, configuration['db_password'])\n"
        "    return int(password)\n"
    )
    with pytest.raises(ScriptFailed) as caught:
        pool.call(source, "login", ["lin@example.com", PASSWORD, CONFIGURATION])
    error = caught.value
    for text in (str(error), error.message, error.traceback, error.output):
        assert PASSWORD not in text and "legacy-db-secret" not in text
    assert "invalid literal for int()" in error.message and "[redacted]" in error.output


def test_a_timeout_kills_the_worker_and_its_children_and_the_next_call_works() -> None:
    source = SCRIPT + (
        "import subprocess, sys\n"
        "def spawn_and_nap(seconds):\n"
        "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "    nap(seconds)\n"
    )
    with Pool(size=1, timeout=1.0) as pool:
        before = pool.call(source, "pid", []).worker
        jail = jail_of(before)
        started = time.monotonic()
        with pytest.raises(ScriptTimeout):
            pool.call(source, "spawn_and_nap", [30])
        assert time.monotonic() - started < 3
        deadline = time.monotonic() + 2
        while (alive(before) or in_jail(jail)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(before) and not in_jail(jail)
        assert pool.call(source, "pid", []).worker != before


def test_a_per_call_timeout_overrides_the_pools(pool: Pool) -> None:
    with pytest.raises(ScriptTimeout):
        pool.call(SCRIPT, "nap", [5], timeout=0.3)
    assert pool.call(SCRIPT, "nap", [0.01], timeout=2).value


def test_waiting_for_a_free_worker_is_bounded_by_the_timeout() -> None:
    source = ("import socket, time\n"  # the script says it is busy by connecting to the test
              "def f(configuration):\n"
              "    socket.create_connection((configuration['host'], configuration['port'])).close()\n"
              "    time.sleep(1)\n    return {}\n")
    with Pool(size=1, timeout=5.0) as pool, socket.create_server(("127.0.0.1", 0)) as busy_signal:
        configuration = {"host": "127.0.0.1", "port": busy_signal.getsockname()[1]}
        results: list[object] = []
        busy = threading.Thread(target=lambda: results.append(pool.call(source, "f", [configuration]).value))
        busy.start()
        busy_signal.settimeout(5)
        busy_signal.accept()[0].close()
        started = time.monotonic()
        with pytest.raises(ScriptTimeout, match="no script worker came free"):
            pool.call(SCRIPT, "pid", [], timeout=0.2)
        assert time.monotonic() - started < 1
        busy.join()
        assert results == [{}]  # the busy worker was not disturbed


def test_memory_beyond_the_limit_fails_the_call_but_not_the_pool() -> None:
    hog = "def f():\n    hog = []\n    while True:\n        hog.append(bytearray(16 * 1024 * 1024))\n"
    with Pool(size=1, memory_mb=200, timeout=5.0) as pool:
        with pytest.raises((ScriptCrashed, ScriptFailed)) as caught:
            pool.call(hog, "f", [])
        if isinstance(caught.value, ScriptFailed):
            assert caught.value.type_name == "MemoryError"
        assert pool.call(SCRIPT, "pid", []).value


def test_each_call_may_use_cpu_seconds_of_cpu_time() -> None:
    source = (
        "import resource\n"
        "def f():\n"
        "    usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "    soft, _ = resource.getrlimit(resource.RLIMIT_CPU)\n"
        "    return {'left': soft - usage.ru_utime - usage.ru_stime}\n"
    )
    with Pool(size=1, cpu_seconds=7) as pool:
        for _ in range(3):  # the limit moves forward: earlier calls' CPU time does not count
            assert 7 <= pool.call(source, "f", []).value["left"] <= 8


def test_a_cpu_bound_loop_hits_the_cpu_limit_or_the_timeout() -> None:
    with Pool(size=1, cpu_seconds=1, timeout=4.0) as pool:
        pool.call(SCRIPT, "pid", [])
        started = time.monotonic()
        with pytest.raises((ScriptCrashed, ScriptTimeout)) as caught:  # a loaded machine may time out first
            pool.call("def f():\n    while True:\n        pass\n", "f", [])
        assert time.monotonic() - started < 5
        if isinstance(caught.value, ScriptCrashed):
            assert "SIGXCPU" in str(caught.value)
        assert pool.call(SCRIPT, "pid", []).value


def test_os_exit_is_a_crash_and_the_worker_is_replaced(pool: Pool) -> None:
    source = "import os\ndef f():\n    print('bye')\n    os._exit(3)\n"
    with pytest.raises(ScriptCrashed, match="exit status 3") as caught:
        pool.call(source, "f", [])
    assert caught.value.output == "bye\n"
    assert pool.call(SCRIPT, "pid", []).value


def test_the_environment_holds_none_of_the_providers_secrets(
        pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_SECRET_KEY", "provider-secret")
    monkeypatch.setenv("IDP_DATABASE_URL", "postgresql://idp:secret@db/idp")
    monkeypatch.setenv("DATABASE_URL", "postgresql://idp:secret@db/idp")
    source = ("import os\ndef f():\n    return {'env': dict(os.environ), 'cwd': os.getcwd(),\n"
              "            'dirs': [os.path.isdir(os.environ[name]) for name in ('HOME', 'TMPDIR')]}\n")
    value = pool.call(source, "f", []).value  # its first worker starts now, under these variables
    assert value is not None
    env = value["env"]
    assert set(env) <= {"PATH", "LANG", "HOME", "TMPDIR"}
    assert "provider-secret" not in json.dumps(env)
    assert env["LANG"] == "C.UTF-8" and value["dirs"] == [True, True]
    cwd = Path(value["cwd"])
    assert REPO not in (cwd, *cwd.parents)


def test_printed_output_is_captured_and_cannot_forge_an_answer(pool: Pool) -> None:
    forged = json.dumps({"ok": True, "value": {"user_id": "forged"}})
    source = (
        "import os, struct, sys\n"
        "def f():\n"
        f"    print({forged!r})\n"
        f"    sys.stdout.buffer.write(struct.pack('>I', {len(forged)}) + {forged!r}.encode())\n"
        "    print('to stderr', file=sys.stderr)\n"
        "    os.write(1, b'\\nstraight to fd 1\\n')\n"
        "    return {'user_id': 'real'}\n"
    )
    outcome = pool.call(source, "f", [])
    assert outcome.value == {"user_id": "real"}
    assert forged in outcome.output and "to stderr" in outcome.output and "straight to fd 1" in outcome.output


def test_output_is_truncated(pool: Pool) -> None:
    outcome = pool.call("def f():\n    print('x' * 1_000_000)\n    return None\n", "f", [])
    assert len(outcome.output) < 70_000 and outcome.output.endswith("bytes of output dropped]")


def test_values_that_are_not_json_are_bad_results(pool: Pool) -> None:
    for body in ("import datetime\n    return {'at': datetime.datetime.now()}", "return {'x': float('nan')}",
                 "return {1, 2}", "return b'bytes'"):
        with pytest.raises(BadResult):
            pool.call(f"def f():\n    {body}\n", "f", [])
    assert pool.call(SCRIPT, "pid", []).value  # the worker survives
    # Any JSON value comes back as it is: each caller checks the shape its function promises.
    for body, value in (("return 'lin@example.com'", "lin@example.com"), ("return [1, 2]", [1, 2]),
                        ("return 2500", 2500), ("return None", None)):
        assert pool.call(f"def f():\n    {body}\n", "f", []).value == value


def test_concurrent_calls_share_a_small_pool() -> None:
    with Pool(size=2, timeout=5.0) as pool:
        results: list[Outcome] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                results.append(pool.call(SCRIPT, "nap", [0.05]))
            except BaseException as error:  # reported below, with the thread's result
                errors.append(error)

        in_threads(*[run] * 8)
    assert not errors and len(results) == 8
    assert len({result.worker for result in results}) <= 2


def test_workers_are_recycled_after_max_calls_and_max_age() -> None:
    with Pool(size=1, max_calls=2) as pool:
        pids = [pool.call(SCRIPT, "pid", []).worker for _ in range(3)]
    assert pids[0] == pids[1] != pids[2]
    with Pool(size=1, max_age=0.2) as pool:
        first = pool.call(SCRIPT, "pid", []).worker
        time.sleep(0.3)
        assert pool.call(SCRIPT, "pid", []).worker != first


def test_a_closed_pool_refuses_calls_and_stops_its_workers() -> None:
    pool = Pool(size=1)
    pid = pool.call(SCRIPT, "pid", []).worker
    pool.close()
    assert not alive(pid)
    with pytest.raises(ScriptError, match="closed"):
        pool.call(SCRIPT, "pid", [])


def test_arguments_must_be_json() -> None:
    with Pool(size=1) as pool, pytest.raises(TypeError, match="JSON"):
        pool.call(SCRIPT, "login", ["a@example.com", b"bytes are not JSON", {}])


def test_a_forked_child_starts_workers_of_its_own(pool: Pool) -> None:
    parent_worker = pool.call(SCRIPT, "pid", []).worker
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+ warns about fork with threads
        child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, which must never return into pytest
        code = 1
        try:
            os.close(read)
            worker = pool.call(SCRIPT, "pid", []).worker
            os.write(write, json.dumps({"worker": worker}).encode())
            pool.close()
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = json.loads(pipe.read() or b"{}")
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report["worker"] != parent_worker
    assert pool.call(SCRIPT, "pid", []).worker == parent_worker  # the parent's worker is untouched


@pytest.mark.parametrize("notes", [b'{"notes": 5}', b'{"notes": [', b'{"notes":"x"}'])
def test_a_forged_notes_message_is_a_crash(pool: Pool, notes: bytes) -> None:
    """A script writing a partial jail's first message to its response channel breaks the protocol."""
    source = ("import os, struct, sys\ndef f(body):\n"
              "    os.write(int(sys.argv[2]), struct.pack('>I', len(body)) + body.encode())\n"
              "    return {'ok': True}\n")
    with pytest.raises(ScriptCrashed):
        pool.call(source, "f", [notes.decode()])
    assert pool.call(SCRIPT, "pid", []).value


@pytest.mark.parametrize("setting", [{"SCRIPT_JAIL": "Partial"}, {"SCRIPT_NETWORK": "all"},
                                     {"SCRIPT_PROCESSES": "many"}])
def test_create_app_refuses_a_bad_jail_setting(tmp_path: Path, setting: dict[str, str]) -> None:
    """At start-up, not as a 500 on the first sign-in."""
    config = {"SECRET_KEY": "x", "ISSUER": "http://localhost", "INSTANCE_PATH": str(tmp_path / "instance"),
              "DATABASE_URL": f"sqlite:///{tmp_path}/idp.sqlite3", **setting}
    with pytest.raises(ConfigurationError, match="script jail setting"):
        create_app(config, serving=False)
    assert create_app({k: v for k, v in config.items() if k not in setting}, serving=False)
