"""Run rp_flow.mjs, panva's openid-client as a relying party, with a test acting as its browser."""

import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SCRIPT = HERE / "rp_flow.mjs"
INSTALLED = HERE / "node_modules" / "openid-client" / "package.json"
HOW = "run `make test` (npm ci in tests/interop)"


def available() -> bool:
    """Say whether node and the pinned openid-client are installed."""
    return shutil.which("node") is not None and INSTALLED.exists()


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes]:
    """Read one line from the process's stdout before the deadline; return it and what followed."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError("openid-client printed no authorization URL in time")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    line, _, rest = data.partition(b"\n")
    return line, rest


def run(issuer: str, client_id: str, secret: str, redirect_uri: str, browse: Callable[[str], str],
        *flags: str, timeout: float = 20) -> dict[str, Any]:
    """Run the relying party: `browse` turns its authorization URL into the callback URL."""
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(
        ["node", str(SCRIPT), issuer, client_id, secret, redirect_uri, *flags], cwd=HERE,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        line, rest = _read_line(proc, deadline)
        if not line:
            _, err = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
            raise AssertionError(f"openid-client failed to start: {err.decode()}")
        first = json.loads(line)
        assert "authorization_url" in first, first
        callback = browse(first["authorization_url"])
        out, err = proc.communicate((callback + "\n").encode(),
                                    timeout=max(deadline - time.monotonic(), 1))
        lines = (rest + out).decode().splitlines()
        assert lines, f"openid-client printed no result; stderr: {err.decode()}"
        result: dict[str, Any] = json.loads(lines[-1])
        result["stderr"] = err.decode()
        return result
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
