"""The child side of the script jail: worker.py calls `confine()` first, which returns inside the jail.

idp.migration.jail plans a worker's jail in the web process; this module builds and keeps it, with the
standard library only (a worker starts faster for it). One worker is four processes, one short-lived:

    keeper   worker.py as the parent started it; outside every namespace. Writes the jail's uid map,
             connects on the scripts' behalf (seccomp user notification), reports how the runner ended.
    setup    creates the user, PID, mount, IPC, UTS and (network "hosts") network namespaces, builds the
             jail's root file system, starts init and exits.
    init     PID 1 of the jail: reaps orphans; when the keeper dies it exits, and the kernel kills the jail.
    runner   PID 2: rlimits, no capabilities, Landlock, seccomp; serves the calls. After each call it kills
             every other process of the jail, so nothing a script starts outlives its call.

The root is a read-only tmpfs holding read-only bind mounts of the Python runtime, the virtualenv, the
shared libraries, the name service's and TLS's files in /etc, idp.migration.hashes and the files the
connection's configuration names (the provider's protected paths inside them covered by empty, read-only
mounts); /tmp (also /dev/shm) is a tmpfs of `disk_mb`, gone with the namespace. There is no DNS in the
jail (seccomp refuses IP sockets other than TCP): its /etc/hosts holds the names the configuration names,
as the keeper resolved them when the worker started, and its /etc/resolv.conf no resolver.
Landlock is reached through a small ctypes layer (its three syscalls): no binding we found is both
established and cheap to import in every worker.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from idp.migration.worker import encode, lower_limit, receive, send, watch_parent

HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
LOCALHOST = "localhost"
PLAN_VARIABLE = "IDP_SCRIPT_JAIL"  # how the parent hands a worker its plan (not argv: world-readable)
STALE_PREFIX = "idp-script-"  # host folders of partial jails without a mount namespace: idp-script-<pid>-…
JAIL_TMP = "/tmp"  # noqa: S108 - the jail's own /tmp, a private tmpfs
PASSWD_NAME = "idp-script"


GROUP_PREFIX = "idp-jail-"  # memory cgroups of jails, beside the provider's own: idp-jail-<keeper pid>


class JailUnavailable(Exception):
    """The kernel lacks a mechanism the jail's settings require (or refused it)."""


