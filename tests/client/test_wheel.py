"""A built wheel runs `maas local up` on its own: outside the checkout, without Node or the CDK.

The wheel is installed with --no-deps into a fresh venv made with --system-site-packages. Its
dependencies come from this project's venv, whose site-packages a `.pth` file adds to the fresh
venv's path: a `.pth` line only adds a folder, so the editable install's own `.pth` hook there
is not run and the checkout's packages stay out of sight (the test checks where each comes from).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from maas_local import bundle, synth

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 300  # a synthesis when the cache is cold, on two busy cores
UP_TIMEOUT_S = 240
pytestmark = pytest.mark.slow


def _run(argv: list[str | Path], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def assembly() -> Path:
    return synth.synthesise(REPO)


def test_bundle_rebuilds_the_cdk_asset_byte_for_byte(assembly, tmp_path):
    carried = bundle.write_bundle(assembly, REPO, tmp_path / "bundle")

    rebuilt = bundle.rebuild(carried, tmp_path / "cache")

    entry = synth.sourcedir_entry(assembly)
    archive = entry["source"]["path"]
    assert (rebuilt / archive).read_bytes() == (assembly / archive).read_bytes()
    for name in bundle.ASSEMBLY_FILES:
        assert (rebuilt / name).read_bytes() == (assembly / name).read_bytes()
    assert (carried / "openapi.json").read_bytes() == (REPO / "openapi.json").read_bytes()
    assert (carried / "training" / "train.py").read_bytes() == (
        REPO / "training" / "train.py"
    ).read_bytes()


def test_rebuild_refuses_training_code_that_differs_from_the_asset(assembly, tmp_path):
    carried = bundle.write_bundle(assembly, REPO, tmp_path / "bundle")
    with (carried / "training" / "train.py").open("a") as script:
        script.write("# changed after the build\n")

    with pytest.raises(synth.SynthError, match="other bytes than the CDK asset"):
        bundle.rebuild(carried, tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("*/*.template.json"))


@dataclass(frozen=True)
class Installed:
    bin: Path  # the fresh venv's bin/
    broken_before: set[str]  # what `pip check` reports there before the wheel is installed


def _pip_check(python: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return {line for line in done.stdout.splitlines() if line and "No broken" not in line}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """A fresh venv holding the wheel, and what was broken there before the wheel came."""
    root = tmp_path_factory.mktemp("wheel")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", root / "dist", REPO],
        BUILD_TIMEOUT_S,
    )
    (wheel,) = (root / "dist").glob("maas-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], 60)
    python = venv / "bin" / "python"
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], 30)
    dependencies = Path(site.stdout.strip(), "maas-test-dependencies.pth")
    dependencies.write_text(sysconfig.get_paths()["purelib"] + "\n")
    broken_before = _pip_check(python)
    # pip must not see the checkout's editable `maas` there while it installs the wheel.
    dependencies.unlink()
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel], 120
    )
    dependencies.write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Installed(venv / "bin", broken_before)


@pytest.fixture
def outside(tmp_path, installed: Installed) -> tuple[Path, dict[str, str]]:
    """A working folder outside the checkout, and the environment of a user there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAAS_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        PATH=str(installed.bin),  # nothing else: no node, no npx, no cdk
        MAAS_HOME=str(tmp_path / "home"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    work = tmp_path / "work"
    work.mkdir()
    return work, env


def test_wheel_installs_cleanly_and_runs_from_its_own_files(installed, outside):
    work, env = outside
    python = installed.bin / "python"
    # The system's own packages may clash with this project's pins (the sandbox's awscli does);
    # the wheel must add no broken requirement of its own.
    broken = _pip_check(python)
    assert broken <= installed.broken_before, broken - installed.broken_before
    assert not [line for line in broken if line.lower().startswith("maas ")]

    probe = (
        "import json, maas, maas_local, maas_local.config as c\n"
        "print(json.dumps([maas.__file__, maas_local.__file__, str(c.REPO_ROOT), c.IN_CHECKOUT]))"
    )
    where = json.loads(_run([python, "-c", probe], 60, cwd=work, env=env).stdout)
    venv = str(installed.bin.parent)
    assert [str(p).startswith(venv) for p in where[:3]] == [True, True, True], where
    assert where[3] is False and where[2].endswith("maas_local/_bundle")
    helped = _run([installed.bin / "maas", "--help"], 60, cwd=work, env=env)
    assert "usage: maas" in helped.stdout


def test_wheel_starts_the_local_stack_outside_the_checkout(installed, outside):
    work, env = outside
    maas = str(installed.bin / "maas")
    try:
        up = _run([maas, "local", "up"], UP_TIMEOUT_S, cwd=work, env=env)
        assert "published the training code asset" in up.stdout, up.stdout
        # The assembly was rebuilt from the wheel's bundle; nothing was synthesised.
        cache = Path(env["XDG_CACHE_HOME"], "maas")
        assert [p.parent.parent.name for p in cache.glob("*/*/*.template.json")] == ["bundle"]
        status = _run([maas, "local", "status"], 60, cwd=work, env=env)
        assert status.stdout.count("healthy") == 3, status.stdout
        # A real handler answers through the gateway, under its function's synthesised policy.
        listed = _run([maas, "models"], 60, cwd=work, env=env)
        assert listed.stdout == ""  # no model yet, and no error
        log = Path(env["MAAS_HOME"], "logs", "iam-decisions.jsonl").read_text().splitlines()
        decisions = [json.loads(line) for line in log]
        assert any(d["action"].startswith("dynamodb:") for d in decisions), decisions
        assert {d["decision"] for d in decisions} == {"Allow"}
        assert not (work / ".maas").exists()  # the state went to MAAS_HOME
    finally:
        subprocess.run([maas, "local", "down"], cwd=work, env=env, timeout=90, check=False)
    assert not Path(env["MAAS_HOME"], "state.json").exists()
