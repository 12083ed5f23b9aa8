"""The child side of the script sandbox: run a migrating connection's scripts for idp.migration.sandbox.

The parent starts this file by path (``python -I -B -u worker.py REQUESTS RESPONSES MEMORY_MB CPU_SECONDS``)
so that it imports nothing of the provider but idp.migration.confine (standard library only), which
builds the jail first when the IDP_SCRIPT_JAIL variable carries a plan. It reads
requests from the REQUESTS descriptor and answers on RESPONSES; its stdout and stderr belong to the
scripts. Every message is 4 bytes of big-endian length, then that many bytes of UTF-8 JSON (never pickle).

Request: ``{"source": str, "function": str, "args": list}``.
Responses: ``{"ok": true, "value": <any JSON value>}`` (the caller checks its shape);
``{"ok": false, "kind": "wrong_credentials"}``;
``{"ok": false, "kind": "bad_result", "message": str}``;
``{"ok": false, "kind": "failed", "type": str, "message": str, "traceback": str, "line": int | null}``;
``{"ok": false, "kind": "jail", "message": str}`` (the jail cannot be built; the worker then ends).
Before its first response a partial jail sends ``{"notes": [str]}``: the mechanisms it runs without.
"""

import builtins
import hashlib
import json
import linecache
import math
import os
import resource
import struct
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

HEADER = struct.Struct(">I")
MAX_REQUEST = 16 * 1024 * 1024  # a request carries a script's source
MAX_RESPONSE = 16 * 1024 * 1024  # a response carries a profile, or a page of them (export_users)
MAX_MESSAGE = 2000  # characters of an exception's message
MAX_TRACEBACK = 8000
OPEN_FILES = 256
MODULE_PREFIX = "idp_script_"


class WrongUsernameOrPassword(Exception):
    """Raised by a script: the email or the password is wrong (an answer, not a failure)."""


def encode(message: dict[str, Any]) -> bytes:
    """Return one framed message."""
    body = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def _read_exactly(fd: int, size: int) -> bytes | None:
    """Return size bytes from fd, or None at end of file."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def receive(fd: int) -> dict[str, Any] | None:
    """Return the next request, or None once the parent has gone."""
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_REQUEST:
        raise ValueError(f"request of {size} bytes")
    body = _read_exactly(fd, size)
    return None if body is None else json.loads(body)


def send(fd: int, data: bytes) -> None:
    """Write all of data to fd."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def limit(memory_mb: int) -> None:
    """Cap the address space, open files and core dumps of this process (and what it starts)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    lower_limit(resource.RLIMIT_NOFILE, OPEN_FILES)
    lower_limit(resource.RLIMIT_AS, memory_mb * 1024 * 1024)


def lower_limit(which: int, value: int) -> None:
    """Set a resource limit, soft and hard, to value (or the hard limit, if lower)."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def allow_cpu(seconds: int) -> None:
    """Let the coming call use `seconds` more CPU time before the kernel stops the process (SIGXCPU).

    RLIMIT_CPU counts the whole life of the process, so its soft limit moves forward before each call;
    otherwise a long-lived worker would be killed in the middle of an innocent call.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def watch_parent(parent: int) -> None:
    """Exit once the parent has gone, even while a script is stuck in a call."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def filename_of(digest: str) -> str:
    """Return the name a script's code is compiled under (its frames are found by it)."""
    return f"<script {digest[:12]}>"


def load(source: str, digest: str) -> types.ModuleType:
    """Compile and run a script's source in a module of its own."""
    filename = filename_of(digest)
    # Registered so that tracebacks (ours, and any the script prints) show the script's lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    code = compile(source, filename, "exec", dont_inherit=True)
    module = types.ModuleType(MODULE_PREFIX + digest[:16])
    module.__dict__["WrongUsernameOrPassword"] = WrongUsernameOrPassword
    sys.modules[module.__name__] = module  # for dataclasses, enum, typing.get_type_hints
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the connection's script is the point
    except BaseException:
        del sys.modules[module.__name__]
        raise
    return module