def remove_folder(pid: int, folder: str) -> None:
    """Remove the host folder of a worker's partial jail, if it made one."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if name.startswith(f"{STALE_PREFIX}{pid}-"):
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def memory_cgroup() -> str | None:
    """Return the folder of this process's memory cgroup where jails' groups can be made, or None."""
    with contextlib.suppress(OSError, ValueError):
        for line in _read("/proc/self/cgroup").splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):  # cgroup v1's memory hierarchy
                folder = f"/sys/fs/cgroup/memory{path}"
                return folder if os.access(folder, os.W_OK) else None
            if controllers == "":  # cgroup v2: only where memory is delegated to our children
                folder = f"/sys/fs/cgroup{path}"
                if "memory" in _read(f"{folder}/cgroup.subtree_control").split() \
                        and os.access(folder, os.W_OK):
                    return folder
    return None


def remove_groups(keeper: int | None = None) -> None:
    """Remove the memory cgroup of a jail (its keeper's pid), or of every jail whose keeper has died."""
    folder = memory_cgroup()
    with contextlib.suppress(OSError):
        for name in os.listdir(folder) if folder else ():
            pid = name[len(GROUP_PREFIX):]
            if not name.startswith(GROUP_PREFIX) or not pid.isdigit():
                continue
            if (keeper is None and not os.path.exists(f"/proc/{pid}")) or int(pid) == keeper:
                _remove_group(f"{folder}/{name}", 2.0)


def _remove_group(group: str, patience: float) -> None:
    """Remove a jail's cgroup, ending what is left in it (its keeper is gone, or going)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            os.rmdir(group)
            return
        except FileNotFoundError:
            return
        except OSError:
            with contextlib.suppress(OSError, ValueError):
                for pid in _read(f"{group}/cgroup.procs").split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)


CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
CLONE_NEWCGROUP, CLONE_NEWTIME = 0x02000000, 0x00000080
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
MNT_DETACH = 2
# Flags a bind mount made in a user namespace must keep from its source (the kernel locks them).
KEPT_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
              (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 24, 36, 38
SYS_PIDFD_GETFD = 438  # these, the same number on every architecture
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION, LANDLOCK_RULE_PATH_BENEATH, LANDLOCK_RULE_NET_PORT = 1, 1, 2
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3 and 5
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}  # where libseccomp cannot say
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
# Syscalls no script needs that open ways out (ptrace, mounts, namespaces, kernel keys, io_uring, which
# seccomp cannot see into, BPF) or memory the rlimits do not count (memfd, System V and POSIX IPC).
DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "bpf", "perf_event_open",
          "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key",
          "request_key", "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fsconfig",
          "fspick",
          "move_mount", "open_tree", "mount_setattr", "unshare", "setns", "kexec_load", "kexec_file_load",
          "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "quotactl",
          "open_by_handle_at", "name_to_handle_at", "syslog", "vhangup", "iopl", "ioperm", "memfd_create",
          "memfd_secret", "shmget", "msgget", "semget", "mq_open", "personality", "lookup_dcookie")
NAMESPACE_FLAGS = (CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                   CLONE_NEWCGROUP, CLONE_NEWTIME)
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER = 1, 1 << 3
MSG_FASTOPEN = 0x20000000
NOTIF = struct.Struct("=QIIiIQ6Q")  # struct seccomp_notif
NOTIF_RESP = struct.Struct("=QqiI")  # struct seccomp_notif_resp
NOTIF_ADDFD = struct.Struct("=QIIII")  # struct seccomp_notif_addfd
USER_NOTIF_FLAG_CONTINUE, ADDFD_FLAG_SETFD = 1, 1


def _ioctl(direction: int, number: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("!") << 8) | number


NOTIF_RECV, NOTIF_SEND = _ioctl(3, 0, NOTIF.size), _ioctl(3, 1, NOTIF_RESP.size)
NOTIF_ID_VALID, NOTIF_ADDFD_IOC = _ioctl(1, 2, 8), _ioctl(1, 3, NOTIF_ADDFD.size)
# Socket options a client sets before connect() (libpq sets TCP_NODELAY and keepalives), copied onto the
# socket the keeper connects in its place.
COPIED_OPTIONS = ((socket.SOL_SOCKET, socket.SO_KEEPALIVE), (socket.SOL_SOCKET, socket.SO_OOBINLINE),
                  (socket.IPPROTO_TCP, socket.TCP_NODELAY), (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                  (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL), (socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                  (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", 18)))

_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
    return result


def _prctl(option: int, value: int) -> None:
    _check(_c().prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           f"prctl({option})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_c().mount(source and os.fsencode(source), os.fsencode(target), fstype and fstype.encode(),
                      ctypes.c_ulong(flags), data and data.encode()), f"mount {target}")


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
    sock.sendmsg([json.dumps(message).encode()], ancillary)


def _receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """Return the next message and the descriptors it carries; None once every sender has gone."""
    data, ancillary, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
    fds = [fd for level, kind, payload in ancillary
           if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
           for fd in struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) - len(payload) % 4])]
    return (json.loads(data) if data else None), fds


class _Layout:
    """The jail's root: real paths to bind (by descriptors opened while privileged), symlinks to recreate."""

    def __init__(self, binds: dict[str, int], links: dict[str, str], read: list[str]) -> None:
        self.binds = binds  # real path → O_PATH descriptor, opened in the new mount namespace (-1 before)
        self.links = links  # path → symlink text
        self.read = read  # the paths as scripts name them, for Landlock

    @classmethod
    def of(cls, paths: Iterable[str]) -> _Layout:
        layout = cls({}, {}, [])
        for path in dict.fromkeys(paths):
            if os.path.lexists(path):
                real = layout._resolve(path, 0)
                if os.path.exists(real):
                    layout.binds[real] = -1
                layout.read.append(path)
        for real in list(layout.binds):  # a path inside another bound one comes with it
            if any(real.startswith(other.rstrip("/") + "/") for other in layout.binds if other != real):
                del layout.binds[real]
        return layout

    def open(self) -> None:
        """Open what is to be bound, while still privileged (a bind's source must be in our namespace)."""
        for real in self.binds:
            self.binds[real] = os.open(real, os.O_PATH | os.O_CLOEXEC)

    def _resolve(self, path: str, depth: int) -> str:
        """Return the real path of `path`, noting each symlink met on the way."""
        if depth > 16:
            raise OSError(errno.ELOOP, f"too many symlinks: {path}")
        current = "/"
        for part in filter(None, path.split("/")):
            candidate = os.path.join(current, part)
            if os.path.islink(candidate):
                target = os.readlink(candidate)
                self.links[candidate] = target
                current = self._resolve(os.path.normpath(os.path.join(current, target)), depth + 1)
            else:
                current = candidate
        return current

    def close(self) -> None:
        for real, fd in self.binds.items():
            if fd >= 0:
                os.close(fd)
                self.binds[real] = -1


def _landlock_abi() -> int:
    """Return the kernel's Landlock ABI version, 0 without Landlock."""
    try:
        return _check(_c().syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                                   ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION)), "landlock")
    except OSError:
        return 0


