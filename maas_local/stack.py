"""The supervisor: starts moto, the SageMaker emulator and the gateway as one group, and stops them.

It runs in the foreground (`maas local up --foreground`) or as the daemon that `maas local up`
leaves behind (`python -m maas_local.stack --home DIR`). Every child asks Linux to kill it
when the supervisor dies, so no part outlives the group, even when the supervisor is SIGKILLed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from maas_local import aws_resources, cloud_template, moto_server
from maas_local.config import (
    CLIENT_ID,
    REGION,
    REPO_ROOT,
    StackPaths,
    default_home,
    write_private_json,
)
from maas_local.event_queue import QUEUE_ENV, QUEUE_NAME, RULE_NAME, create_route
from maas_local.invoker import DEFAULT_CONCURRENCY
from maas_local.processes import (
    Child,
    free_port,
    http_ok,
    python_env,
    spawn,
    stop_tree,
)
from maas_local.sagemaker import event_publisher, sigv4
from maas_local.sagemaker.server import POLICIES_ENV
from maas_local.synth import local_stage_context
from maas_local.token_quotas import local_token_quotas, stage_clients
from maas_local.tokens import APP_CLIENT_FILE, TOKEN_PATH, create_issuer, ensure_app_client
from maas_local.usage_plans import ensure_api_key

GENERATION_IMAGE_ENV = "GENERATION_IMAGE_URI"

HEALTH_TIMEOUT_S = {"moto": 60.0, "sagemaker": 120.0, "gateway": 90.0}
# A crashed part is started again after 1, 2, 4, ... seconds, at most 30; a part that then ran
# for STABLE_S starts the sequence over.
RESTART_FIRST_S, RESTART_CAP_S, STABLE_S = 1.0, 30.0, 60.0


class StartupFailed(RuntimeError):
    pass


class _Stop(BaseException):
    """Raised from the signal handler so that any wait unwinds into the clean-up."""


@dataclass
class StackOptions:
    # MAAS_OPENAPI lets a developer try an API description before it is committed.
    openapi: Path = Path(os.environ.get("MAAS_OPENAPI") or REPO_ROOT / "openapi.json")
    handlers_package: str = "handlers"
    # MAAS_LOCALSTACK_URL moves S3, KMS, SQS and EventBridge to a running LocalStack, and
    # state-change events through a real EventBridge rule and queue.
    localstack_url: str | None = os.environ.get("MAAS_LOCALSTACK_URL") or None
    # Execution environments per function, as Lambda's reserved concurrency caps them.
    function_concurrency: int = DEFAULT_CONCURRENCY


@dataclass
class Supervisor:
    paths: StackPaths
    options: StackOptions = field(default_factory=StackOptions)
    progress: Callable[[str], None] = print
    children: dict[str, Child] = field(default_factory=dict)
    parts: dict[str, dict] = field(default_factory=dict)
    # How to start each part again: argv, environment, URL, health path.
    specs: dict[str, tuple[list[str], dict[str, str], str, str]] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)  # monotonic start of each part
    backoff: dict[str, float] = field(default_factory=dict)
    api_key: str = ""

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _raise_stop)
        started = time.monotonic()
        try:
            self._write_state("starting")
            self._start_all()
            self._write_state("ready")
            api_url = self.parts["gateway"]["url"]
            self.progress(f"ready in {time.monotonic() - started:.1f}s: API {api_url}")
            return self._watch()
        except StartupFailed as error:
            self.progress(f"start-up failed: {error}")
            return 1
        except _Stop:
            self.progress("stopping")
            return 0
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            self._stop_all()
            self.paths.state_file.unlink(missing_ok=True)
            self.progress("stopped")

    def _start_all(self) -> None:
        self.progress("synthesising the CDK app for its IAM policies (cached until infra changes)")
        try:
            assembly = cloud_template.synthesise()
        except (cloud_template.SynthError, OSError, subprocess.SubprocessError) as error:
            raise StartupFailed(str(error)) from error
        ports = {name: free_port() for name in ("moto", "sagemaker", "gateway")}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        event_token = secrets.token_urlsafe(32)
        localstack = self.options.localstack_url
        # Made afresh at each `up`; every local AWS endpoint answers only them. Secrets travel
        # in the environment (readable by the owner alone), never on a command line.
        credentials = aws_resources.issue_credentials(self.paths.keys)
        moto = _module_argv("maas_local.moto_server", host="127.0.0.1", port=ports["moto"])
        moto_owner = {
            moto_server.OWNER_KEY_ENV: credentials["AWS_ACCESS_KEY_ID"],
            moto_server.OWNER_SECRET_ENV: credentials["AWS_SECRET_ACCESS_KEY"],
            # Every acknowledged write is on disk here before its answer leaves moto.
            moto_server.STATE_ENV: str(self.paths.moto_state),
        }
        self._launch("moto", moto, moto_owner, urls["moto"], moto_server.HEALTH_PATH)
        sink = "events:default" if localstack else f"{urls['gateway']}/_local/events/{event_token}"
        emulator = _module_argv(
            "maas_local.sagemaker",
            host="127.0.0.1",
            port=ports["sagemaker"],
            root=self.paths.sagemaker_root,
        )
        moto_env = aws_resources.aws_env(urls["moto"], None, localstack, credentials)
        emulator_env = {
            **moto_env,
            event_publisher.SINK_ENV: sink,
            sigv4.ACCESS_KEY_ENV: credentials["AWS_ACCESS_KEY_ID"],
            sigv4.SECRET_KEY_ENV: credentials["AWS_SECRET_ACCESS_KEY"],
            # Written by _apply_template below, before any job or endpoint can exist.
            POLICIES_ENV: str(self._policies_file),
        }
        self._launch("sagemaker", emulator, emulator_env, urls["sagemaker"], "/_emulator/health")
        self._wait_healthy("moto")
        self.progress(
            f"creating the platform's resources in {'LocalStack and ' * bool(localstack)}moto"
        )
        resources = aws_resources.create_platform(
            urls["moto"], self.progress, credentials=credentials, storage_url=localstack
        )
        resources, policies_file = self._apply_template(
            assembly, resources, urls["moto"], credentials
        )
        create_issuer(self.paths.keys, issuer=urls["gateway"])
        self.api_key = ensure_api_key(self.paths.keys).value
        client = ensure_app_client(self.paths.keys)
        self.progress(
            f"OAuth2 app client {client.client_id} (client credentials) at "
            f"{urls['gateway']}{TOKEN_PATH}; its secret is in {self.paths.keys / APP_CLIENT_FILE}"
        )
        quotas = local_token_quotas([CLIENT_ID, client.client_id], _stage_clients())
        self.progress(f"token limits of the OpenAI-compatible API: {json.dumps(quotas)}")
        env = aws_resources.handler_env(
            resources,
            urls["moto"],
            urls["sagemaker"],
            localstack,
            credentials,
            generation_image_uri=self._generation_image(assembly),
            token_quotas=quotas,
        )
        env.pop("AWS_SESSION_TOKEN", None)  # the issued key is a long-term one, as a role's isn't
        env["MAAS_EVENT_SINK_TOKEN"] = event_token
        if localstack:
            env[QUEUE_ENV] = create_route(localstack)
            self.progress(f"state changes go through EventBridge rule {RULE_NAME} to {QUEUE_NAME}")
        gateway = _module_argv(
            "maas_local.gateway_server",
            "--preload",
            port=ports["gateway"],
            keys_dir=self.paths.keys,
            openapi=self.options.openapi,
            handlers_package=self.options.handlers_package,
            function_concurrency=self.options.function_concurrency,
            iam_policies=policies_file,
            iam_audit_log=self.paths.logs / "iam-decisions.jsonl",
            event_spool=self.paths.event_spool,
            time_scale=_time_scale(),
        )
        self._launch("gateway", gateway, env, urls["gateway"], "/_local/health")
        self._wait_healthy("sagemaker")
        self._wait_healthy("gateway")

    def _generation_image(self, assembly: Path) -> str | None:
        """The LMI image URI the template gives the deployments function; until the template
        names one, the one sagemaker-core resolves for the stage's region, as synthesis would."""
        found = cloud_template.function_environment(assembly, "deployments")
        uri = found.get(GENERATION_IMAGE_ENV)
        if uri:
            return uri
        try:
            from sagemaker.core import image_uris  # the infra extra's, as synthesis uses it

            uri = str(image_uris.retrieve(framework="djl-lmi", region=REGION))
        except Exception as error:  # no generation image: generation versions cannot deploy
            self.progress(f"no text-generation image URI: {error}")
            return None
        self.progress(f"text-generation image (not in the template yet): {uri}")
        return uri

    @property
    def _policies_file(self) -> Path:
        return self.paths.home / "iam" / "policies.json"

    def _apply_template(
        self,
        assembly: Path,
        resources: aws_resources.PlatformResources,
        moto_url: str,
        credentials: dict[str, str],
    ) -> tuple[aws_resources.PlatformResources, Path]:
        """The policies of the synthesised template, resolved to the resources just made, and
        the training code published where that template's policies say it is."""
        names = cloud_template.local_names(resources)
        asset = cloud_template.sourcedir_asset(assembly, names)
        aws_resources.publish_file(
            moto_url,
            asset.path,
            asset.bucket,
            asset.key,
            resources.kms_key_arn,
            credentials=credentials,
            storage_url=self.options.localstack_url,
        )
        self.progress(f"published the training code asset to {asset.s3_uri}")
        policies = cloud_template.stack_policies(assembly, names)
        policies_file = policies.write(self._policies_file)
        self.progress(f"IAM policies of {len(policies.functions)} functions: {policies_file}")
        return dataclasses.replace(resources, source_dir_s3_uri=asset.s3_uri), policies_file

    def _launch(
        self, name: str, argv: list[str], env: dict[str, str], url: str, health: str
    ) -> None:
        log = self.paths.log_for(name)
        self.progress(f"starting {name} on {url} (log: {log})")
        child = spawn(name, argv, python_env(env), log, cwd=REPO_ROOT)
        self.children[name] = child
        self.specs[name] = (argv, env, url, health)
        self.started[name] = time.monotonic()
        self.parts[name] = {
            **self.parts.get(name, {}),
            **child.record(),
            "url": url,
            "health": url + health,
            "port": int(url.rsplit(":", 1)[1]),
        }
        self._write_state("starting" if name not in self.backoff else "recovering")

    def _wait_healthy(self, name: str) -> None:
        child, part = self.children[name], self.parts[name]
        started = time.monotonic()
        deadline = started + HEALTH_TIMEOUT_S[name]
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StartupFailed(
                    f"{name} exited with {child.process.returncode}; "
                    f"last lines of {child.log}:\n{_tail(child.log)}"
                )
            if http_ok(part["health"], timeout=1.0):
                self.progress(f"{name} healthy after {time.monotonic() - started:.1f}s")
                return
            time.sleep(0.1)
        raise StartupFailed(f"{name} not healthy after {HEALTH_TIMEOUT_S[name]:.0f}s")

    def _watch(self) -> int:
        """Restarts any part that exits, until the supervisor is stopped."""
        while True:
            for name, child in list(self.children.items()):
                if child.process.poll() is not None:
                    self._restart(name, child)
            time.sleep(0.5)

    def _restart(self, name: str, child: Child) -> None:
        """Starts a crashed part again on its port, after a backoff, and says so. Its state
        comes back with it: moto's from its state folder, the others hold none of their own."""
        ran_s = time.monotonic() - self.started.get(name, 0.0)
        delay = RESTART_FIRST_S if ran_s >= STABLE_S else self.backoff.get(name, 0.0) * 2
        delay = min(RESTART_CAP_S, max(RESTART_FIRST_S, delay))
        self.backoff[name] = delay
        part = self.parts[name]
        part["restarts"] = part.get("restarts", 0) + 1
        part["last_exit"] = child.process.returncode
        part["restarted_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.progress(
            f"{name} exited with {child.process.returncode}; restarting it in {delay:.0f}s "
            f"(restart {part['restarts']}). Last lines:\n{_tail(child.log)}"
        )
        self._write_state("recovering")
        time.sleep(delay)
        self._launch(name, *self.specs[name])
        try:
            self._wait_healthy(name)
        except StartupFailed as failure:  # the next turn of the watch starts it again
            self.progress(f"{name} did not come back: {failure}")
            return
        self._write_state("ready")

    def _stop_all(self) -> None:
        self._write_state("stopping")
        for name in reversed(list(self.children)):  # gateway first, moto last
            child = self.children[name]
            if child.process.poll() is None:
                try:
                    stop_tree(psutil.Process(child.pid))
                except psutil.Error:
                    pass
            child.process.wait(timeout=15)

    def _write_state(self, status: str) -> None:
        me = psutil.Process()
        state: dict[str, Any] = {
            "status": status,
            "home": str(self.paths.home),
            "supervisor": {"pid": me.pid, "create_time": me.create_time()},
            "parts": self.parts,
            "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        if "gateway" in self.parts:
            state["api_url"] = self.parts["gateway"]["url"]
        if self.api_key:
            state["api_key"] = self.api_key
        # Deployment waits in the emulator run at this fraction of the time asked for.
        state["sagemaker_time_scale"] = _time_scale()
        if self.options.localstack_url:
            state["localstack_url"] = self.options.localstack_url
        write_private_json(self.paths.state_file, state)


def _stage_clients() -> list[dict[str, Any]]:
    """The local stage's clients (cdk.json's dev clients); none where there is no cdk.json."""
    try:
        return stage_clients(local_stage_context())
    except (OSError, KeyError, ValueError):
        return []


def _time_scale() -> float:
    """How fast local waits run (the emulator's canary and bake, the events retries)."""
    return float(os.environ.get("MAAS_SAGEMAKER_TIME_SCALE", "0.1"))


def _module_argv(module: str, *flags: str, **options: object) -> list[str]:
    """`python -m module --an-option value ... flags`, in this interpreter."""
    argv = [sys.executable, "-m", module]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv + list(flags)


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="maas local stack supervisor")
    parser.add_argument("--home", type=Path, default=default_home(), help="state directory")
    parser.add_argument("--openapi", type=Path, default=StackOptions.openapi)
    parser.add_argument("--handlers-package", default=StackOptions.handlers_package)
    parser.add_argument(
        "--function-concurrency", type=int, default=StackOptions.function_concurrency
    )
    parser.add_argument(
        "--localstack-url",
        default=StackOptions.localstack_url,
        help="a running LocalStack to serve S3, KMS, SQS and EventBridge",
    )
    args = parser.parse_args(argv)
    paths = StackPaths(args.home).ensure()
    options = StackOptions(
        openapi=args.openapi,
        handlers_package=args.handlers_package,
        localstack_url=args.localstack_url,
        function_concurrency=args.function_concurrency,
    )

    def progress(line: str) -> None:
        print(f"maas local: {line}", flush=True)

    os.umask(0o077)
    return Supervisor(paths, options, progress).run()


if __name__ == "__main__":
    raise SystemExit(main())
