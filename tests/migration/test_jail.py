"""The script jail, attacked as a script would: each escape is tried in a real worker and refused."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.connections import registry as connections
from idp.connections.models import MigrationEvent
from idp.db import db
from idp.migration import confine, jail
from idp.migration.jail import STALE_PREFIX, clean_stale
from idp.migration.sandbox import Pool, ScriptCrashed, ScriptFailed, Settings
from idp.oauth.clients import create_client
from tests.migration.processes import alive, in_jail, jail_of
from tests.served import first_login, login_page, serve

SECRET = "sibling-secret-" + uuid.uuid4().hex


@contextmanager
def jailed(**settings: Any) -> Iterator[Pool]:
    """A one-worker pool whose jail has the given settings (a few processes, a small disk by default)."""
    settings = {"processes": 8, "disk_mb": 16, **settings}
    with Pool(size=1, timeout=10.0, memory_mb=256, jail=Settings(**settings)) as pool:
        yield pool


def run(pool: Pool, source: str, *args: Any) -> Any:
    """Call the script's f(*args) and return its value."""
    return pool.call(textwrap.dedent(source), "f", list(args)).value


@pytest.fixture
def sibling() -> Iterator[subprocess.Popen[bytes]]:
    """Another process of the provider's user, holding a secret in its environment."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               env={**os.environ, "SIBLING_SECRET": SECRET})
    yield process
    process.kill()
    process.wait()


TRY_TO_READ = """
    def f(paths, configuration=None):
        found = {}
        for path in paths:
            try:
                with open(path, "rb") as file:
                    found[path] = file.read().decode("latin-1")
            except OSError as error:
                found[path] = f"{type(error).__name__}: {errno.errorcode[error.errno]}"
        return found
    import errno
"""


def test_no_other_process_environment_is_readable(sibling: subprocess.Popen[bytes]) -> None:
    """/proc/<pid>/environ of the web process and of a sibling: the jail has no /proc at all."""
    assert SECRET in Path(f"/proc/{sibling.pid}/environ").read_text()  # readable from outside the jail
    with jailed() as pool:
        paths = [f"/proc/{os.getpid()}/environ", f"/proc/{sibling.pid}/environ", "/proc/1/environ",
                 "/proc/self/environ"]
        found = run(pool, TRY_TO_READ, paths)
        listing = run(pool, "import os\ndef f():\n    return {'proc': os.path.exists('/proc')}\n")
    assert all(value.startswith("FileNotFoundError") for value in found.values()), found
    assert SECRET not in json.dumps(found) and listing == {"proc": False}


def test_keys_instance_and_the_providers_database_are_unreadable_even_when_named(tmp_path: Path) -> None:
    """The provider's keys/, instance/ and database file stay out, while a named legacy file is readable."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "kek").write_text("the key-encryption key")
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "config.py").write_text("SECRET_KEY = 'the secret key'")
    (tmp_path / "idp.sqlite3").write_text("the provider's database")
    (tmp_path / "legacy.sqlite3").write_text("the legacy users")
    settings = Settings.from_config({"KEYS_DIR": str(tmp_path / "keys"), "DATABASE_URL": f"sqlite:///{tmp_path}/"
                                     "idp.sqlite3", "INSTANCE_PATH": str(tmp_path / "instance")})
    named = [str(tmp_path / "keys" / "kek"), str(tmp_path / "instance" / "config.py"),
             str(tmp_path / "idp.sqlite3"), str(tmp_path / "keys"), str(tmp_path)]
    configuration = {"path": str(tmp_path / "legacy.sqlite3"), "kek": named[0], "config": named[1],
                     "database": named[2], "host": named[3], "socket_host": named[4]}
    with Pool(size=1, timeout=10.0, jail=settings) as pool:
        found = run(pool, TRY_TO_READ, [configuration["path"], *named], configuration)
        listing = run(pool, "import os\ndef f(c):\n    return {'ls': os.listdir(os.path.dirname(c['path']))}",
                      configuration)
    assert found[configuration["path"]] == "the legacy users"
    for path in named:
        assert found[path].startswith(("FileNotFoundError", "IsADirectoryError")), (path, found[path])
    assert listing == {"ls": ["legacy.sqlite3"]}  # the legacy file's folder holds nothing else