def type_name(exc: BaseException) -> str:
    """Return the exception's type, module-qualified unless builtin or the script's own."""
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__") or module.startswith(MODULE_PREFIX):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _text(exc: BaseException) -> str:
    try:
        text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    except Exception:  # a script's exception with a broken __str__
        text = "<unprintable>"
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def failure(exc: BaseException, filename: str) -> dict[str, Any]:
    """Describe a script's exception with only the script's own frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = ["Traceback (script frames only, most recent call last):"]
    for frame in frames:
        lines.append(f"  line {frame.lineno}, in {frame.name}")
        if frame.line:
            lines.append(f"    {frame.line}")
    line = frames[-1].lineno if frames else None
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno
        lines.append(f"  line {exc.lineno}")
        if exc.text:
            lines.append(f"    {exc.text.strip()}")
    name, message = type_name(exc), _text(exc)
    lines.append(f"{name}: {message}" if message else name)
    text = "\n".join(lines)
    if len(text) > MAX_TRACEBACK:
        text = "…\n" + text[-MAX_TRACEBACK:]
    return {"ok": False, "kind": "failed", "type": name, "message": message, "traceback": text, "line": line}


def bad_result(message: str) -> dict[str, Any]:
    """Describe a returned value the provider cannot use."""
    return {"ok": False, "kind": "bad_result", "message": message}


def handle(request: dict[str, Any], scripts: dict[str, types.ModuleType], cpu_seconds: int) -> bytes:
    """Run one request and return the framed response."""
    source, function, args = request["source"], request["function"], request["args"]
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    allow_cpu(cpu_seconds)
    try:
        module = scripts.get(digest)
        if module is None:
            module = scripts[digest] = load(source, digest)
        entry = module.__dict__.get(function)
        if not callable(entry):
            return encode({"ok": False, "kind": "failed", "type": "NameError", "line": None, "traceback": "",
                           "message": f"the script defines no function {function}()"})
        value = entry(*args)
    except BaseException as exc:  # even sys.exit() in a script must not end the worker
        # Matched by name too: a script may define its own class, as ported Auth0 scripts do.
        if isinstance(exc, WrongUsernameOrPassword) or type(exc).__name__ == "WrongUsernameOrPassword":
            return encode({"ok": False, "kind": "wrong_credentials"})
        return encode(failure(exc, filename_of(digest)))
    try:
        data = encode({"ok": True, "value": value})
    except (TypeError, ValueError, RecursionError) as error:
        return encode(bad_result(f"the returned {type(value).__name__} is not JSON: {error}"))
    if len(data) > MAX_RESPONSE:
        return encode(bad_result(f"the returned value is {len(data)} bytes of JSON (at most {MAX_RESPONSE})"))
    return data


def _nothing_to_end() -> None:
    """Without a jail, a call's processes are the worker's own: none is killed between calls."""


def main(argv: list[str]) -> int:
    """Serve requests until the parent closes the channel."""
    requests, responses, memory_mb, cpu_seconds = (int(arg) for arg in argv[1:5])
    for fd in (requests, responses):
        os.set_inheritable(fd, False)  # a script's own subprocesses must not see the channel
    plan = os.environ.pop("IDP_SCRIPT_JAIL", "")
    end_call: Callable[[], None] = _nothing_to_end
    if plan:
        from idp.migration import confine  # only now: unjailed workers stay light

        notes = confine.confine(json.loads(plan), (requests, responses))  # returns inside the jail
        end_call = confine.end_call
        if notes:
            send(responses, encode({"notes": notes}))
    else:
        threading.Thread(target=watch_parent, args=(os.getppid(),), name="watch-parent", daemon=True).start()
    builtins.WrongUsernameOrPassword = WrongUsernameOrPassword  # type: ignore[attr-defined]
    limit(memory_mb)
    scripts: dict[str, types.ModuleType] = {}
    while (request := receive(requests)) is not None:
        threads = set(threading.enumerate())
        response = handle(request, scripts, cpu_seconds)
        end_call()  # before the answer: when the caller has it, nothing the call started is left
        if set(threading.enumerate()) - threads:  # nor a thread: the worker ends with it, once answered
            send(responses, encode({**json.loads(response[HEADER.size:]), "retire": True}))
            os._exit(0)
        send(responses, response)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
