"""The script sandbox's jail, planned in the web process: what a worker's scripts may read and reach.

`Settings` (the SCRIPT_* configuration and the provider's own paths), `policy()` (the files and the
host:port endpoints a connection's configuration names) and `plan()` (what a worker is started with,
its seccomp filter compiled here with libseccomp). idp.migration.confine builds the jail in the worker.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import functools
import importlib.util
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from idp.migration import confine
from idp.migration.confine import DENIED, MSG_FASTOPEN, NAMESPACE_FLAGS, STALE_PREFIX
from idp.redact import SECRET_NAME

__all__ = ["Policy", "Settings", "clean_stale", "identities", "plan", "policy", "remove_folder",
           "settings_of"]

LEVELS = ("full", "partial")
NETWORKS = ("hosts", "ports")
# Ports a host named without one may be reached on: those of the databases and web services templates use.
DEFAULT_PORTS = (5432, 3306, 1433, 1521, 27017, 80, 443)
SCHEME_PORTS = {"postgres": 5432, "postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433,
                "sqlserver": 1433, "oracle": 1521, "tcp": 1521, "tcps": 2484, "mongodb": 27017, "http": 80,
                "https": 443, "ldap": 389, "ldaps": 636, "redis": 6379, "rediss": 6379, "smtp": 25,
                "smtps": 465}
FILE_SCHEMES = ("sqlite", "file")
# Configuration values under these keys are secrets: never read for hosts or paths (nor logged).
HOST_KEY = re.compile(r"(?:^|_)(?:host|hostname|hostaddr|server|address)$", re.IGNORECASE)
PORT_KEY = re.compile(r"(?:^|_)port$", re.IGNORECASE)
DSN_PAIR = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")
HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})(?:/\S*)?$")
# The jail's /etc/hosts and an empty /etc/resolv.conf are its own (confine): no DNS from inside it.
ETC_FILES = ("/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols",
             "/etc/ld.so.cache", "/etc/localtime", "/etc/ssl/certs", "/etc/ssl/openssl.cnf",
             "/usr/share/ca-certificates", "/usr/share/zoneinfo")
LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")
# Kernel interfaces a configuration may not name (the jail binds the few devices it needs itself).
KERNEL_ROOTS = ("/proc", "/sys", "/dev")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
# libpq's default socket folders, when a PostgreSQL URL names no host.
POSTGRES_SOCKET_DIRS = ("/var/run/postgresql", "/run/postgresql", "/tmp")  # noqa: S108
# Families a script may create sockets of (seccomp refuses the others: AF_VSOCK is no namespace's).
SOCKET_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK
IP_FAMILIES = (2, 10)  # AF_INET, AF_INET6: stream sockets only (no UDP, raw, ping or SCTP socket)
SOCK_STREAM, SOCK_TYPE_MASK = 1, 0xF  # socket()'s type, without SOCK_NONBLOCK and SOCK_CLOEXEC
AF_MAX = 46
SCRIPT_MODULES = ("idp.migration.hashes",)  # the provider's code scripts may import (with its packages)


@dataclass(frozen=True, slots=True)
class Settings:
    """The jail's deployment-wide settings: the SCRIPT_* configuration, and the provider's own paths."""

    level: str = "full"  # "full": refuse to run scripts without every mechanism; "partial": use what there is
    network: str = "hosts"  # "hosts": host:port checked by the keeper; "ports": any host, configured ports
    uid: int = 65534  # who scripts run as when idp runs as root
    gid: int = 65534
    processes: int = 32  # RLIMIT_NPROC, counted per worker (its own user namespace)
    disk_mb: int = 64  # the private /tmp (and /dev/shm), and RLIMIT_FSIZE
    read: tuple[str, ...] = ()  # more paths every connection's scripts may read
    connect: tuple[str, ...] = ()  # more host:port endpoints every connection's scripts may reach
    protected: tuple[str, ...] = ()  # never readable, even when a configuration names them

    def __post_init__(self) -> None:
        if self.level not in LEVELS or self.network not in NETWORKS:
            raise ValueError(f"SCRIPT_JAIL must be one of {LEVELS}, SCRIPT_NETWORK one of {NETWORKS}")
        if self.processes < 2 or self.disk_mb < 1 or self.uid < 1 or self.gid < 1:
            raise ValueError("SCRIPT_PROCESSES must be at least 2; SCRIPT_DISK_MB, SCRIPT_UID/GID positive")

    @classmethod
    def from_config(cls, config: Mapping[str, Any], instance_path: str | None = None) -> Settings:
        """Read the settings from the provider's configuration (IDP_* values arrive as strings)."""
        instance = instance_path or config.get("INSTANCE_PATH") or ""
        keys = config.get("KEYS_DIR") or (str(Path(instance).parent / "keys") if instance else "")
        database = str(config.get("DATABASE_URL") or "")
        sqlite = _sqlite_file(database) or (str(Path(instance) / "idp.sqlite3") if not database and instance
                                            else "")
        protected = [p for p in (keys, instance, sqlite) if p]
        if sqlite:  # SQLite's journal files hold the database's pages too
            protected += [sqlite + suffix for suffix in SQLITE_SIDE_FILES]
        if os.getuid() != 0:  # scripts run as the provider's user: peer authentication would let them in
            protected += _postgres_sockets(database)
        return cls(
            level=str(config.get("SCRIPT_JAIL", "full")), network=str(config.get("SCRIPT_NETWORK", "hosts")),
            uid=int(config.get("SCRIPT_UID", 65534)), gid=int(config.get("SCRIPT_GID", 65534)),
            processes=int(config.get("SCRIPT_PROCESSES", 32)), disk_mb=int(config.get("SCRIPT_DISK_MB", 64)),
            read=_split(config.get("SCRIPT_READ", "")), connect=_split(config.get("SCRIPT_CONNECT", "")),
            protected=tuple(os.path.realpath(p) for p in protected),
        )