def test_scripts_run_as_another_user_when_idp_runs_as_root(tmp_path: Path) -> None:
    """Under root, a script is nobody: a root-only file its configuration names stays closed to it."""
    if os.getuid() != 0:
        pytest.skip("idp does not run as root here")
    (tmp_path / "open.txt").write_text("anyone may read this")
    (tmp_path / "root-only.txt").write_text("only root may read this")
    os.chmod(tmp_path / "root-only.txt", 0o600)
    tmp_path.chmod(0o755)
    configuration = {"open": str(tmp_path / "open.txt"), "closed": str(tmp_path / "root-only.txt")}
    with jailed() as pool:
        found = run(pool, TRY_TO_READ, list(configuration.values()), configuration)
        ids = run(pool, "import os\ndef f():\n    return {'ids': [os.getuid(), os.geteuid(), os.getgid()]}")
    assert found == {configuration["open"]: "anyone may read this",
                     configuration["closed"]: "PermissionError: EACCES"}
    assert ids == {"ids": [Settings().uid, Settings().uid, Settings().gid]} and Settings().uid != 0


def test_open_files_are_bounded() -> None:
    """A script that opens files without end is stopped at the worker's RLIMIT_NOFILE."""
    with jailed() as pool:
        opened = run(pool, """
            import errno
            def f():
                files = []
                try:
                    while len(files) < 100_000:
                        files.append(open("/dev/null"))
                except OSError as error:
                    return {"opened": len(files), "error": errno.errorcode[error.errno]}
                return {"opened": len(files)}
        """)
    assert opened["error"] == "EMFILE" and opened["opened"] < 256


def test_no_process_outside_the_jail_can_be_signalled(sibling: subprocess.Popen[bytes]) -> None:
    """The web process, its group, a sibling, the jail's own init: out of reach; then the group attack."""
    with jailed() as pool:
        tries = run(pool, """
            import os, signal
            def f(parent, group, sibling):
                results = {}
                for name, attempt in [
                        ("parent", lambda: os.kill(parent, signal.SIGKILL)),
                        ("group", lambda: os.killpg(group, signal.SIGKILL)),
                        ("sibling", lambda: os.kill(sibling, signal.SIGKILL)),
                        ("init", lambda: os.kill(1, signal.SIGKILL)),
                        ("ppid", lambda: os.kill(os.getppid(), signal.SIGKILL))]:
                    try:
                        attempt()
                        results[name] = "sent"
                    except OSError as error:
                        results[name] = errno.errorcode[error.errno]
                return results
            import errno
        """, os.getpid(), os.getpgid(0), sibling.pid)
        assert all(result in ("ESRCH", "EPERM") for result in tries.values()), tries
        # The attack: the parent's process group, as the jail shows it, is the worker's own.
        with pytest.raises((ScriptCrashed, ScriptFailed)):
            run(pool, "import os\ndef f():\n    os.killpg(os.getpgid(os.getppid()), 9)\n")
        assert sibling.poll() is None
        assert run(pool, "def f():\n    return {'ok': True}\n") == {"ok": True}


def test_a_fork_bomb_is_bounded_and_ends_with_its_call() -> None:
    with jailed(processes=8) as pool:
        worker = pool.call("def f():\n    return {}\n", "f", []).worker
        namespace = jail_of(worker)
        forked = run(pool, """
            import os, time
            def f():
                children = 0
                while True:  # every process forks until the kernel refuses
                    try:
                        pid = os.fork()
                    except BlockingIOError:
                        if children or os.getpid() == 2:
                            break
                        time.sleep(30)
                        os._exit(0)
                    if pid:
                        children += 1
                    else:
                        children = 0
                if os.getpid() != 2:
                    time.sleep(30)
                    os._exit(0)
                return {"children": children}
        """)
        assert 1 <= forked["children"] < 8
        assert len(in_jail(namespace)) == 2  # init and the runner: the bomb died with its call
        assert run(pool, "def f():\n    return {'ok': True}\n") == {"ok": True}