class _Landlock:
    """A Landlock ruleset: a small ctypes layer over its three syscalls (landlock(7))."""

    def __init__(self, abi: int, handled_fs: int, handled_net: int, scoped: int) -> None:
        # The attribute struct grew with the ABI: give the kernel only the fields it knows.
        fields = (handled_fs, handled_net if abi >= 4 else 0, scoped if abi >= 6 else 0)
        size = 8 * (3 if abi >= 6 else 2 if abi >= 4 else 1)
        attr = ctypes.create_string_buffer(struct.pack("=3Q", *fields)[:size], size)
        self.fd = _check(_c().syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), attr, ctypes.c_size_t(size),
                                      ctypes.c_uint32(0)), "landlock_create_ruleset")
        self.net = fields[1]

    def allow_path(self, path: str, access: int) -> None:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            rule = ctypes.create_string_buffer(struct.pack("=Qi", access, fd), 12)
            _check(_c().syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(self.fd),
                                ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), rule, ctypes.c_uint32(0)), path)
        finally:
            os.close(fd)

    def allow_port(self, port: int, access: int) -> None:
        if self.net:
            rule = ctypes.create_string_buffer(struct.pack("=QQ", access, port), 16)
            _check(_c().syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(self.fd),
                                ctypes.c_int(LANDLOCK_RULE_NET_PORT), rule, ctypes.c_uint32(0)), str(port))

    def restrict(self) -> None:
        """Enforce the ruleset on this process and what it starts (no_new_privs is already set)."""
        try:
            _check(_c().syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(self.fd),
                                ctypes.c_uint32(0)), "landlock_restrict_self")
        finally:
            os.close(self.fd)


