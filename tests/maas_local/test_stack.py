"""`maas local up/down`: the supervised group starts healthy and stops without leaving anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from maas_local.processes import port_is_listening

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


@pytest.fixture
def stack_env(tmp_path: Path, fake_openapi: Path):
    env = dict(os.environ)
    env["MAAS_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE / "fake_handlers_pkg"), env.get("PYTHONPATH", "")]
    )
    yield env, ["--openapi", str(fake_openapi), "--handlers-package", "maas_fake_handlers"]
    _maas(env, "local", "down")  # whatever a test did, nothing stays behind


def _maas(env, *args, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "maas", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _state(env) -> dict:
    return json.loads((Path(env["MAAS_HOME"]) / "state.json").read_text())


def _when_ready(env, starter: subprocess.Popen, timeout=120) -> dict:
    """The stack's state once `starter` has brought it up (or has exited, or time ran out)."""
    state_file = Path(env["MAAS_HOME"]) / "state.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and starter.poll() is None:
        if state_file.exists() and _state(env).get("status") == "ready":
            break
        time.sleep(0.2)
    return _state(env)


def _group(state) -> tuple[list[psutil.Process], list[int]]:
    """Every process of the stack (supervisor, parts, their children) and every port."""
    supervisor = psutil.Process(state["supervisor"]["pid"])
    procs = [supervisor, *supervisor.children(recursive=True)]
    ports = [part["port"] for part in state["parts"].values()]
    return procs, ports


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {' '.join(proc.cmdline()[:4])}"
    except psutil.Error:
        return str(proc.pid)


def _gone(procs, ports, timeout=20) -> tuple[list, list]:
    """What is still running or listening after `timeout` seconds (both empty when clean)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [_describe(p) for p in procs if _alive(p)]
        listening = [port for port in ports if port_is_listening(port)]
        if (not alive and not listening) or time.monotonic() > deadline:
            return alive, listening
        time.sleep(0.2)


def test_up_starts_every_part_healthy_and_down_leaves_no_process_or_port(stack_env):
    env, options = stack_env
    up = _maas(env, "local", "up", *options)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "ready in" in up.stdout
    state = _state(env)
    assert state["status"] == "ready"
    assert set(state["parts"]) == {"moto", "sagemaker", "gateway"}
    procs, ports = _group(state)
    assert len(procs) >= 4 and all(port_is_listening(port) for port in ports)
    status = _maas(env, "local", "status")
    assert status.returncode == 0 and status.stdout.count("healthy") == 3
    logs = _maas(env, "local", "logs", "gateway", "-n", "200")
    assert logs.returncode == 0 and "gateway listening" in logs.stdout
    health = requests.get(state["api_url"] + "/_local/health", timeout=10)
    assert health.json()["status"] == "ok"
    token = _maas(env, "local", "token", "--scopes", "invoke").stdout.strip()
    headers = {"Authorization": f"Bearer {token}", "x-api-key": state["api_key"]}
    echoed = requests.get(state["api_url"] + "/v1/echo/cli", headers=headers, timeout=30)
    assert echoed.status_code == 200
    assert echoed.json()["event"]["requestContext"]["authorizer"]["claims"]["scope"] == (
        "maas/invoke"
    )

    down = _maas(env, "local", "down")

    assert down.returncode == 0, down.stdout + down.stderr
    alive, listening = _gone(procs, ports, timeout=1)
    assert alive == [] and listening == []
    assert not (Path(env["MAAS_HOME"]) / "state.json").exists()
    assert _maas(env, "local", "status").returncode == 3


def test_second_up_reuses_the_running_stack(stack_env):
    env, options = stack_env
    assert _maas(env, "local", "up", *options).returncode == 0
    first = _state(env)
    again = _maas(env, "local", "up", *options)
    assert again.returncode == 0 and "already running" in again.stdout
    assert _state(env)["supervisor"] == first["supervisor"]


def test_killing_the_supervisor_takes_every_part_with_it(stack_env):
    env, options = stack_env
    assert _maas(env, "local", "up", *options).returncode == 0
    procs, ports = _group(_state(env))
    procs[0].kill()  # SIGKILL: the supervisor gets no chance to clean up
    alive, listening = _gone(procs, ports)
    assert alive == [] and listening == []


def test_ctrl_c_in_the_foreground_leaves_no_stray_process(stack_env, tmp_path):
    env, options = stack_env
    out = open(tmp_path / "fg.log", "w")
    fg = subprocess.Popen(
        [sys.executable, "-m", "maas", "local", "up", "--foreground", *options],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        state_file = Path(env["MAAS_HOME"]) / "state.json"
        procs, ports = _group(_when_ready(env, fg))
        os.killpg(fg.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert fg.wait(timeout=60) == 0
        alive, listening = _gone(procs, ports)
        assert alive == [] and listening == []
        assert not state_file.exists()
    finally:
        if fg.poll() is None:
            os.killpg(fg.pid, signal.SIGKILL)
        out.close()


@pytest.mark.e2e
def test_ctrl_c_during_the_demo_stops_the_stack_it_started(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    env["MAAS_HOME"] = str(tmp_path / "home")
    state_file = tmp_path / "home" / "state.json"
    out = open(tmp_path / "demo.log", "w")
    demo = subprocess.Popen(
        [sys.executable, "-m", "maas.demo"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        procs, ports = _group(_when_ready(env, demo))
        os.killpg(demo.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the demo only
        assert demo.wait(timeout=60) == 130
        alive, listening = _gone(procs, ports)
        assert alive == [] and listening == []
        assert not state_file.exists()
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        _maas(env, "local", "down")
        out.close()