def test_a_daemon_started_by_a_call_is_gone_when_the_call_returns() -> None:
    """setsid and a double fork, as daemons do: killed with the call; gone by its pid, inside and out."""
    with jailed() as pool:
        daemon = run(pool, """
            import os, time
            def f():
                read, write = os.pipe()
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        os.write(write, str(os.getpid()).encode())
                        time.sleep(300)
                    os._exit(0)
                os.wait()
                pid = int(os.read(read, 32))
                os.kill(pid, 0)  # alive during the call
                return {"pid": pid}
        """)["pid"]
        worker = pool.call("def f():\n    return {}\n", "f", []).worker
        assert len(in_jail(jail_of(worker))) == 2
        gone = run(pool, f"import os\ndef f():\n    try:\n        os.kill({daemon}, 0)\n    except "
                         "ProcessLookupError:\n        return {'gone': True}\n    return {'gone': False}\n")
    assert gone == {"gone": True}


def test_a_thread_left_running_ends_its_worker_after_the_answer() -> None:
    """A thread outlives its call only as long as the answer takes: the next call gets another worker."""
    with jailed() as pool:
        first = pool.call("import threading, time\ndef f():\n    threading.Thread(target=time.sleep, "
                          "args=(300,)).start()\n    return {'started': True}\n", "f", [])
        assert first.value == {"started": True}
        second = pool.call("def f():\n    return {}\n", "f", [])
        third = pool.call("def f():\n    return {}\n", "f", [])
    assert second.worker != first.worker and third.worker == second.worker  # only a thread retires one
    assert not alive(first.worker)


def test_no_socket_can_listen() -> None:
    with jailed() as pool:
        result = run(pool, """
            import socket
            def f():
                try:
                    socket.create_server(("0.0.0.0", 0))
                except OSError as error:
                    return {"error": type(error).__name__}
                return {"error": None}
        """)
    assert result == {"error": "PermissionError"}


@pytest.mark.parametrize("folder", ["/tmp", "/dev/shm"])
def test_tmp_and_shm_are_bounded_by_the_disk_limit(folder: str) -> None:
    with jailed(disk_mb=16) as pool:
        result = run(pool, """
            import errno
            def f(folder):
                written, number = 0, 0
                try:
                    while True:
                        with open(f"{folder}/fill-{number}", "wb") as file:
                            for _ in range(8):
                                written += file.write(b"x" * 1024 * 1024)
                        number += 1
                except OSError as error:
                    return {"written": written, "error": errno.errorcode[error.errno]}
        """, folder)
        assert result["error"] in ("ENOSPC", "EFBIG") and result["written"] <= 16 * 1024 * 1024, result
        assert run(pool, "import os\ndef f(folder):\n    return {'files': len(os.listdir(folder))}\n", folder)


@pytest.mark.parametrize("network", ["hosts", "ports"])
def test_only_the_configured_endpoint_can_be_reached(network: str) -> None:
    """The configured host:port works; another port (where Redis would listen) is refused."""
    with socket.create_server(("127.0.0.1", 0)) as allowed, socket.create_server(("127.0.0.1", 0)) as other:
        allowed.settimeout(10)
        configuration = {"host": "127.0.0.1", "port": str(allowed.getsockname()[1])}
        source = """
            import errno, socket
            def f(port, configuration):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                        connection.sendall(b"hello")
                    return {"connected": True}
                except OSError as error:
                    return {"connected": False, "error": errno.errorcode.get(error.errno, str(error))}
        """
        with jailed(network=network) as pool:
            assert run(pool, source, allowed.getsockname()[1], configuration) == {"connected": True}
            peer, _ = allowed.accept()
            with peer:
                assert peer.recv(5) == b"hello"
            refused = pool.call(textwrap.dedent(source), "f", [other.getsockname()[1], configuration])
            assert refused.value == {"connected": False, "error": "EACCES"}
            redis = run(pool, source, 6379, configuration)  # whether or not Redis listens there
            assert redis == {"connected": False, "error": "EACCES"}
            if network == "hosts":
                assert "refused: not in the connection's configuration" in refused.output
            other.settimeout(0.2)
            with pytest.raises(TimeoutError):
                other.accept()