def _load_seccomp(program: bytes, notify: bool, number: int) -> int:
    """Load the filter on this process (and its future children); return the listener, or -1."""

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    flags = SECCOMP_FILTER_FLAG_NEW_LISTENER if notify else 0
    fprog = Program(len(program) // 8, program)
    listener = _check(_c().syscall(ctypes.c_long(number), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                                   ctypes.c_long(flags), ctypes.byref(fprog)), "seccomp")
    return listener if notify else -1  # without a listener, seccomp() answers 0


def _pivot_root(new: str, old: str, number: int) -> None:
    """Make `new` the root, the old one mounted at `old` (glibc has no wrapper)."""
    _check(_c().syscall(ctypes.c_long(number), os.fsencode(new), os.fsencode(old)), "pivot_root")


class _Jail:
    """One worker's jail, as its keeper builds and keeps it."""

    def __init__(self, plan: dict[str, Any], channel: tuple[int, int]) -> None:
        self.plan = plan
        self.channel = channel
        self.full = plan["level"] == "full"
        self.hosts = plan["network"] == "hosts"
        self.notes: list[str] = []
        self.root = os.getuid() == 0
        self.uid: int
        self.gid: int
        self.uid, self.gid = (plan["uid"], plan["gid"]) if self.root else (os.getuid(), os.getgid())
        self.policy = plan["policy"]
        self.ports = sorted({port for _, port in self.policy["endpoints"]})
        self.etc_hosts = ""

    def lacking(self, what: str) -> None:
        """A mechanism is missing: refuse (full jail) or note it (partial jail)."""
        if self.full:
            raise JailUnavailable(what)
        self.notes.append(what)

    # -- keeper ------------------------------------------------------------------------------------------

    def keep(self) -> list[str]:
        """Build the jail; return its notes in the runner, never in the keeper (it exits with the runner)."""
        try:
            abi = _landlock_abi()
            if abi < 6:
                self.lacking(f"Landlock ABI 6 (scoped signals and sockets) is missing (the kernel has {abi})")
            self.abi = abi
            self.seccomp = self.plan["seccomp"]
            if "missing" in self.seccomp:
                self.lacking(self.seccomp["missing"])
            named = [p for p in self.policy["read"] if os.path.isfile(p)]
            named += [p for p in self.policy["folders"] if os.path.isdir(p)]
            protected = list(self.plan.get("protected", ()))
            # The provider's keys, instance folder and database never come with the runtime: a runtime
            # path inside one is left out, and one inside a bound folder is covered (see _build_root).
            paths = [p for p in [*self.plan["runtime"], *named]
                     if not _within(os.path.realpath(p), protected)]
            self.layout = _Layout.of([*paths, *DEVICES])
            self.hidden = self._hidden(protected, [os.path.realpath(p) for p in paths])
        except JailUnavailable as error:
            self._refuse(str(error))
        if self.root:
            os.setgroups([])  # the runner must not keep root's supplementary groups
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # init is handed to us when setup exits
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        lifeline_r, lifeline_w = os.pipe()
        setup = os.fork()
        if setup == 0:
            ours.close()
            os.close(lifeline_w)
            try:
                return self._setup(theirs, lifeline_r)
            except BaseException as error:  # reported, then this process ends
                with contextlib.suppress(OSError):
                    _send(theirs, {"error": _describe(error)})
                os._exit(70)
        theirs.close()
        os.close(lifeline_r)
        threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
        self._supervise(ours, setup)
        raise AssertionError("unreachable")

    def _hidden(self, protected: list[str], needed: list[str]) -> list[str]:
        """Return the protected paths inside bound folders, to cover in the jail: folders, or files.

        A protected file is covered by its folder where it can be (SQLite makes and removes its journal
        files there; a file covered alone would show again once removed and made anew).
        """
        bound = list(self.layout.binds)
        hidden: list[str] = []
        for path in protected:
            roots = [root for root in bound if path != root and _within(path, [root])]
            if not roots:
                continue
            folder = os.path.dirname(path)
            if os.path.isdir(path):
                hidden.append(path)
            elif folder not in roots and not any(_within(p, [folder]) for p in needed):
                hidden.append(folder)
            elif os.path.isfile(path):
                hidden.append(path)
            else:
                self.lacking(f"{path} cannot be hidden from scripts: it would be made in {folder}, which "
                             "scripts read (move the provider's database or keys out of it)")
        return sorted({p for p in hidden if not _within(p, [h for h in hidden if h != p])})

    def _refuse(self, message: str) -> None:
        """Answer the first call with the jail's refusal, and end."""
        refuse(self.channel, message)

    def _supervise(self, sock: socket.socket, setup: int) -> None:
        """Map setup's ids, hand over to the runner, then connect on its behalf until it ends."""
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        listener = -1
        endpoints = _Endpoints(self.policy["endpoints"], self.plan["connect_timeout"])
        status: int | None = None
        ready = False
        while True:
            for fd, events in poller.poll():
                if fd == listener:
                    if events & (select.POLLHUP | select.POLLERR):
                        poller.unregister(listener)
                        os.close(listener)
                        listener = -1
                    else:
                        endpoints.answer(listener)
                    continue
                if not events & select.POLLIN:  # every sender has gone
                    self._end(status, ready)
                message, fds = _receive(sock)
                if message is None:
                    self._end(status, ready)
                elif "unshared" in message:
                    self._map(setup, message["unshared"])
                    unbounded = self._bound_memory(setup)
                    _send(sock, {"mapped": True, "hosts": endpoints.hosts_file(), "notes": unbounded})
                elif "error" in message:
                    if self.full or not ready:
                        self._refuse(message["error"])
                    self.notes.append(message["error"])
                elif "ready" in message:
                    ready = True
                    for channel_fd in self.channel:  # from now on the runner alone holds the channel
                        os.close(channel_fd)
                    if fds:
                        listener = fds[0]
                        poller.register(listener, select.POLLIN)
                elif "status" in message:
                    status = message["status"]
                    self._end(status, ready)
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0] > 0:  # setup, and init once it has ended
                    pass

    def _map(self, pid: int, mapped: bool) -> None:
        """Map the scripts' user and group into setup's new user namespace (from outside, as it must be)."""
        if not mapped:
            return
        for name, text in (("setgroups", "deny"), ("uid_map", f"{self.uid} {self.uid} 1"),
                           ("gid_map", f"{self.gid} {self.gid} 1")):
            _write(f"/proc/{pid}/{name}", text)

    def _bound_memory(self, setup: int) -> list[str]:
        """Put setup, and so every process of the jail, in a memory cgroup of its own, where one can be
        made: the jail's memory, its /tmp included, is then bounded in all, not only process by process.
        Return a note for the runner where it cannot."""
        folder = memory_cgroup()
        group = f"{folder}/{GROUP_PREFIX}{os.getpid()}"
        limit = str((self.plan["memory_mb"] + self.plan["disk_mb"]) * 1024 * 1024)  # /tmp is memory too
        try:
            if folder is None:
                raise OSError(errno.EACCES, "no memory cgroup can be made here")
            os.mkdir(group, 0o700)
            v1 = os.path.exists(f"{group}/memory.limit_in_bytes")
            _write(f"{group}/memory.limit_in_bytes" if v1 else f"{group}/memory.max", limit)
            with contextlib.suppress(OSError):  # swap too, where the kernel accounts for it
                _write(f"{group}/memory.memsw.limit_in_bytes" if v1 else f"{group}/memory.swap.max",
                       limit if v1 else "0")
            _write(f"{group}/cgroup.procs", str(setup))
        except OSError as error:
            _remove_group(group, 0.0)
            return [f"no memory cgroup ({error.strerror}): each of a script's processes is bounded in "
                    "memory, not all of them together"]
        return []

    def _end(self, status: int | None, ready: bool) -> None:
        """Exit as the runner did, so that the parent can say how it ended."""
        remove_folder(os.getpid(), self.plan["host_tmp"])
        remove_groups(os.getpid())
        if not ready and status is None:
            self._refuse("the jail could not be built")
        if status is not None and os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        os._exit(os.waitstatus_to_exitcode(status) if status is not None and os.WIFEXITED(status) else 0)

    # -- setup (in the new namespaces) -------------------------------------------------------------------

    def _setup(self, sock: socket.socket, lifeline: int) -> list[str]:
        namespaces = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS
        if self.hosts:
            namespaces |= CLONE_NEWNET
        try:
            _check(_c().unshare(ctypes.c_int(namespaces)), "unshare")
            isolated = True
        except OSError as error:
            self.lacking(f"namespaces are refused ({error.strerror})")
            isolated = False
        _send(sock, {"unshared": isolated})
        reply, _ = _receive(sock)
        if not reply or "mapped" not in reply:
            os._exit(0)
        self.etc_hosts = str(reply.get("hosts", ""))
        self.notes.extend(reply.get("notes", []))
        if isolated:
            self.layout.open()
            os.setresgid(self.gid, self.gid, self.gid)
            os.setresuid(self.uid, self.uid, self.uid)  # keeps the capabilities held in the new namespace
            self._build_root()
            self.tmp = JAIL_TMP
        else:
            name = f"{STALE_PREFIX}{os.getppid()}-{os.urandom(6).hex()}"  # the keeper's pid (remove_folder)
            self.tmp = os.path.join(self.plan["host_tmp"], name)
            if self.hidden:  # Landlock cannot refuse a path beneath one it allows
                self.notes.append(f"without a mount namespace, scripts can read {', '.join(self.hidden)}")
            for folder in (self.tmp, f"{self.tmp}/home", f"{self.tmp}/work"):
                os.makedirs(folder, 0o700, exist_ok=True)
                os.chown(folder, self.uid, self.gid)  # the runner's, when it drops root below
        self.layout.close()
        init = os.fork()
        if init:
            os._exit(0)  # init is handed to the keeper (a subreaper)
        return self._init(sock, lifeline, isolated)

    def _build_root(self) -> None:
        """Make a tmpfs the root, holding read-only binds of what scripts may read, and a private /tmp."""
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        new = JAIL_TMP  # any directory serves as the mount point of the new root
        _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096")
        # The private /tmp first: what is bound below (a configured file in /tmp) must be on top of it.
        os.makedirs(new + JAIL_TMP, exist_ok=True)
        _mount("tmpfs", new + JAIL_TMP, "tmpfs", MS_NOSUID | MS_NODEV,
               f"mode=1777,size={self.plan['disk_mb']}m,nr_inodes={max(1024, self.plan['disk_mb'] * 64)}")
        for name in ("home", "work"):
            os.mkdir(f"{new}{JAIL_TMP}/{name}", 0o700)
        for path, text in self.layout.links.items():
            os.makedirs(new + os.path.dirname(path), exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.symlink(text, new + path)
        for real, fd in self.layout.binds.items():
            target = new + real
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(target, exist_ok=True)
            else:
                _write(target, "")
            _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
            kept = os.statvfs(target).f_flag
            flags = sum(ms for st, ms in KEPT_FLAGS if kept & st) | (0 if real in DEVICES else MS_NODEV)
            _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | flags)
        covered = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
        for path in self.hidden:  # the provider's own files inside a bound folder: covered by emptiness
            if os.path.isdir(new + path):
                _mount("tmpfs", new + path, "tmpfs", covered, "mode=000,size=4k,nr_inodes=2")
            else:
                if not os.path.exists(new + "/.empty"):
                    _write(new + "/.empty", "")
                    os.chmod(new + "/.empty", 0)
                _mount(new + "/.empty", new + path, None, MS_BIND)
                _mount(None, new + path, None, MS_REMOUNT | MS_BIND | covered)
        os.makedirs(new + "/dev", exist_ok=True)
        os.symlink(JAIL_TMP, new + "/dev/shm")  # noqa: S108 - POSIX shared memory: the same disk limit
        os.makedirs(new + "/etc", exist_ok=True)
        _write(new + "/etc/passwd",
            f"root:x:0:0::/:/usr/sbin/nologin\n{PASSWD_NAME}:x:{self.uid}:{self.gid}::/tmp/home:/usr/sbin/nologin\n")
        _write(new + "/etc/group", f"root:x:0:\n{PASSWD_NAME}:x:{self.gid}:\n")
        _write(new + "/etc/hosts", self.etc_hosts)  # the configured names, resolved by the keeper
        _write(new + "/etc/resolv.conf", "# no resolver: names resolve from /etc/hosts only\n")
        os.chdir(new)
        os.mkdir(".old")
        _pivot_root(".", ".old", self.seccomp.get("pivot_root", PIVOT_ROOT.get(os.uname().machine, -1)))
        os.chdir("/")
        _check(_c().umount2(b"/.old", ctypes.c_int(MNT_DETACH)), "umount /.old")
        os.rmdir("/.old")
        _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)

    # -- init (PID 1) and runner (PID 2) -----------------------------------------------------------------

    def _init(self, sock: socket.socket, lifeline: int, isolated: bool) -> list[str]:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        runner = os.fork()
        if runner == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (wake_r, wake_w, lifeline):
                os.close(fd)
            return self._run(sock, isolated)
        while True:  # reap everything; end with the runner, or as soon as the keeper has gone
            readable, _, _ = select.select([lifeline, wake_r], [], [])
            if lifeline in readable:
                os._exit(0)
            os.read(wake_r, 512)
            with contextlib.suppress(ChildProcessError):
                while (found := os.waitpid(-1, os.WNOHANG))[0] > 0:
                    if found[0] == runner:
                        with contextlib.suppress(OSError):
                            _send(sock, {"status": found[1]})
                        os._exit(0)

    def _run(self, sock: socket.socket, isolated: bool) -> list[str]:
        """Lock the runner in and return to serve calls."""
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.environ.update(HOME=f"{self.tmp}/home", TMPDIR=self.tmp)
        if not isolated and self.root:
                os.setresgid(self.gid, self.gid, self.gid)
                os.setresuid(self.uid, self.uid, self.uid)
        os.chdir(f"{self.tmp}/work")
        disk = self.plan["disk_mb"] * 1024 * 1024
        for limit, value in ((resource.RLIMIT_NPROC, self.plan["processes"]), (resource.RLIMIT_FSIZE, disk),
                             (resource.RLIMIT_MSGQUEUE, 0), (resource.RLIMIT_MEMLOCK, 0)):
            lower_limit(limit, value)
        self._drop_capabilities()
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        self.scoped = self._landlock(isolated)
        listener = -1
        if "program" in self.seccomp:
            try:
                listener = _load_seccomp(base64.b64decode(self.seccomp["program"]), self.hosts,
                                         self.seccomp["seccomp"])
            except OSError as error:
                self.lacking(f"seccomp is refused ({error.strerror})")
        if self.hosts and listener < 0 and isolated:
            self.lacking("the connector has no seccomp listener: scripts cannot reach their hosts")
        _send(sock, {"ready": True}, [listener] if listener >= 0 else None)
        if listener >= 0:
            os.close(listener)
        sock.close()
        self.isolated = isolated
        return self.notes

    def _drop_capabilities(self) -> None:
        """Drop every capability the new user namespace gave (the bounding set too)."""
        for number in range(64):
            if _c().prctl(PR_CAPBSET_DROP, ctypes.c_ulong(number), ctypes.c_ulong(0), ctypes.c_ulong(0),
                          ctypes.c_ulong(0)) < 0:
                break
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        data = (ctypes.c_uint32 * 6)()
        _check(_c().capset(header, data), "capset")

    def _landlock(self, isolated: bool) -> bool:
        """Restrict files, TCP ports and signals with Landlock; return whether signals are scoped."""
        if self.abi < 1:
            return False
        every = ((1 << 13) - 1 | (FS_REFER if self.abi >= 2 else 0) | (FS_TRUNCATE if self.abi >= 3 else 0)
                 | (FS_IOCTL_DEV if self.abi >= 5 else 0))
        files = FS_READ_FILE | FS_EXECUTE  # a file rule may hold file rights only
        devices = FS_READ_FILE | FS_WRITE_FILE | (FS_TRUNCATE if self.abi >= 3 else 0)  # open(devnull, "w")
        try:
            rules = _Landlock(self.abi, every, NET_BIND_TCP | NET_CONNECT_TCP,
                              SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET)
            # Without a mount namespace /etc/hosts is the host's, and a name only DNS knows is unknown.
            extra = (["/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf"] if isolated
                     else ["/etc/hosts"])
            for path in [*self.layout.read, *extra]:
                if os.path.exists(path):
                    rules.allow_path(path, devices if path in DEVICES else files | (
                        FS_READ_DIR if os.path.isdir(path) else 0))
            for folder in self.plan["packages"]:  # the import system lists them; in the jail they hold
                rules.allow_path(folder, FS_READ_DIR)  # only what is bound
            rules.allow_path(self.tmp, every)
            for port in self.ports:  # "hosts": the keeper connects in the runner's place anyway
                rules.allow_port(port, NET_CONNECT_TCP)
            rules.restrict()
        except OSError as error:
            self.lacking(f"Landlock is refused ({error})")
            return False
        if self.abi < 4:
            self.lacking("Landlock cannot restrict TCP ports (ABI < 4)")
        return self.abi >= 6


