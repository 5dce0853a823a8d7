"""The README's quick start works as written: its commands, taken from the README itself, run
in order on a fresh stack, in an empty folder, and the last prediction answers."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.e2e]
CLIENT_ENV = ("MAAS_API_URL", "MAAS_API_KEY", "MAAS_TOKEN")  # a developer's own must not leak in


def quick_start_commands() -> list[list[str]]:
    """The commands of the README's quick-start block, continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quick start -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "the README has no quick-start block"
    joined = block.group(1).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def test_the_readme_quick_start_runs_in_order_on_a_fresh_stack(tmp_path):
    commands = quick_start_commands()
    assert [c[:3] for c in commands][0] == [".venv/bin/maas", "local", "up"]
    assert commands[-1][:3] == [".venv/bin/maas", "local", "down"]
    # A user's shell: no client settings, and none of the emulator's knobs that another
    # test's stack may have left set in this process (pytest-xdist shares a worker's environ).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in CLIENT_ENV and not k.startswith("MAAS_SAGEMAKER_")
    }
    env["MAAS_HOME"] = str(tmp_path / "home")
    work = tmp_path / "work"
    work.mkdir()
    outputs = []
    try:
        for words in commands:
            assert words[0] == ".venv/bin/maas", words
            done = subprocess.run(
                [sys.executable, "-m", "maas", *words[1:]],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            outputs.append((done.stdout, done.stderr))
            assert done.returncode == 0, f"{shlex.join(words)}\n{done.stdout}\n{done.stderr}"
    finally:
        subprocess.run(
            [sys.executable, "-m", "maas", "local", "down"], env=env, timeout=120, check=False
        )

    trained, notes = next(o for c, o in zip(commands, outputs, strict=True) if c[1] == "train")
    assert "deployment waits run at 0.1x" in notes  # the local time scale, said on stderr
    assert trained.rstrip().endswith("Succeeded"), trained  # --wait followed the deployment
    predicted, _ = next(o for c, o in zip(commands, outputs, strict=True) if c[1] == "predict")
    assert '"predictions"' in predicted or '"label"' in predicted, predicted