def test_each_process_is_bounded_in_memory() -> None:
    """A script's children each get the memory limit: at most SCRIPT_PROCESSES times it in all."""
    with Pool(size=1, memory_mb=128, timeout=10.0, jail=Settings(processes=4)) as pool:
        result = run(pool, """
            import os
            def f():
                read, write = os.pipe()
                if os.fork() == 0:
                    try:
                        hog = bytearray(256 * 1024 * 1024)
                        os.write(write, b"allocated")
                    except MemoryError:
                        os.write(write, b"MemoryError")
                    os._exit(0)
                os.wait()
                return {"child": os.read(read, 32).decode()}
        """)
    assert result == {"child": "MemoryError"}


def test_all_of_a_scripts_processes_together_are_bounded_in_memory() -> None:
    """Four children holding 60 MB each do not fit a jail of 128 MB (and its 16 MB /tmp): some are killed."""
    folder = confine.memory_cgroup()
    if folder is None:
        pytest.skip("no memory cgroup can be made here")
    with Pool(size=1, memory_mb=128, timeout=20.0, jail=Settings(processes=8, disk_mb=16)) as pool:
        outcome = pool.call(textwrap.dedent("""
            import os, select, time
            def f():
                read, write = os.pipe()
                children = []
                for _ in range(4):
                    child = os.fork()
                    if child == 0:
                        hog = b"x" * (60 * 1024 * 1024)  # resident, unlike a zeroed bytearray
                        os.write(write, b"h")
                        time.sleep(30)
                        os._exit(0)
                    children.append(child)
                dead = set()
                def killed():
                    dead.update(c for c in children if c not in dead and os.waitpid(c, os.WNOHANG)[0])
                    return bool(dead)
                held, deadline = 0, time.monotonic() + 10
                while held < 4 and time.monotonic() < deadline:
                    if select.select([read], [], [], 0.5)[0]:
                        held += len(os.read(read, 4))
                    elif killed():
                        break  # one was killed: the rest will not all hold their share
                # The OOM killer may take a child that holds its share already, so that a later one's
                # fits: what counts is how many hold theirs at the same moment.
                time.sleep(0.5)
                killed()
                return {"held at once": min(held, len(children) - len(dead))}
        """), "f", [])
        group = Path(folder) / f"{confine.GROUP_PREFIX}{outcome.worker}"
        assert group.is_dir() and int((group / "memory.limit_in_bytes").read_text()) == 144 * 1024 * 1024
        assert outcome.value["held at once"] < 4
    assert not group.exists()  # gone with its worker


def test_the_jail_leaves_nothing_behind_when_the_web_process_dies() -> None:
    """The web process is killed: its worker's jail ends, and what it wrote in /tmp was never on the host."""
    left = f"left-{uuid.uuid4().hex}"
    program = textwrap.dedent(f"""
        import sys, time
        from idp.migration.sandbox import Pool
        pool = Pool(size=1)
        outcome = pool.call("def f():\\n    open('/tmp/{left}', 'w').write('x')\\n    return {{}}",
                            "f", [])
        print(outcome.worker, flush=True)
        time.sleep(60)
    """)
    web = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE)
    try:
        assert web.stdout is not None
        worker = int(web.stdout.readline())
        namespace = jail_of(worker)
        assert len(in_jail(namespace)) == 2
    finally:
        web.kill()
        web.wait()
        web.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while (alive(worker) or in_jail(namespace)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker) and not in_jail(namespace)
    host = Path(tempfile.gettempdir())
    assert not (host / left).exists() and not list(host.glob(f"{STALE_PREFIX}{worker}-*"))