def _within(path: str, folders: Iterable[str]) -> bool:
    """Return whether `path` is one of the folders or lies inside one."""
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def _describe(error: BaseException) -> str:
    return str(error) if isinstance(error, JailUnavailable) else f"{type(error).__name__}: {error}"


class _Endpoints:
    """The keeper's connector: connects in the runner's place to the endpoints its policy allows."""

    def __init__(self, named: Iterable[Iterable[Any]], timeout: float) -> None:
        self.named = [(str(host), int(port)) for host, port in named]
        self.timeout = timeout
        self.allowed: set[tuple[str, int]] = set()
        self.addresses: dict[str, dict[str, None]] = {}  # host name → its addresses, in the order found
        self.resolved = 0.0
        self._resolve()

    def _resolve(self) -> None:
        """Look the named hosts up (again): the runner connects to addresses, configurations name hosts."""
        self.resolved = time.monotonic()
        for host, port in self.named:
            for address in _lookup(host, port):
                self.allowed.add((address, port))
                self.addresses.setdefault(host.lower(), {})[address] = None

    def hosts_file(self) -> str:
        """Return the jail's /etc/hosts: localhost and the named hosts, at the addresses found for them.

        The jail has no DNS: a name resolves there as it did here when the worker started (the keeper
        allows the addresses it found then, and those it finds later).
        """
        local = {address: None for address in _lookup(LOCALHOST, 0)} or {"127.0.0.1": None}
        names = {LOCALHOST: {**local, **self.addresses.get(LOCALHOST, {})}}
        names.update((name, found) for name, found in self.addresses.items()
                     if name != LOCALHOST and HOST_NAME.match(name) and not _is_address(name))
        return "".join(f"{address} {name}\n" for name, found in names.items() for address in found)

    def allows(self, address: str, port: int, stream: bool) -> bool:
        if not stream:  # seccomp makes no other IP socket: no datagram leaves the jail
            return False
        if (address, port) not in self.allowed and time.monotonic() - self.resolved > 1.0:
            self._resolve()
        return (address, port) in self.allowed

    def answer(self, listener: int) -> None:
        """Take one connect() the runner made and answer it: connected, refused, or let through."""
        request = bytearray(NOTIF.size)
        try:
            fcntl.ioctl(listener, NOTIF_RECV, request)
        except OSError:  # the caller was killed meanwhile
            return
        notice, pid, _, _, _, _, fd, address, length, *_ = NOTIF.unpack(request)
        error: int | None
        flags, error = 0, 0
        try:
            error = self._connect(listener, notice, pid, fd, address, length)
            if error is None:
                flags, error = USER_NOTIF_FLAG_CONTINUE, 0
        except OSError as failure:
            error = failure.errno or errno.EACCES
        except (struct.error, ValueError, TypeError, OverflowError):  # a malformed address
            error = errno.EINVAL
        with contextlib.suppress(OSError):
            answer = NOTIF_RESP.pack(notice, 0, -error if error else 0, flags)
            fcntl.ioctl(listener, NOTIF_SEND, bytearray(answer))

    def _connect(self, listener: int, notice: int, pid: int, fd: int, pointer: int,
                 length: int) -> int | None:
        """Return 0 once connected in the runner's place, an errno, or None to let the connect() by.

        What is let by is decided on the socket's own family, never on the address the runner passed
        (which it may change once read): the kernel reads a Unix or netlink socket's address as such.
        """
        theirs = self._socket(listener, notice, pid, fd)
        with theirs:
            if theirs.family in (socket.AF_UNIX, socket.AF_NETLINK):
                return None  # a Unix socket in the jail's own files; netlink: the jail's network namespace
            if theirs.family not in (socket.AF_INET, socket.AF_INET6):
                return errno.EAFNOSUPPORT  # AF_VSOCK and the like (seccomp refuses to make them anyway)
            with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
                fcntl.ioctl(listener, NOTIF_ID_VALID, struct.pack("=Q", notice))  # pid is still the caller
                raw = os.pread(memory.fileno(), min(length, 128), pointer)
            family = struct.unpack_from("=H", raw)[0] if len(raw) >= 2 else -1
            if family == socket.AF_UNSPEC:  # dissolve the association, done here on the same socket
                result = _c().connect(theirs.fileno(), ctypes.c_char_p(raw[:2] + bytes(14)), 16)
                return ctypes.get_errno() if result < 0 else 0
            if family != theirs.family:
                return errno.EAFNOSUPPORT if family >= 0 else errno.EINVAL
            if length < (16 if family == socket.AF_INET else 24):
                return errno.EINVAL
            port = struct.unpack_from(">H", raw, 2)[0]
            if family == socket.AF_INET:
                host = socket.inet_ntop(family, raw[4:8])
                target: tuple[Any, ...] = (host, port)
            else:
                host = socket.inet_ntop(family, raw[8:24])
                target = (host, port, 0, struct.unpack_from("=I", raw, 24)[0])
            return self._connect_for(listener, notice, pid, fd, theirs, host, port, target)

    def _socket(self, listener: int, notice: int, pid: int, fd: int) -> socket.socket:
        """Return a copy of the runner's socket descriptor (pidfd_getfd)."""
        pidfd = os.pidfd_open(pid)
        try:
            fcntl.ioctl(listener, NOTIF_ID_VALID, struct.pack("=Q", notice))
            copy = _c().syscall(ctypes.c_long(SYS_PIDFD_GETFD), ctypes.c_long(pidfd), ctypes.c_long(fd),
                                ctypes.c_long(0))
            return socket.socket(fileno=_check(copy, "pidfd_getfd"))
        finally:
            os.close(pidfd)

    def _connect_for(self, listener: int, notice: int, pid: int, fd: int, theirs: socket.socket, host: str,
                     port: int, target: tuple[Any, ...]) -> int:
        """Connect in the runner's place, if the policy allows, and put the socket where theirs was."""
        kind = theirs.type
        if not self.allows(_normal(host), port, kind == socket.SOCK_STREAM):
            print(f"[sandbox] connection to {host}:{port} refused: not in the connection's configuration",
                  file=sys.stderr, flush=True)
            return errno.EACCES
        status = fcntl.fcntl(theirs.fileno(), fcntl.F_GETFL)
        ours = socket.socket(theirs.family, kind, theirs.proto)
        with ours:
            for level, option in COPIED_OPTIONS if kind == socket.SOCK_STREAM else COPIED_OPTIONS[:2]:
                with contextlib.suppress(OSError):
                    ours.setsockopt(level, option, theirs.getsockopt(level, option))
            ours.settimeout(self.timeout)
            try:
                ours.connect(target)
            except TimeoutError:
                return errno.ETIMEDOUT
            except OSError as failure:
                return failure.errno or errno.ECONNREFUSED
            fcntl.fcntl(ours.fileno(), fcntl.F_SETFL, status)  # blocking or not, as the runner made it
            cloexec = os.O_CLOEXEC if _cloexec(pid, fd) else 0
            fcntl.ioctl(listener, NOTIF_ADDFD_IOC,
                        bytearray(NOTIF_ADDFD.pack(notice, ADDFD_FLAG_SETFD, ours.fileno(), fd, cloexec)))
        return 0