SETTING_KEYS = ("INSTANCE_PATH", "KEYS_DIR", "DATABASE_URL", "SCRIPT_JAIL", "SCRIPT_NETWORK", "SCRIPT_UID",
                "SCRIPT_GID", "SCRIPT_PROCESSES", "SCRIPT_DISK_MB", "SCRIPT_READ", "SCRIPT_CONNECT")


def settings_of(config: Mapping[str, Any], instance_path: str | None = None) -> Settings:
    """Return the jail's settings of a configuration, read once per distinct configuration.

    Raise idp.ConfigurationError on a bad setting: create_app calls this, so that a bad SCRIPT_* value
    stops the provider at start-up rather than failing each sign-in.
    """
    key = tuple((name, _hashable(config.get(name))) for name in SETTING_KEYS)
    return _settings_of(key, instance_path)


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(map(str, value))
    return value if isinstance(value, (str, int, float, type(None))) else str(value)


@functools.lru_cache(maxsize=16)
def _settings_of(key: tuple[tuple[str, Any], ...], instance_path: str | None) -> Settings:
    from idp.errors import ConfigurationError

    try:
        return Settings.from_config(dict(key), instance_path=instance_path)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"bad script jail setting: {error}") from None


@dataclass(frozen=True, slots=True)
class Policy:
    """What one connection's scripts may read and reach besides the runtime: named by its configuration."""

    read: tuple[str, ...] = ()  # files (a value that names a folder is no file: "/" is an application name)
    folders: tuple[str, ...] = ()  # folders: a host key's (libpq's socket folder) and SCRIPT_READ's
    endpoints: tuple[tuple[str, int], ...] = ()
    refused: tuple[str, ...] = ()  # named paths the jail will not show (the provider's own), for the log