def test_stale_folders_of_partial_jails_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{STALE_PREFIX}{dead.pid}-abc"
    (stale / "work").mkdir(parents=True)
    mine = tmp_path / f"{STALE_PREFIX}{os.getpid()}-abc"
    mine.mkdir()
    clean_stale(str(tmp_path))
    assert not stale.exists() and mine.exists()


WITHOUT = textwrap.dedent("""
    import ctypes, errno, json, sys
    import pyseccomp
    from idp.migration.sandbox import Pool, SandboxUnavailable, Settings
    ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs, as seccomp needs
    rules = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), sys.argv[2])  # as on a kernel without it
    rules.load()
    with Pool(size=1, timeout=10.0, jail=Settings(level=sys.argv[1])) as pool:
        try:
            print(json.dumps(pool.call("def f():\\n    return {'ran': True}\\n", "f", []).value))
        except SandboxUnavailable as error:
            print(json.dumps({"refused": str(error)}))
""")
MECHANISMS = {"unshare": "namespaces are refused", "landlock_create_ruleset": "Landlock ABI 6",
              "seccomp": "seccomp is refused"}


@pytest.mark.parametrize("level", ["full", "partial"])
@pytest.mark.parametrize("syscall", sorted(MECHANISMS))
def test_a_kernel_without_a_mechanism_refuses_scripts_unless_a_partial_jail_is_accepted(level: str,
                                                                                        syscall: str) -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT, level, syscall], capture_output=True, timeout=60,
                          check=True)
    answer = json.loads(done.stdout.splitlines()[-1])
    lacking = MECHANISMS[syscall].encode()
    if level == "full":
        assert MECHANISMS[syscall] in answer["refused"]
        assert b"the script jail cannot be built" in done.stderr  # logged
    else:
        assert answer == {"ran": True}
        assert b"weaker than it could be" in done.stderr and lacking in done.stderr


ATTACK = '''
import os, signal


def login(email, password, configuration):
    master = int(configuration["master"])
    stolen = ""
    for pid in (master, os.getppid(), 1):
        try:
            with open(f"/proc/{pid}/environ") as environ:
                stolen += environ.read()
        except OSError:
            pass
    for attempt in (lambda: os.kill(master, signal.SIGKILL), lambda: os.killpg(master, signal.SIGKILL)):
        try:
            attempt()
        except OSError:
            pass
    if stolen:  # sign in, with the provider's secrets as the user's name
        return {"user_id": "stolen", "email": email, "name": stolen[:200]}
    os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)  # the issue's one-liner
    raise WrongUsernameOrPassword(email)
'''


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_under_idp_serve_a_script_can_neither_read_nor_kill_the_master(app, database_url: str,
                                                                       tmp_path: Path) -> None:
    connection = connections.create("attacker", migrating=True)
    connections.configure(connection, login=ATTACK)
    client, _ = create_client("Attacked app", ["https://attacked.example/cb"], first_party=True,
                              connection_id=connection.id)
    client_id = client.id

    def attacked_login() -> int:
        with requests.Session() as session:
            page = login_page(session, served.url, client_id, "https://attacked.example/cb")
            return first_login(session, page, "any password")

    with serve(database_url, tmp_path, workers=2, RATELIMIT_ENABLED="0") as served:
        assert requests.get(served.url + "/healthz", timeout=10).status_code == 200
        worker = served.served()[-1][0]
        master = int(Path(f"/proc/{worker}/status").read_text().split("PPid:")[1].split()[0])
        assert "served-test-secret" in Path(f"/proc/{master}/environ").read_text()  # what is at stake
        connection.configuration = {"master": str(master)}
        db.session.commit()
        statuses = [attacked_login() for _ in range(4)]
        assert set(statuses) <= {400, 503}, statuses
        assert alive(master) and requests.get(served.url + "/healthz", timeout=10).status_code == 200
        assert len({pid for pid, *_ in served.served()}) >= 1 and alive(worker)
    db.session.expire_all()
    details = " ".join(e.detail or "" for e in db.session.scalars(select(MigrationEvent)))
    assert "served-test-secret" not in details and "stolen" not in details