def _cloexec(pid: int, fd: int) -> bool:
    """Return whether the runner's descriptor is close-on-exec (kept on the socket that replaces it)."""
    try:
        for line in _read(f"/proc/{pid}/fdinfo/{fd}").splitlines():
            if line.startswith("flags:"):
                return bool(int(line.split()[1], 8) & os.O_CLOEXEC)
    except OSError:
        pass
    return True


def _normal(address: str) -> str:
    """Return an IP address in one spelling (IPv4-mapped IPv6 as IPv4)."""
    address = address.split("%")[0]
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            packed = socket.inet_pton(family, address)
        except OSError:
            continue
        if family == socket.AF_INET6 and packed[:12] == b"\0" * 10 + b"\xff\xff":
            return socket.inet_ntop(socket.AF_INET, packed[12:])
        return socket.inet_ntop(family, packed)
    return address


def _read(path: str) -> str:
    with open(path) as file:
        return file.read()


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def _lookup(host: str, port: int) -> list[str]:
    """Return the addresses of a host (none where it is unknown), in the order the resolver gave them."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return []
    return list(dict.fromkeys(_normal(str(address[0])) for *_, address in found))


def _is_address(host: str) -> bool:
    """Return whether a host is an IP address rather than a name."""
    for family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            socket.inet_pton(family, host.split("%")[0])
            return True
    return False


_confined: _Jail | None = None


def refuse(channel: tuple[int, int], message: str) -> None:
    """Answer the first request with the reason the jail cannot be built, and end the worker."""
    requests, responses = channel
    with contextlib.suppress(OSError, ValueError):
        if receive(requests) is not None:
            send(responses, encode({"ok": False, "kind": "jail", "message": message}))
    os._exit(71)


def confine(plan: dict[str, Any], channel: tuple[int, int]) -> list[str]:
    """Build the jail and return inside it, in the runner, with notes on what a partial jail lacks.

    `channel` is the worker's request and response descriptors: the keeper holds them until the runner
    is ready, and answers the first request with the reason if the jail cannot be built.
    """
    global _confined
    if not sys.platform.startswith("linux"):
        if plan["level"] == "full":
            refuse(channel, "the script jail needs Linux")
        threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
        return ["no jail: not Linux"]
    _confined = _Jail(plan, channel)
    return _confined.keep()


def end_call() -> None:
    """Kill whatever the call started, in the jail, and wait until it is gone."""
    jail = _confined
    if jail is None or not (jail.isolated or jail.scoped):  # kill(-1) reaches only the jail when confined
        return
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        try:
            os.kill(-1, 0)
        except ProcessLookupError:
            return
        time.sleep(0.001)
