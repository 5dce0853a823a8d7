"""What a streaming route group's function needs besides the handlers asset, laid out at synth
time without Docker and without network:

- a Lambda layer holding the ASGI server (uvicorn) and its dependencies, copied file by file
  from the distributions installed in this venv (pinned in constraints.txt). Only pure-Python
  wheels are taken: the venv's platform is not the function's (arm64 Amazon Linux), so a
  compiled extension would not load there. A layer's `python/` folder is /opt/python in the
  function (https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html#packaging-layers-paths).
- the startup script the AWS Lambda Web Adapter runs as the function's handler. The adapter's
  /opt/bootstrap execs `${LAMBDA_TASK_ROOT}/${_HANDLER}`, so the handler is the script's path
  in the asset, and the file must be executable (the CDK CLI zips assets with each file's mode).
  https://awslabs.github.io/aws-lambda-web-adapter/getting-started/zip-packages.html
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

from maas_contract.routes import HANDLERS_PACKAGE

# uvicorn's own requirements on Python >= 3.11 (its extras, uvloop and httptools, are compiled
# and left out: uvicorn falls back to asyncio and h11).
SERVER_DISTRIBUTIONS = ("uvicorn", "h11", "click")
# Where the ASGI server listens inside the function; the adapter forwards each invoke there.
SERVER_PORT = 8000
STARTUP_SCRIPT = "run.sh"


class LayerBuildError(RuntimeError):
    """A distribution the layer needs is missing from the venv or is not pure Python."""


def startup_handler(group: str) -> str:
    """The function's Handler: the startup script's path relative to LAMBDA_TASK_ROOT."""
    return f"{HANDLERS_PACKAGE}/{group}/{STARTUP_SCRIPT}"


def asgi_app(group: str) -> str:
    return f"{HANDLERS_PACKAGE}.{group}.app:app"


def startup_script(group: str) -> str:
    """Starts uvicorn on the group's ASGI app, on the port the adapter forwards to. Layers sit
    under /opt/python; the handlers asset is the working directory and LAMBDA_TASK_ROOT.
    `exec` makes uvicorn the process the adapter waits on and signals at shutdown."""
    return (
        "#!/bin/sh\n"
        f"# Written at synth by infra/server_layer.py: the {group} function's web server.\n"
        'export PYTHONPATH="${LAMBDA_TASK_ROOT}:/opt/python${PYTHONPATH:+:$PYTHONPATH}"\n'
        f'exec python -m uvicorn --host 127.0.0.1 --port "${{AWS_LWA_PORT:-{SERVER_PORT}}}" '
        f"--no-access-log {asgi_app(group)}\n"
    )


def write_startup_script(code_dir: Path, group: str) -> Path:
    path = code_dir / startup_handler(group)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(startup_script(group))
    path.chmod(0o755)
    return path


def _is_pure_python(dist: metadata.Distribution) -> bool:
    wheel = dist.read_text("WHEEL") or ""
    return "Root-Is-Purelib: true" in wheel


def stage_server_layer(target: Path, distributions: tuple[str, ...] = SERVER_DISTRIBUTIONS) -> Path:
    """Copies the installed files of `distributions` (their packages and dist-info, not their
    console scripts) into `target/python/`. Returns `target`."""
    if target.exists():
        shutil.rmtree(target)
    site = target / "python"
    for name in distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise LayerBuildError(
                f"{name} is not installed; install the infra extra (pip install -e '.[infra]')"
            ) from None
        if not _is_pure_python(dist):
            raise LayerBuildError(f"{name} {dist.version} is not a pure-Python wheel")
        for file in dist.files or ():
            parts = Path(str(file)).parts
            if parts[0] == ".." or "__pycache__" in parts or file.suffix == ".pyc":
                continue  # console scripts live outside site-packages; bytecode is per Python
            source = Path(str(file.locate()))
            destination = site.joinpath(*parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return target
