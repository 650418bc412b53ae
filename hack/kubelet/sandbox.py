"""Between fork and exec: one container's private mount namespace and identity. Touches the system.

Run as ``python hack/kubelet/sandbox.py PLAN.json`` by the process runner (as root); standard
library only, so it needs no import path. It

1. joins the pod's network namespace (if it has one; then it also gets a UTS namespace with the pod's
   hostname) and enters a new mount namespace where every
   mount is private (nothing leaks back to this machine), with its own /dev (a tmpfs with null,
   zero, full, random, urandom, tty, /dev/shm, /dev/pts);
2. mounts the plan's mounts in order: each emptyDir (a fresh folder of the pod) at its mountPath, a
   tmpfs over the runner's home, and, on top, the host paths the pod must still see (the image's
   paths read-only: interpreter, virtual environment, PYTHONPATH; the folders shared with every
   pod, read-write; the termination-message file) — sources are opened before anything is covered,
   so a path under a mountPath is still reachable;
3. with ``readOnlyRootFilesystem`` remounts every other mount read-only (not /proc, /sys, /dev);
4. drops the capability bounding set (``capabilities.drop: [ALL]``), loads a seccomp filter for
   ``seccompProfile: RuntimeDefault`` (the syscalls container runtimes' default profile refuses
   with EPERM), sets groups, GID and UID, sets no_new_privs (``allowPrivilegeEscalation: false``);
5. changes to the working directory and execs the command with exactly the plan's environment.

A failure before exec writes its reason to ``PLAN.json.error`` and exits 128 (the runtime's
StartError).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
from pathlib import Path
from typing import Any

CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWUTS = 0x00020000, 0x40000000, 0x04000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
# Refused by the default seccomp profiles of Docker/containerd (their allow-lists leave these out).
DENIED_SYSCALLS = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount", "move_pages",
    "name_to_handle_at", "nfsservctl", "open_by_handle_at", "perf_event_open", "personality", "pivot_root",
    "process_vm_readv", "process_vm_writev", "quotactl", "reboot", "request_key", "set_mempolicy", "setns",
    "settimeofday", "stime", "swapoff", "swapon", "sysfs", "_sysctl", "umount", "umount2", "unshare", "uselib",
    "userfaultfd", "ustat", "vm86", "vm86old",
)
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_OPT_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [s.encode() if s is not None else None for s in (source, target, fstype, data)]
    _check(libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {source} on {target}")


def _target(path: str, is_dir: bool) -> None:
    p = Path(path)
    if is_dir:
        p.mkdir(parents=True, exist_ok=True)
    elif not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()


def private_dev() -> list[dict[str, Any]]:
    """A container's /dev as runtimes make it: a tmpfs with the usual nodes, /dev/shm and /dev/pts."""
    mounts: list[dict[str, Any]] = [{"kind": "tmpfs", "target": "/dev", "options": "mode=0755"}]
    mounts += [{"kind": "bind", "source": f"/dev/{n}", "target": f"/dev/{n}"} for n in DEVICES]
    mounts += [{"kind": "tmpfs", "target": "/dev/shm", "options": "mode=1777"},
               {"kind": "bind", "source": "/dev/pts", "target": "/dev/pts"}]
    return mounts


def mount_all(mounts: list[dict[str, Any]], read_only_root: bool, cwd: str) -> None:
    _check(libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    mounts = private_dev() + mounts
    # Open every bind source while it is still visible: a later mount may cover its path.
    fds = {i: os.open(m["source"], os.O_PATH) for i, m in enumerate(mounts) if m["kind"] == "bind"}
    for i, m in enumerate(mounts):
        if m["target"] == "/dev/pts":
            for name, to in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
                os.symlink(to, f"/dev/{name}")
        if m["kind"] == "tmpfs":
            _target(m["target"], True)
            _mount("tmpfs", m["target"], "tmpfs", MS_NOSUID | MS_NODEV, m.get("options", "mode=0755"))
            continue
        _target(m["target"], os.path.isdir(f"/proc/self/fd/{fds[i]}"))
        _mount(f"/proc/self/fd/{fds[i]}", m["target"], None, MS_BIND)
        if m.get("ro"):
            _mount(None, m["target"], None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    for fd in fds.values():
        os.close(fd)
    Path(cwd).mkdir(parents=True, exist_ok=True)  # as the runtime does, before the root turns read-only
    if read_only_root:
        writable = {m["target"] for m in mounts if not m.get("ro")}
        for point, opts in _mount_points():
            if point in writable or point.split("/")[1] in ("proc", "sys", "dev"):
                continue
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY
            flags |= sum(f for o, f in _OPT_FLAGS.items() if o in opts and o != "ro")
            _mount(None, point, None, flags)


def _mount_points() -> list[tuple[str, set[str]]]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape")  # mountinfo escapes spaces as \040
        points.append((point, set(fields[5].split(","))))
    return points


def load_seccomp() -> None:
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    ctx = lib.seccomp_init(ctypes.c_uint32(0x7FFF0000))  # SCMP_ACT_ALLOW
    errno_eperm = ctypes.c_uint32(0x00050000 | 1)  # SCMP_ACT_ERRNO(EPERM)
    for name in DENIED_SYSCALLS:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0:  # names this architecture lacks resolve to a negative number
            lib.seccomp_rule_add(ctypes.c_void_p(ctx), errno_eperm, nr, 0)
    ret = lib.seccomp_load(ctypes.c_void_p(ctx))
    lib.seccomp_release(ctypes.c_void_p(ctx))
    if ret != 0:
        raise OSError(-ret, f"seccomp_load: {os.strerror(-ret)}")


def become(ident: dict[str, Any]) -> None:
    if ident["drop_all_caps"]:
        cap = 0
        while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            cap += 1
    if ident["seccomp"]:
        load_seccomp()
    os.setgroups(ident["groups"])
    os.setgid(ident["gid"])
    os.setuid(ident["uid"])
    if ident["no_new_privs"]:
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    errors = open(plan_path + ".error", "w")  # noqa: SIM115 - close-on-exec: it stays empty when exec succeeds
    try:
        if plan.get("netns"):  # the pod's network namespace (hack/kubelet/network.py)
            fd = os.open(plan["netns"], os.O_RDONLY)
            _check(libc.setns(fd, CLONE_NEWNET), f"setns {plan['netns']}")
            os.close(fd)
        if plan.get("hostname"):  # the pod's own hostname, in its own UTS namespace
            _check(libc.unshare(CLONE_NEWUTS), "unshare UTS")
            name = plan["hostname"].encode()
            _check(libc.sethostname(name, len(name)), "sethostname")
        mount_all(plan["mounts"], plan["identity"]["read_only_root"], plan["cwd"])
        become(plan["identity"])
        os.chdir(plan["cwd"])
        argv, env = plan["argv"], plan["env"]
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        errors.write(f"{exc}")
        errors.close()
        print(f"sandbox: {exc}", file=sys.stderr, flush=True)
        os._exit(128)


if __name__ == "__main__":
    main(sys.argv[1])
