"""Child processes of the local stack: start them tied to their parent, stop them for sure."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

STOP_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1


def _ephemeral_low(default: int = 32768) -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def free_port() -> int:
    """A port free now, for a part that binds it seconds later. It is taken below the
    kernel's ephemeral range: every outgoing connection on the machine draws its local port
    from that range, and one could take a port picked there before the part binds it."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(50):
        port = rng.randrange(max(1024, low - 12288), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return 200 <= response.status < 300
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL us when our parent dies.

    Only an abnormal end of the supervisor (SIGKILL, a crash) fires it; a normal stop goes
    through stop_tree's SIGTERM first. SIGKILL, because a part that lingers in its own
    shutdown would otherwise outlive the group with no one left to escalate. The emulator's
    own children watch a pipe from it, so they follow it down.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Child:
    """A started part of the stack and what identifies it beyond its pid."""

    name: str
    process: subprocess.Popen
    log: Path
    create_time: float

    @property
    def pid(self) -> int:
        return self.process.pid

    def record(self) -> dict:
        return {"pid": self.pid, "create_time": self.create_time, "log": str(self.log)}


def spawn(name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> Child:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - spawned before any thread starts
        )
    try:
        created = psutil.Process(process.pid).create_time()
    except psutil.Error:
        created = 0.0
    return Child(name, process, log, created)


def same_process(pid: int, create_time: float) -> psutil.Process | None:
    """The process, if this pid still names the one we started (pids get reused)."""
    try:
        proc = psutil.Process(pid)
        if create_time and abs(proc.create_time() - create_time) > 0.5:
            return None
        return proc if proc.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def stop_tree(proc: psutil.Process, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM a process and its descendants, then SIGKILL whatever is left after grace_s."""
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        family = [proc]
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=grace_s)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(alive, timeout=5)


def wait_until(predicate, timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def python_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env
