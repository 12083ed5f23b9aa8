"""Seeing a worker's jail from outside: which host processes are in it (by its PID namespace)."""

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """Return whether a process exists and is not a zombie."""
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:4]
    except FileNotFoundError:
        return False


def _status(pid: str) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def jail_of(worker: int) -> str:
    """Return the PID namespace of a worker's jail: that of the process its keeper's group runs as PID 2."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) == worker and _status(pid)["NSpid"].split()[1:] == ["2"]:
                return os.readlink(f"/proc/{pid}/ns/pid")
        except (OSError, KeyError):
            continue
    raise LookupError(f"worker {worker} has no jail")


def in_jail(namespace: str) -> list[int]:
    """Return the host pids of the live processes in a jail's PID namespace."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") == namespace and alive(int(pid)):
                found.append(int(pid))
        except OSError:
            continue
    return found