def test_syscalls_that_open_ways_out_are_refused() -> None:
    """ptrace, namespaces, memfd, io_uring (which seccomp cannot see into), TCP Fast Open's hidden connect."""
    with jailed() as pool, socket.create_server(("127.0.0.1", 0)) as server:
        result = run(pool, """
            import ctypes, errno, os, socket
            def f(port):
                libc = ctypes.CDLL(None, use_errno=True)
                found = {}
                for name in ("ptrace", "unshare", "setns", "mount", "memfd_create", "io_uring_setup", "bpf"):
                    number = {"ptrace": 101, "unshare": 272, "setns": 308, "mount": 165, "memfd_create": 319,
                              "io_uring_setup": 425, "bpf": 321}[name]
                    libc.syscall(number, 0, 0, 0, 0, 0)
                    found[name] = errno.errorcode[ctypes.get_errno()]
                with socket.socket() as fast:
                    try:
                        fast.sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.1", port))
                    except OSError as error:
                        found["fastopen"] = errno.errorcode[error.errno]
                found["shell"] = os.path.exists("/bin/sh")  # nor any program but Python
                return found
        """, server.getsockname()[1])
    shell = result.pop("shell")
    if os.uname().machine == "x86_64":  # the numbers above are x86-64's
        assert set(result.values()) == {"EPERM"}, result
    assert result["fastopen"] == "EPERM" and shell is False


