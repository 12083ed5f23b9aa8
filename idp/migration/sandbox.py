"""The script runtime: a pool of sandbox subprocesses that run a migrating connection's scripts.

    pool = Pool(size=2, timeout=20.0)
    try:
        outcome = pool.call(source, "login", [email, password, configuration])
    except WrongCredentials:
        ...  # wrong email or password: an answer, not a failure
    except ScriptError:
        ...  # the legacy store failed: timeout, crash, exception, unusable result

Each worker is `python -I -B -u idp/migration/worker.py` in a session (process group) of its own, with a
clean environment (PATH, LANG, HOME and TMPDIR only) and limits on address space (RLIMIT_AS), CPU time
per call (RLIMIT_CPU), open files and core dumps. The parent talks to it over two dedicated pipes in
length-prefixed JSON; the worker's stdout and stderr are a third pipe, drained during each call into
`Outcome.output`, so nothing a script prints can be mistaken for an answer. Each distinct source is
compiled once per worker into a module of its own, whose globals persist between calls (a script can
keep a connection pool). Scripts find `WrongUsernameOrPassword` among their builtins. The login password
and the configuration's values are replaced by "[redacted]" (idp.redact) in every message, traceback
and output this module hands back.

Each worker is a jail (planned by idp.migration.jail, built once per worker by idp.migration.confine)
for one policy: the files and host:port endpoints the call's configuration names (`Settings` adds
deployment-wide ones). Its scripts run in user, PID, mount, IPC, UTS and network namespaces of their
own, as an unprivileged user without capabilities (SCRIPT_UID when idp runs as root), under Landlock and
seccomp. They read only the Python runtime, the virtualenv, the shared libraries, the name service's and
TLS's files, idp.migration.hashes and the named files (never the provider's keys, instance folder,
database and its journals, nor, when idp does not run as root, the socket of its PostgreSQL database:
`Settings.protected`, covered by an empty mount where they lie inside a folder scripts read, and never
bound from /proc, /sys or /dev); they write only their private /tmp, a tmpfs of SCRIPT_DISK_MB that ends
with the worker; they see no /proc and can signal no process outside the jail; they make Unix, TCP and
netlink sockets only (no AF_VSOCK, no UDP: no datagram leaves the jail), and connect only to the named
endpoints, through the worker's keeper, which connects in their place (SCRIPT_NETWORK "ports": any host,
on the named ports). There is no DNS in the jail: its /etc/hosts holds the named hosts, as the keeper
resolved them at the worker's start, and its /etc/resolv.conf no resolver. Whatever a call starts is
killed before its answer comes back, and a worker runs at most SCRIPT_PROCESSES processes. Where the
kernel lacks a mechanism the worker answers `SandboxUnavailable` (logged) unless SCRIPT_JAIL is
"partial".

Memory is bounded per process, and in all by a memory cgroup of the jail's own where idp can make one;
a thread a call leaves running ends its worker after the answer. What the jail does not do: module
globals live as long as the worker; scripts cannot query DNS (no SRV or TXT records: a mongodb+srv URL
does not work in the jail).
"""

import atexit
import contextlib
import json
import logging
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from idp import redact
from idp.errors import IdpError, Unavailable
from idp.migration import jail
from idp.migration.confine import JAIL_TMP, PLAN_VARIABLE
from idp.migration.jail import Policy, Settings
from idp.migration.worker import HEADER, MAX_REQUEST, MAX_RESPONSE, encode

__all__ = [
    "BadResult", "Outcome", "Pool", "SandboxUnavailable", "ScriptCrashed", "ScriptError", "ScriptFailed",
    "ScriptTimeout", "Settings", "WrongCredentials",
]

logger = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("worker.py")
OUTPUT_LIMIT = 64 * 1024  # bytes of a call's output kept; the rest is read and dropped
NOTES = b'{"notes":'  # a partial jail's first message: what it runs without


class ScriptError(Unavailable):
    """The script gave no answer: for the provider, the legacy store failed."""

    def __init__(self, message: str, *, output: str = "") -> None:
        super().__init__(message)
        self.output = output  # what the script printed during the call (secrets redacted)


