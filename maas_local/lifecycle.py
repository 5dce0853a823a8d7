"""`maas local up|down|status|token|logs`: drive the supervisor through the state directory."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from maas_local.config import REPO_ROOT, StackPaths, read_json
from maas_local.processes import http_ok, port_is_listening, same_process, stop_tree, wait_until
from maas_local.stack import StackOptions, Supervisor
from maas_local.tokens import APP_CLIENT_FILE, TOKEN_PATH, AppClient, mint_token, scope_names

UP_TIMEOUT_S = 300.0
PARTS = ("moto", "sagemaker", "gateway")


def _say(line: str) -> None:
    print(f"maas local: {line}", flush=True)


def running_state(paths: StackPaths) -> dict | None:
    """The state file, if its supervisor is still the process that wrote it."""
    state = read_json(paths.state_file)
    if not state:
        return None
    supervisor = state.get("supervisor", {})
    if same_process(supervisor.get("pid", -1), supervisor.get("create_time", 0)) is None:
        return None
    return state


def up(paths: StackPaths, *, foreground: bool, options: StackOptions) -> int:
    paths.ensure()
    state = running_state(paths)
    if state:
        _say(f"already running ({state['status']}): API {state.get('api_url', '?')}")
        return 0
    if paths.state_file.exists():
        _say("found a stale state file; cleaning up what it names")
        down(paths, quiet=True)
    if foreground:
        return Supervisor(paths, options, _say).run()
    return _start_daemon(paths, options)


def _start_daemon(paths: StackPaths, options: StackOptions) -> int:
    log = paths.progress_log
    log.write_text("")
    argv = [sys.executable, "-m", "maas_local.stack", "--home", str(paths.home)]
    argv += ["--openapi", str(options.openapi), "--handlers-package", options.handlers_package]
    argv += ["--function-concurrency", str(options.function_concurrency)]
    if options.localstack_url:
        argv += ["--localstack-url", options.localstack_url]
    with open(log, "ab") as out:
        daemon = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in this terminal must not reach it once it runs
        )
    try:
        if _follow_start_up(paths, daemon, log):
            return 0
    except KeyboardInterrupt:
        _say("interrupted; stopping")
        _stop_daemon(paths, daemon)
        raise
    _stop_daemon(paths, daemon)
    return 1


def _follow_start_up(paths: StackPaths, daemon: subprocess.Popen, log: Path) -> bool:
    """Echoes the supervisor's progress until the stack is ready (True) or cannot be (False)."""
    shown = 0
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        shown = _echo_new_lines(log, shown)
        state = read_json(paths.state_file) or {}
        if state.get("status") == "ready":
            _echo_new_lines(log, shown)
            _say(f"running in the background; `maas local down` stops it. State: {paths.home}")
            return True
        if daemon.poll() is not None:
            _echo_new_lines(log, shown)
            _say(f"the supervisor exited with {daemon.returncode}")
            return False
        time.sleep(0.2)
    _say(f"not ready after {UP_TIMEOUT_S:.0f}s; stopping")
    return False


def _stop_daemon(paths: StackPaths, daemon: subprocess.Popen) -> None:
    with shielded_from_ctrl_c():
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            down(paths, quiet=True)


@contextlib.contextmanager
def shielded_from_ctrl_c() -> Iterator[None]:
    """A second Ctrl-C must not cut a clean-up short and leave half the stack running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _echo_new_lines(log: Path, shown: int) -> int:
    lines = log.read_text(errors="replace").splitlines()
    for line in lines[shown:]:
        print(line, flush=True)
    return len(lines)


def down(paths: StackPaths, *, quiet: bool = False, grace_s: float = 10.0) -> int:
    with shielded_from_ctrl_c():
        return _down(paths, quiet, grace_s)


def _down(paths: StackPaths, quiet: bool, grace_s: float) -> int:
    state = read_json(paths.state_file)
    if not state:
        if not quiet:
            _say("not running")
        return 0
    supervisor = state.get("supervisor", {})
    proc = same_process(supervisor.get("pid", -1), supervisor.get("create_time", 0))
    if proc is not None:
        proc.send_signal(signal.SIGTERM)  # it stops its parts, gateway first
        if not wait_until(
            lambda: same_process(proc.pid, supervisor["create_time"]) is None, timeout_s=grace_s * 3
        ):
            stop_tree(proc, grace_s)
    parts = state.get("parts", {})
    for part in parts.values():
        leftover = same_process(part.get("pid", -1), part.get("create_time", 0))
        if leftover is not None:
            stop_tree(leftover, grace_s)
    ports = [part["port"] for part in parts.values() if "port" in part]
    freed = wait_until(lambda: not any(port_is_listening(p) for p in ports), timeout_s=grace_s)
    paths.state_file.unlink(missing_ok=True)
    if not freed:
        _say(f"warning: still listening on {[p for p in ports if port_is_listening(p)]}")
        return 1
    if not quiet:
        _say("stopped")
    return 0


def status(paths: StackPaths) -> int:
    state = running_state(paths)
    if not state:
        _say("not running")
        return 3
    _say(f"{state['status']}; API {state.get('api_url', '-')}; state in {paths.home}")
    healthy = True
    for name in PARTS:
        part = state.get("parts", {}).get(name)
        if not part:
            print(f"  {name:<10} not started")
            healthy = False
            continue
        alive = same_process(part["pid"], part["create_time"]) is not None
        ok = alive and http_ok(part["health"])
        healthy &= ok
        verdict = "healthy" if ok else ("unhealthy" if alive else "dead")
        restarts = part.get("restarts", 0)
        healed = (
            f"; restarted {restarts} time{'s' * (restarts != 1)}, last exit "
            f"{part.get('last_exit')} at {part.get('restarted_at')}"
            if restarts
            else ""
        )
        print(f"  {name:<10} pid {part['pid']:<8} {part['url']:<24} {verdict}{healed}")
    _print_client_credentials(paths, state)
    return 0 if healthy and state["status"] == "ready" else 1


def _print_client_credentials(paths: StackPaths, state: dict) -> None:
    """Where a client gets its tokens, and where the secret is (never the secret itself)."""
    client = AppClient.load(paths.keys)
    if client is None or not state.get("api_url"):
        return
    print(f"  token URL  {state['api_url']}{TOKEN_PATH} (OAuth2 client credentials)")
    print(f"  client id  {client.client_id}; secret in {paths.keys / APP_CLIENT_FILE}")


def token(paths: StackPaths, scopes: str, ttl_s: int) -> int:
    if not (paths.keys / "issuer.json").is_file():
        _say("no issuer yet: run `maas local up` first")
        return 1
    print(mint_token(paths.keys, scope_names(scopes), ttl_seconds=ttl_s))
    return 0


def logs(paths: StackPaths, part: str | None, lines: int, follow: bool) -> int:
    names = [part] if part else ["supervisor", *PARTS]
    files = [paths.log_for(name) for name in names if paths.log_for(name).is_file()]
    if not files:
        _say(f"no logs in {paths.logs}")
        return 1
    for path in files:
        print(f"==> {path} <==")
        print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]), flush=True)
    if follow:
        return _follow(files)
    return 0


def _follow(files: list[Path]) -> int:
    offsets = {path: path.stat().st_size for path in files}
    try:
        while True:
            for path in files:
                size = path.stat().st_size
                if size > offsets[path]:
                    with open(path, errors="replace") as handle:
                        handle.seek(offsets[path])
                        sys.stdout.write(handle.read())
                        sys.stdout.flush()
                offsets[path] = size
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
