"""The wheel build's one addition to pyproject.toml: `maas_local/_bundle/`, what `maas local up`
needs outside a checkout (the training code, openapi.json, the synthesised IAM policies).
maas_local/bundle.py says what it holds and how it is made."""

import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLE = Path("maas_local", "_bundle")


class BuildPyWithBundle(build_py):
    def run(self) -> None:
        if not self.editable_mode:
            # An earlier build's files (a module since deleted) must not slip into the wheel.
            shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()
        if self.editable_mode:
            return  # an editable install runs from the checkout, which has the files
        subprocess.run(
            [sys.executable, "-m", "maas_local.bundle", str(Path(self.build_lib) / BUNDLE)],
            cwd=ROOT,
            check=True,
        )


setup(cmdclass={"build_py": BuildPyWithBundle})