class ScriptTimeout(ScriptError):
    """The call outlasted its wall-clock timeout (a worker that ran over is killed and replaced)."""


class ScriptCrashed(ScriptError):
    """The worker died during the call (memory or CPU limit, a signal, os._exit); it is replaced."""


class ScriptFailed(ScriptError):
    """The script raised an exception, or could not be compiled or run."""

    def __init__(self, type_name: str, message: str, traceback: str, line: int | None, *,
                 output: str = "") -> None:
        where = f" (script line {line})" if line else ""
        super().__init__(f"{type_name}: {message}{where}" if message else type_name + where, output=output)
        self.type_name = type_name  # e.g. "ValueError", "psycopg.OperationalError"
        self.message = message
        self.traceback = traceback  # the script's own frames only, with its line numbers
        self.line = line  # the innermost line of the script, if any


class SandboxUnavailable(ScriptError):
    """The kernel lacks a mechanism the jail requires (see SCRIPT_JAIL): no script can run."""


class BadResult(ScriptError):
    """The script returned something other than a JSON-serializable dict or None."""


class WrongCredentials(IdpError):
    """The script raised WrongUsernameOrPassword.

    Not a ScriptError: it is an answer ("wrong email or password"), and must not count as the legacy
    store failing (nor open a circuit breaker).
    """

    def __init__(self, *, output: str = "", duration: float = 0.0) -> None:
        super().__init__("wrong email or password")
        self.output = output
        self.duration = duration


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call returned."""

    value: Any  # any JSON value: each caller checks the shape its function promises
    output: str  # the script's stdout and stderr during the call, truncated, secrets redacted
    duration: float  # seconds, waiting for a worker included
    worker: int = 0  # the pid of the worker that answered, outside its jail (scripts see their own pids)


class _Died(Exception):
    """The worker closed its channel: it died, or is dying."""


class _Overran(Exception):
    """The deadline passed before the worker answered."""


class _Output:
    """A call's captured output, keeping the first OUTPUT_LIMIT bytes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = OUTPUT_LIMIT - len(self.data)
        self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - room)

    def text(self) -> str:
        text = self.data.decode("utf-8", "replace")
        return text + f"\n[{self.dropped} more bytes of output dropped]" if self.dropped else text