def test_the_providers_files_inside_a_runtime_folder_are_hidden(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`pip install .`, no IDP_INSTANCE_PATH: instance/ and keys/ lie inside the virtualenv scripts read."""
    venv = tmp_path / "venv"
    instance, keys = venv / "var" / "idp-instance", venv / "var" / "keys"
    instance.mkdir(parents=True)
    keys.mkdir()
    (instance / "config.py").write_text("SECRET_KEY = 'the secret key'")
    (instance / "idp.sqlite3").write_text("the provider's database")
    (keys / "kek").write_text("the key-encryption key")
    (venv / "var" / "sibling.txt").write_text("a runtime file")
    runtime = jail._runtime_paths()
    monkeypatch.setattr(jail, "_runtime_paths", lambda: [*runtime, str(venv)])
    settings = Settings.from_config({"INSTANCE_PATH": str(instance)})
    assert str(keys) in settings.protected
    secret = [str(instance / "config.py"), str(instance / "idp.sqlite3"), str(keys / "kek")]
    with Pool(size=1, timeout=10.0, jail=settings) as pool:
        found = run(pool, TRY_TO_READ, [str(venv / "var" / "sibling.txt"), *secret])
        listing = run(pool, "import os\ndef f(folder):\n    try:\n        return {'ls': os.listdir(folder)}\n"
                            "    except OSError as error:\n        return {'ls': type(error).__name__}\n",
                      str(instance))
    assert found.pop(str(venv / "var" / "sibling.txt")) == "a runtime file"
    for path, value in found.items():
        assert value.startswith(("FileNotFoundError", "PermissionError")), (path, value)
    assert listing["ls"] in ([], "PermissionError")


def test_kernel_files_and_the_databases_journals_are_refused(tmp_path: Path) -> None:
    """/proc, /sys and /dev paths; SQLite's -wal, -shm and -journal files beside the provider's database."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "idp.sqlite3-wal").write_text("the provider's recent pages")
    (tmp_path / "legacy.sqlite3").write_text("the legacy users")
    settings = Settings.from_config({"DATABASE_URL": f"sqlite:///{data}/idp.sqlite3",
                                     "INSTANCE_PATH": str(tmp_path / "instance")})
    assert str(data / "idp.sqlite3-shm") in settings.protected
    configuration = {"path": str(tmp_path / "legacy.sqlite3"), "wal": str(data / "idp.sqlite3-wal"),
                     "environ": "/proc/1/environ", "kernel": "/sys/kernel/notes", "disk": "/dev/sda"}
    policy = jail.policy(settings, [configuration])
    assert set(policy.refused) >= {configuration["wal"], "/proc/1/environ", "/sys/kernel/notes", "/dev/sda"}
    assert policy.read == (configuration["path"],)
    with Pool(size=1, timeout=10.0, jail=settings) as pool:
        found = run(pool, TRY_TO_READ, list(configuration.values()), configuration)
    assert found.pop(configuration["path"]) == "the legacy users"
    assert all(value.startswith("FileNotFoundError") for value in found.values()), found


def test_a_postgresql_socket_folder_is_protected_when_scripts_run_as_the_provider(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not root: scripts share the provider's user, whom peer authentication would let into its database."""
    url = "postgresql://idp@/idp?host=/var/run/postgresql&port=5433"
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    named = Settings.from_config({"DATABASE_URL": url})
    default = Settings.from_config({"DATABASE_URL": "postgresql:///idp"})
    monkeypatch.setattr(os, "getuid", lambda: 0)
    as_root = Settings.from_config({"DATABASE_URL": url})
    assert os.path.realpath("/var/run/postgresql/.s.PGSQL.5433") in named.protected
    assert os.path.realpath("/tmp/.s.PGSQL.5432") in default.protected  # noqa: S108
    assert as_root.protected == ()
    for settings, refused in ((named, True), (default, True), (as_root, False)):
        policy = jail.policy(settings, [{"host": "/var/run/postgresql", "port": "5433"}])
        assert bool(policy.refused) is refused and bool(policy.folders) is not refused


@pytest.mark.parametrize("network", ["hosts", "ports"])
def test_only_unix_ip_and_netlink_sockets_can_be_made(network: str) -> None:
    """AF_VSOCK reaches the host past every namespace; AF_PACKET and the rest are no script's business."""
    with jailed(network=network) as pool:
        result = run(pool, """
            import ctypes, errno, os, socket
            def f():
                found = {}
                for name in ("AF_VSOCK", "AF_PACKET", "AF_ALG", "AF_TIPC"):
                    try:
                        socket.socket(getattr(socket, name), socket.SOCK_DGRAM if name != "AF_VSOCK"
                                      else socket.SOCK_STREAM).close()
                        found[name] = "made"
                    except OSError as error:
                        found[name] = errno.errorcode[error.errno]
                for bad in (47, 255, -1):
                    libc = ctypes.CDLL(None, use_errno=True)
                    found[str(bad)] = libc.socket(bad, 1, 0) < 0 and errno.errorcode[ctypes.get_errno()]
                with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
                    server.bind("/tmp/server")
                    server.listen()
                    client.connect("/tmp/server")  # a Unix socket in the jail's own files
                    found["unix"] = "connected"
                a, b = socket.socketpair()
                a.close(), b.close()
                socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()
                with socket.socket() as tcp:
                    libc = ctypes.CDLL(None, use_errno=True)
                    fastopen = libc.sendmmsg(tcp.fileno(), None, 0, socket.MSG_FASTOPEN)
                    found["sendmmsg"] = fastopen < 0 and errno.errorcode[ctypes.get_errno()]
                    found["sendmmsg plain"] = libc.sendmmsg(tcp.fileno(), None, 0, 0)
                return found
        """)
    assert result.pop("unix") == "connected" and result.pop("sendmmsg plain") == 0
    assert result.pop("sendmmsg") == "EPERM"
    assert set(result.values()) == {"EAFNOSUPPORT"}, result


def test_the_connector_answers_malformed_addresses_and_keeps_serving() -> None:
    """A short address, an IPv6 address on an IPv4 socket: refused, and the keeper carries on."""
    with jailed() as pool:
        result = run(pool, """
            import ctypes, errno, socket, struct
            def f():
                libc = ctypes.CDLL(None, use_errno=True)
                found = {}
                ipv6 = struct.pack("=HH4xI16s", socket.AF_INET6, 80, 0, bytes(16))
                for name, address in (("short", struct.pack("=H", socket.AF_INET)), ("family", ipv6)):
                    with socket.socket() as tcp:
                        failed = libc.connect(tcp.fileno(), address, len(address)) < 0
                        found[name] = failed and errno.errorcode[ctypes.get_errno()]
                with socket.socket() as tcp:  # AF_UNSPEC: disconnect
                    found["unspec"] = libc.connect(tcp.fileno(), struct.pack("=H14x", 0), 16)
                return found
        """)
        assert result == {"short": "EINVAL", "family": "EAFNOSUPPORT", "unspec": 0}
        assert run(pool, "def f():\n    return {'ok': True}\n") == {"ok": True}


@pytest.mark.parametrize("network", ["hosts", "ports"])
def test_no_datagram_leaves_the_jail(network: str) -> None:
    """UDP (even to a resolver, then sendto() elsewhere), raw, ping and SCTP sockets: none can be made."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        configuration = {"host": "127.0.0.1", "port": str(port)}
        with jailed(network=network) as pool:
            result = run(pool, """
                import ctypes, errno, socket
                def f(port, configuration):
                    found = {}
                    libc = ctypes.CDLL(None, use_errno=True)
                    for family in (socket.AF_INET, socket.AF_INET6):
                        for kind in (socket.SOCK_DGRAM, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK
                                     | socket.SOCK_CLOEXEC, socket.SOCK_RAW, socket.SOCK_SEQPACKET,
                                     socket.SOCK_DGRAM | 1 << 40):
                            made = libc.socket(family, ctypes.c_long(kind), socket.IPPROTO_IP)
                            found[f"{family}/{kind}"] = made < 0 and errno.errorcode[ctypes.get_errno()]
                    try:  # the escape: a socket connected to a resolver, then sent elsewhere
                        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                            udp.connect(("127.0.0.1", 53))
                            udp.sendto(b"out", ("127.0.0.1", port))
                        found["escape"] = "sent"
                    except OSError as error:
                        found["escape"] = errno.errorcode[error.errno]
                    with socket.socket() as tcp:
                        found["tcp"] = "made"
                    return found
            """, port, configuration)
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.recv(16)
    assert result.pop("tcp") == "made"
    assert set(result.values()) == {"EPERM"}, result


@pytest.mark.parametrize("network", ["hosts", "ports"])
def test_a_configured_host_name_resolves_without_dns(network: str) -> None:
    """The jail's /etc/hosts holds the configured names: "localhost" connects, other names do not resolve."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)
        port = server.getsockname()[1]
        configuration = {"url": f"postgresql://app@localhost:{port}/legacy"}
        with jailed(network=network) as pool:
            result = run(pool, """
                import socket
                def f(port, configuration):
                    found = {}
                    with socket.create_connection(("localhost", port), timeout=5) as connection:
                        connection.sendall(b"named")
                    found["connected"] = True
                    try:
                        socket.getaddrinfo("example.com", 443)
                        found["dns"] = "resolved"
                    except socket.gaierror:
                        found["dns"] = "unknown"
                    with open("/etc/resolv.conf") as file:
                        found["resolvers"] = [line for line in file if line.startswith("nameserver")]
                    return found
            """, port, configuration)
            peer, _ = server.accept()
            with peer:
                assert peer.recv(5) == b"named"
    assert result == {"connected": True, "dns": "unknown", "resolvers": []}


def test_the_keeper_writes_the_jails_hosts_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The names the configuration names, at the addresses the keeper found, and allowed: TCP only."""
    found = {"db.example": "192.0.2.7", "localhost": "127.0.0.1", "192.0.2.9": "192.0.2.9"}

    def lookup(host: str, port: int, **_: Any) -> list[Any]:
        if host.lower() not in found:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (found[host.lower()], port))]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    endpoints = confine._Endpoints([("DB.example", 5432), ("192.0.2.9", 80), ("gone.example", 80),
                                    ("bad\nname", 80)], 1.0)
    hosts = endpoints.hosts_file().splitlines()
    assert hosts == ["127.0.0.1 localhost", "192.0.2.7 db.example"]
    assert endpoints.allows("192.0.2.7", 5432, True) and endpoints.allows("192.0.2.9", 80, True)
    assert not endpoints.allows("192.0.2.7", 5432, False) and not endpoints.allows("192.0.2.7", 53, True)