def _split(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else str(value or "").split(",")
    return tuple(s for s in (str(i).strip() for i in items) if s)


def _sqlite_file(url: str) -> str:
    """Return the file of a sqlite:/// URL, or ""."""
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in FILE_SCHEMES or not parts.path:
        return ""
    path = unquote(parts.path)
    return path[1:] if path.startswith("//") else path  # sqlite:////abs → /abs


def _postgres_sockets(url: str) -> list[str]:
    """Return the Unix socket files a PostgreSQL URL connects through (libpq's defaults without a host)."""
    parts = urlsplit(url)
    if not parts.scheme.split("+")[0].lower().startswith("postgres"):
        return []
    query = parse_qs(parts.query)
    hosts = [h for value in query.get("host", []) for h in value.split(",")]
    hosts += [unquote(h) for h in parts.netloc.rsplit("@", 1)[-1].split(",") if unquote(h).startswith("/")]
    folders = [h for h in hosts if h.startswith("/")]
    if not folders and not parts.hostname and not any(hosts):
        folders = list(POSTGRES_SOCKET_DIRS)
    ports = [p for value in query.get("port", []) for p in value.split(",") if p.isdigit()]
    with contextlib.suppress(ValueError):
        ports += [str(parts.port)] if parts.port else []
    return [os.path.join(folder, f".s.PGSQL.{port}") for folder in folders for port in ports or ["5432"]]


def _host_ports(host: str, ports: Iterable[int]) -> list[tuple[str, int]]:
    host = host.strip().strip("[]").split("\\")[0]  # SQL Server's host\instance
    return [(host, port) for port in ports] if host and not host.startswith("/") else []


def _endpoints_of(value: str) -> list[tuple[str, int]]:
    """Return the host:port endpoints a configuration value names (a URL, a libpq DSN, host:port)."""
    found: list[tuple[str, int]] = []
    if "://" in value:
        parts = urlsplit(value)
        scheme = parts.scheme.split("+")[0].lower()
        netloc = parts.netloc.rsplit("@", 1)[-1]
        for item in netloc.split(","):  # postgresql://h1:5432,h2:5433/db
            match = HOST_PORT.match(item)
            if match:
                found += _host_ports(match[1], [int(match[2])])
            elif item:
                found += _host_ports(item, [SCHEME_PORTS[scheme]] if scheme in SCHEME_PORTS
                                     else DEFAULT_PORTS)
        return found
    pairs = dict((k.lower(), v.strip("'")) for k, v in DSN_PAIR.findall(value))
    if "host" in pairs or "hostaddr" in pairs:
        ports = [int(p) for p in pairs.get("port", "5432").split(",") if p.isdigit()] or [5432]
        for host in (pairs.get("hostaddr") or pairs["host"]).split(","):
            found += _host_ports(host, ports)
        return found
    match = HOST_PORT.match(value.strip())
    return _host_ports(match[1], [int(match[2])]) if match else []


def _paths_of(value: str) -> list[str]:
    """Return the local paths a configuration value names: an absolute path, or a sqlite:/file: URL."""
    path = _sqlite_file(value) or (value if value.startswith("/") else "")
    return [os.path.realpath(path)] if path and "\0" not in path and "\n" not in path else []


def identities(paths: Iterable[str]) -> tuple[tuple[int, int] | None, ...]:
    """Return the files the paths name now (a jail binds what it found: a new file needs a new jail)."""
    found: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            status = os.stat(path)
            found.append((status.st_dev, status.st_ino))
        except OSError:
            found.append(None)
    return tuple(found)


def _overlaps(path: str, protected: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") or p.startswith(path.rstrip("/") + "/")
               for p in protected)


def policy(settings: Settings, args: Iterable[Any]) -> Policy:
    """Return the policy of a call: what its configuration (any dict among args) and the settings name."""
    items = tuple(sorted((str(k), v) for arg in args if isinstance(arg, dict) for k, v in arg.items()
                         if isinstance(v, (str, int)) and not isinstance(v, bool)))
    return _policy(settings, items)


@functools.lru_cache(maxsize=256)
def _policy(settings: Settings, items: tuple[tuple[str, str | int], ...]) -> Policy:
    values = dict(items)
    paths: list[str] = []
    folders: list[str] = [path for value in settings.read for path in _paths_of(value)]
    endpoints: list[tuple[str, int]] = []
    for key, value in [*items, *(("", v) for v in settings.connect)]:
        if not isinstance(value, str) or SECRET_NAME.search(key):
            continue
        (folders if HOST_KEY.search(key) else paths).extend(_paths_of(value))
        if HOST_KEY.search(key) and not value.startswith("/"):
            prefix = key[: HOST_KEY.search(key).start()]  # type: ignore[union-attr]
            port = str(values.get(prefix + "_port", values.get(prefix + "port", values.get("port", ""))))
            found = _endpoints_of(value)
            ports = [int(port)] if port.isdigit() else DEFAULT_PORTS
            endpoints += found or [e for host in value.split(",") for e in _host_ports(host, ports)]
        elif not PORT_KEY.search(key):
            endpoints += _endpoints_of(value)
    refused = sorted({p for p in paths + folders
                      if _overlaps(p, settings.protected) or p == "/" or _overlaps(p, KERNEL_ROOTS)})
    return Policy(tuple(sorted(set(paths) - set(refused))), tuple(sorted(set(folders) - set(refused))),
                  tuple(sorted({(h.lower(), p) for h, p in endpoints if 0 < p < 65536})), tuple(refused))


def plan(settings: Settings, policy: Policy, memory_mb: int, connect_timeout: float) -> dict[str, Any]:
    """Return what a worker is started with (JSON, no secret): the settings and the connection's policy."""
    return {**asdict(settings), "policy": asdict(policy), "memory_mb": memory_mb,
            "connect_timeout": connect_timeout, "seccomp": _seccomp(settings.network == "hosts"),
            "runtime": _runtime_paths(), "packages": [str(p) for p in _module_packages()],
            "host_tmp": tempfile.gettempdir()}


@functools.cache
def _seccomp(notify: bool) -> dict[str, Any]:
    """Compile the workers' seccomp filter once per process, with libseccomp (by name, for this machine).

    Compiled here, not in each worker: importing libseccomp's binding costs a worker two `ldconfig` runs.
    """
    try:
        import pyseccomp as seccomp

        arch = seccomp.system_arch()
        numbers = {name: seccomp.resolve_syscall(arch, name) for name in ("seccomp", "pivot_root")}
        return {"program": base64.b64encode(_program(seccomp, notify)).decode(), **numbers}
    except Exception as error:  # ImportError, OSError, or libseccomp's own RuntimeError
        return {"missing": f"libseccomp is missing ({error})"}


def _program(seccomp: Any, notify: bool) -> bytes:
    """Return the filter as BPF: DENIED, namespaces, IP sockets but TCP refused; connect() to the keeper."""
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED:
        with contextlib.suppress(Exception):  # a syscall this architecture lacks needs no rule
            rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    for flag in NAMESPACE_FLAGS:  # clone() into new namespaces; clone3's flags are out of a filter's reach
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # so that libc falls back to clone()
    # TCP Fast Open connects inside sendto()/sendmsg(), past the connect() the keeper and Landlock check.
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "sendto", seccomp.Arg(3, seccomp.MASKED_EQ, MSG_FASTOPEN,
                                                                     MSG_FASTOPEN))
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "sendmsg", seccomp.Arg(2, seccomp.MASKED_EQ, MSG_FASTOPEN,
                                                                      MSG_FASTOPEN))
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "sendmmsg", seccomp.Arg(3, seccomp.MASKED_EQ, MSG_FASTOPEN,
                                                                       MSG_FASTOPEN))
    # Sockets of the families scripts need only: AF_VSOCK (and the like) reach past every namespace.
    for name in ("socket", "socketpair"):
        for family in range(AF_MAX):
            if family not in SOCKET_FAMILIES:
                rules.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), name, seccomp.Arg(0, seccomp.EQ, family))
        rules.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), name, seccomp.Arg(0, seccomp.GE, AF_MAX))
    # IP sockets are TCP only: a datagram goes where sendto() says, past the connect() the keeper checks
    # (and Landlock restricts TCP only). Names resolve from the jail's /etc/hosts, written by the keeper.
    for family in IP_FAMILIES:
        for kind in range(SOCK_TYPE_MASK + 1):
            if kind != SOCK_STREAM:
                rules.add_rule(seccomp.ERRNO(errno.EPERM), "socket", seccomp.Arg(0, seccomp.EQ, family),
                               seccomp.Arg(1, seccomp.MASKED_EQ, SOCK_TYPE_MASK, kind))
    if notify:
        rules.add_rule(seccomp.NOTIFY, "connect")
    read, write = os.pipe()
    try:
        rules.export_bpf(_Fd(write))
        os.close(write)
        write = -1
        program = b""
        while chunk := os.read(read, 65536):
            program += chunk
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)
    return program