class _Worker:
    """One sandbox subprocess, used by one call at a time."""

    def __init__(self, memory_mb: int, cpu_seconds: int, plan: dict[str, Any], policy: Policy) -> None:
        self.policy = policy
        self.files = jail.identities(policy.read + policy.folders)
        # The jail's own /tmp, a tmpfs that ends with the worker; HOME and the working directory are in it.
        env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8",
               "HOME": f"{JAIL_TMP}/home", "TMPDIR": JAIL_TMP, PLAN_VARIABLE: json.dumps(plan)}
        requests_r, requests_w = os.pipe()
        responses_r, responses_w = os.pipe()
        output_r, output_w = os.pipe()
        try:
            # Deliberate: the worker exists to run the connection's scripts, isolated as described above.
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-I", "-B", "-u", str(WORKER), str(requests_r), str(responses_w),
                 str(memory_mb), str(cpu_seconds)],
                stdin=subprocess.DEVNULL, stdout=output_w, stderr=output_w,
                pass_fds=(requests_r, responses_w), cwd="/", env=env, start_new_session=True,
            )
        except BaseException:
            for fd in (requests_w, responses_r, output_r):
                os.close(fd)
            raise
        finally:
            for fd in (requests_r, responses_w, output_w):
                os.close(fd)
        self.requests, self.responses, self.output = requests_w, responses_r, output_r
        for fd in (self.requests, self.responses, self.output):
            os.set_blocking(fd, False)
        self.poller = select.poll()
        self.poller.register(self.responses, select.POLLIN)
        self.poller.register(self.output, select.POLLIN)
        self.output_open = True
        self.started = time.monotonic()
        self.calls = 0
        logger.debug("script worker %d started", self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def fresh(self, max_calls: int, max_age: float) -> bool:
        """Return whether the worker may take another call: alive, neither too old nor too used, and its
        configured files still the ones its jail binds (a replaced or removed file needs a new jail)."""
        return (self.calls < max_calls and time.monotonic() - self.started < max_age and not self._exited()
                and jail.identities(self.policy.read + self.policy.folders) == self.files)

    def _exited(self) -> bool:
        """Return whether the process has ended, without reaping it (its pid stays ours to signal)."""
        if self.process.returncode is not None:
            return True
        if not hasattr(os, "waitid"):  # macOS before Python 3.13: poll, which reaps
            return self.process.poll() is not None
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def exchange(self, request: bytes, deadline: float) -> tuple[bytes, str]:
        """Send one request; return the response body and what the script printed meanwhile.

        Raise _Overran at the deadline and _Died if the worker closes its channel (both carrying the
        output so far); the caller then stops the worker.
        """
        self.calls += 1
        self._drain(None)  # whatever a script printed between calls belongs to no call
        output = _Output()
        pending = memoryview(request)
        self.poller.register(self.requests, select.POLLOUT)
        received = bytearray()
        try:
            while True:
                if len(received) >= HEADER.size:
                    (size,) = HEADER.unpack_from(received)
                    if size > MAX_RESPONSE:
                        raise _Died(output.text())  # not our protocol: treat as dead
                    if len(received) >= HEADER.size + size:
                        body = bytes(received[HEADER.size:HEADER.size + size])
                        del received[:HEADER.size + size]
                        if body.startswith(NOTES):
                            try:
                                notes = _loads(body)["notes"]
                                if not isinstance(notes, list):
                                    raise ValueError("notes are not a list")
                            except (ValueError, KeyError):  # a script wrote to the channel: not our protocol
                                raise _Died(output.text()) from None
                            logger.warning("script worker %d runs in a jail weaker than it could be: %s",
                                           self.pid, "; ".join(map(str, notes)))
                            continue
                        if received:
                            raise _Died(output.text())  # more than one answer: not our protocol
                        self._drain(output)  # written before the answer, so already in the pipe
                        return body, output.text()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Overran(output.text())
                for fd, _ in self.poller.poll(math.ceil(remaining * 1000)):
                    if fd == self.output:
                        self._drain(output)
                    elif fd == self.requests:
                        try:
                            pending = pending[os.write(fd, pending):]
                        except BrokenPipeError:
                            raise _Died(output.text()) from None
                        if not pending:
                            self.poller.unregister(self.requests)
                    elif fd == self.responses:
                        chunk = os.read(fd, 65536)
                        if not chunk:
                            self._drain(output)
                            raise _Died(output.text())
                        received += chunk
        finally:
            if pending:
                self.poller.unregister(self.requests)

    def _drain(self, sink: _Output | None) -> None:
        """Read what is waiting in the output pipe into sink (or nowhere)."""
        while self.output_open:
            try:
                chunk = os.read(self.output, 65536)
            except BlockingIOError:
                return
            if not chunk:  # every writer has gone
                self.poller.unregister(self.output)
                self.output_open = False
                return
            if sink is not None:
                sink.add(chunk)

    def wait_exit(self, seconds: float) -> None:
        """Give a worker whose channel closed a moment to finish dying, so its status says why."""
        end = time.monotonic() + seconds
        while not self._exited() and time.monotonic() < end:
            time.sleep(0.005)

    def stop(self) -> int | None:
        """Kill the worker's whole process group (its jail dies with it), reap it; return its status."""
        if self.process.returncode is None:
            # Not yet reaped, so the pid (and the group id) cannot have been reused.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            try:
                self.process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                logger.error("script worker %d did not die after SIGKILL", self.pid)
        self._close()
        jail.remove_folder(self.pid)  # a partial jail without a mount namespace keeps one on the host
        return self.process.returncode

    def disown(self) -> None:
        """Forget a worker inherited through fork: it belongs to the parent process."""
        self._close()
        # Not our child: never wait for it, signal it, or warn that it is still running.
        self.process.returncode = 0

    def _close(self) -> None:
        for fd in (self.requests, self.responses, self.output):
            with contextlib.suppress(OSError):  # already closed (stop after stop)
                os.close(fd)
        self.requests = self.responses = self.output = -1


def _describe(status: int | None) -> str:
    """Say how a worker ended."""
    if status is None:
        return "it would not die"
    if status >= 0:
        return f"exit status {status}"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    why = {"SIGXCPU": " (CPU time limit)", "SIGSEGV": " (segmentation fault)"}
    return f"killed by {name}{why.get(name, '')}"


def _secrets(function: str, args: list[Any] | tuple[Any, ...]) -> list[str]:
    """Return the strings to redact: login's password and the configuration's values."""
    password = args[1] if function == "login" and len(args) > 1 and isinstance(args[1], str) else None
    configuration = next((arg for arg in args if isinstance(arg, dict)), {})
    return redact.secrets_in(configuration, password)


_pools: "weakref.WeakSet[Pool]" = weakref.WeakSet()


class Pool:
    """A thread-safe pool of sandbox workers, started on first use and recycled.

    A worker's jail is built for one policy (what a connection's configuration lets its scripts read and
    reach), so a call takes an idle worker of its policy, starts one if the pool is below `size` (or
    replaces the least recently used idle worker of another policy), or waits for one to come back; the
    whole call, waiting included, is bounded by its timeout. A worker is replaced after `max_calls` calls
    or `max_age` seconds, and killed at once if it times out or dies. After os.fork the child starts
    workers of its own (gunicorn forks after import).
    """

    def __init__(self, size: int = 2, timeout: float = 20.0, memory_mb: int = 512, cpu_seconds: int = 60,
                 max_calls: int = 1000, max_age: float = 1200.0, jail: Settings | None = None) -> None:
        if size < 1 or timeout <= 0 or memory_mb < 64 or cpu_seconds < 1 or max_calls < 1 or max_age <= 0:
            raise ValueError("pool size, timeout, CPU time, calls and age must be positive, memory at least "
                             "64 MB (the interpreter and a database driver need about that much)")
        self.size = size
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.cpu_seconds = cpu_seconds
        self.max_calls = max_calls
        self.max_age = max_age
        self.jail = jail or Settings()
        self._closed = False
        self._reset()
        _pools.add(self)
        _clean_stale_once()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()  # idle and busy
        self._starting = 0

    def call(self, source: str, function: str, args: list[Any] | tuple[Any, ...], *,
             timeout: float | None = None) -> Outcome:
        """Run `function(*args)` of the script `source` in a worker and return what it returned."""
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        deadline = started + limit
        try:
            request = encode({"source": source, "function": function, "args": list(args)})
        except (TypeError, ValueError):
            raise TypeError("a script's arguments must be JSON-serializable") from None
        if len(request) > HEADER.size + MAX_REQUEST:
            raise ValueError(f"a script and its arguments must fit in {MAX_REQUEST // 2**20} MiB of JSON")
        secrets = _secrets(function, args)
        worker = self._acquire(deadline, limit, jail.policy(self.jail, args))
        keep = False
        try:
            try:
                body, output = worker.exchange(request, deadline)
            except _Overran as timed_out:
                logger.warning("script worker %d killed: %s() ran past %g s", worker.pid, function, limit)
                raise ScriptTimeout(f"{function}() ran past its {limit:g} s timeout",
                                    output=redact.scrub(str(timed_out), secrets)) from None
            except _Died as died:
                worker.wait_exit(0.5)
                status = _describe(worker.stop())
                logger.warning("script worker %d died during %s(): %s", worker.pid, function, status)
                raise ScriptCrashed(f"the script worker died during {function}(): {status}",
                                    output=redact.scrub(str(died), secrets)) from None
            output = redact.scrub(output, secrets)
            try:
                response = _loads(body)
            except ValueError:
                raise ScriptCrashed("the script worker broke the protocol", output=output) from None
            keep = response.get("retire") is not True  # a thread the call started lives on: it ends
            return self._answer(response, output, time.monotonic() - started, secrets, worker.pid)
        except ScriptFailed as failed:
            keep = keep and failed.type_name != "MemoryError"  # a worker that ran out of memory may be unwell
            raise
        except (ScriptCrashed, SandboxUnavailable):
            keep = False
            raise
        finally:
            self._release(worker, keep)

    def _answer(self, response: dict[str, Any], output: str, duration: float, secrets: list[str],
                pid: int) -> Outcome:
        """Turn a response into an Outcome or the exception it stands for."""
        kind = response.get("kind")
        if response.get("ok") is True:
            return Outcome(response.get("value"), output, duration, pid)
        if kind == "wrong_credentials":
            raise WrongCredentials(output=output, duration=duration)
        if kind == "jail":
            message = str(response.get("message"))
            logger.error("the script jail cannot be built, so no script can run: %s (SCRIPT_JAIL = 'partial' "
                         "accepts a weaker jail)", message)
            raise SandboxUnavailable(f"the script jail cannot be built: {message}", output=output)
        if kind == "bad_result":
            raise BadResult(redact.scrub(str(response.get("message")), secrets), output=output)
        if kind == "failed":
            line = response.get("line")
            raise ScriptFailed(
                str(response.get("type")), redact.scrub(str(response.get("message")), secrets),
                redact.scrub(str(response.get("traceback")), secrets),
                line if isinstance(line, int) else None, output=output,
            )
        raise ScriptCrashed("the script worker broke the protocol", output=output)

    def _acquire(self, deadline: float, limit: float, policy: Policy) -> _Worker:
        """Take an idle worker of the policy, start one, or wait for one until the deadline."""
        stale: list[_Worker] = []
        try:
            with self._lock:
                while True:
                    if self._closed:
                        raise ScriptError("the script pool is closed")
                    for index in reversed(range(len(self._idle))):  # the most recently used: warm caches
                        worker = self._idle[index]
                        if worker.policy != policy:
                            continue
                        del self._idle[index]
                        if worker.fresh(self.max_calls, self.max_age):
                            return worker
                        self._workers.discard(worker)
                        stale.append(worker)
                    if len(self._workers) + self._starting < self.size:
                        self._starting += 1
                        break
                    if self._idle:  # full, but an idle worker of another policy makes room
                        victim = self._idle.pop(0)
                        self._workers.discard(victim)
                        stale.append(victim)
                        self._starting += 1
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ScriptTimeout(f"no script worker came free within the {limit:g} s timeout")
                    self._returned.wait(remaining)
        finally:
            for worker in stale:
                worker.stop()
        if policy.refused:
            logger.warning("a connection's configuration names %s: the provider's own files, which its "
                           "scripts may not read", ", ".join(policy.refused))
        try:
            plan = jail.plan(self.jail, policy, self.memory_mb, connect_timeout=self.timeout)
            worker = _Worker(self.memory_mb, self.cpu_seconds, plan, policy)
        except BaseException as exc:
            with self._lock:
                self._starting -= 1
                self._returned.notify()
            if isinstance(exc, OSError):
                raise ScriptCrashed(f"could not start a script worker: {exc.strerror or exc}") from None
            raise
        with self._lock:
            self._starting -= 1
            self._workers.add(worker)
        return worker

    def _release(self, worker: _Worker, keep: bool) -> None:
        """Give a worker back, or stop it."""
        with self._lock:
            if keep and not self._closed and worker in self._workers:
                self._idle.append(worker)
                self._returned.notify()
                return
            self._workers.discard(worker)
            self._returned.notify()
        worker.stop()

    def close(self) -> None:
        """Stop the idle workers now and the busy ones when their calls end; later calls fail."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._workers.difference_update(idle)
            self._returned.notify_all()
        for worker in idle:
            worker.stop()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _forget(self) -> None:
        """In a child after fork: drop the parent's workers (and a lock another thread may hold)."""
        for worker in self._workers:
            worker.disown()
        self._reset()


def _loads(body: bytes) -> dict[str, Any]:
    response = json.loads(body)
    if not isinstance(response, dict):
        raise ValueError("not an object")
    return response


_cleaned = False


def _clean_stale_once() -> None:
    """Remove what workers of a web process that died left on the host (partial jails only)."""
    global _cleaned
    if not _cleaned:
        _cleaned = True
        jail.clean_stale()


def _after_fork() -> None:
    for pool in list(_pools):
        pool._forget()


def _close_all() -> None:
    for pool in list(_pools):
        pool.close()


os.register_at_fork(after_in_child=_after_fork)
atexit.register(_close_all)
