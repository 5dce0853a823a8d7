"""The fork server that starts a gateway's execution environments.

Why a fork server: the gateway serves on threads, and forking a threaded process can copy a lock
that another thread holds, while a fresh interpreter would import Powertools, pydantic and boto3
again for every environment (about a second). So each invoker starts one single-threaded process
that sets up what every function shares, once, and forks environments from it on request: an
environment starts in milliseconds, as SnapStart restores a snapshot rather than running the
init phase anew. What the server sets up before any handler loads:

- the functions' environment variables (Lambda fixes them when a function is deployed);
- the folder the handlers' package lies in, first on sys.path (as Lambda's task root);
- the IAM guard, so that every AWS client made in it or in an environment carries the check;
  each environment then binds its own function to the guard;
- the handler modules (`preload`), imported once, so that each fork starts warm.

multiprocessing's own forkserver is not used: it re-runs the parent's main module in every child,
and it is one per process, with one preload list, where each gateway here has its own.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from maas_local.execution_environment import (
    EnvironmentFailed,
    ExecutionEnvironment,
    FunctionSpec,
    run_environment,
)
from maas_local.iam_guard import IamGuard

_BOOT = (
    "import json, sys; config = json.load(sys.stdin); sys.path[:0] = config['sys_path']; "
    "from maas_local.forkserver import serve; serve(config)"
)


@dataclass(frozen=True)
class ServerConfig:
    environ: dict[str, str] = field(default_factory=dict, repr=False)
    code_root: str | None = None
    iam_policies: str | None = None
    iam_audit_log: str | None = None


class ForkServer:
    """The gateway's end of the fork server: started on first use, one fork at a time."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None

    def start(self, preload: list[str]) -> None:
        """Start the server now, importing `preload` before it forks anything."""
        with self._lock:
            self._start(tuple(preload))

    def _start(self, preload: tuple[str, ...]) -> socket.socket:
        if self._control is not None:
            return self._control
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {**asdict(self.config), "preload": list(preload), "sys_path": sys.path}
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our own code
            [sys.executable, "-c", _BOOT],
            stdin=subprocess.PIPE,
            env=self.config.environ,
            pass_fds=[theirs.fileno()],
            # Out of the gateway's process group, so that a Ctrl-C meant for the gateway does
            # not break requests mid-way: environments end when the gateway hangs up on them.
            process_group=0,
        )
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({**config, "fd": theirs.fileno()}).encode())
        self._process.stdin.close()
        theirs.close()
        self._control = ours
        return ours

    def fork(self, spec: FunctionSpec) -> ExecutionEnvironment:
        """A new environment of `spec`'s function; call its wait_ready() before invoking."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                control = self._start(())
                socket.send_fds(control, [json.dumps(asdict(spec)).encode()], [theirs.fileno()])
                reply = control.recv(1024)
        except OSError as error:
            ours.close()
            raise EnvironmentFailed(f"{spec.function_name}: the fork server is gone") from error
        finally:
            theirs.close()
        if not reply:
            ours.close()
            raise EnvironmentFailed(f"{spec.function_name}: the fork server has exited")
        return ExecutionEnvironment(spec, json.loads(reply)["pid"], Connection(ours.detach()))

    def close(self) -> None:
        """Ends the server; the environments end as the gateway closes their connections."""
        with self._lock:
            if self._control is not None:
                self._control.close()
            if self._process is not None:
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()


# -- inside the fork server's process ------------------------------------------------------------
def serve(config: dict[str, Any]) -> None:
    control = socket.socket(fileno=config["fd"])
    if config["code_root"]:
        sys.path.insert(0, config["code_root"])
    if config["iam_policies"]:
        audit_log = Path(config["iam_audit_log"]) if config["iam_audit_log"] else None
        IamGuard.from_file(Path(config["iam_policies"]), audit_log=audit_log).install()
    for module in config["preload"]:
        try:
            importlib.import_module(module)
        except Exception:  # its environments report it, as Runtime.ImportModuleError
            traceback.print_exc()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps exited environments
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 1)
        if not message:
            return  # the gateway has closed its end
        spec = FunctionSpec(**json.loads(message))
        pid = os.fork()
        if pid == 0:
            control.close()
            _become_environment(spec, fds[0])
        os.close(fds[0])
        control.send(json.dumps({"pid": pid}).encode())


def _become_environment(spec: FunctionSpec, fd: int) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the handler's own subprocesses are its own
    code = 0
    try:
        run_environment(spec, Connection(fd))
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