class _Fd:
    """A bare descriptor, for libseccomp's export, which wants a file object."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


@functools.cache
def _runtime_paths() -> list[str]:
    """Return what every script may read: interpreter, virtualenv, libraries, name service and TLS files."""
    paths = [sys.base_prefix, sys.prefix, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
             sysconfig.get_paths()["platlib"], *LIBRARY_DIRS, *ETC_FILES]
    for package in _module_packages():
        paths.append(str(package / "__init__.py"))
    for name in SCRIPT_MODULES:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            paths.append(spec.origin)
    return paths


@functools.cache
def _module_packages() -> list[Path]:
    """Return the package folders of SCRIPT_MODULES, which the import system lists to find a module."""
    folders = []
    for name in SCRIPT_MODULES:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            folders += list(Path(spec.origin).parents[:name.count(".")])
    return folders


def clean_stale(folder: str | None = None) -> None:
    """Remove the host folders of partial jails, and the memory cgroups of jails, whose keeper died
    without removing them."""
    base = Path(folder or tempfile.gettempdir())
    for path in base.glob(STALE_PREFIX + "*-*"):
        pid = path.name[len(STALE_PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
    confine.remove_groups()


def remove_folder(pid: int) -> None:
    """Remove what a killed worker's jail kept outside it: a partial jail's host folder, a memory cgroup."""
    confine.remove_folder(pid, tempfile.gettempdir())
    confine.remove_groups(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
