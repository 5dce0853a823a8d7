"""`make demo`: the whole platform on this machine, from raw digits to a canary rollout, then a
text generator trained, deployed and streaming through the OpenAI-compatible API.

    python -m maas.demo [--keep]

Every step goes through the HTTPS API as a client would, except the data upload (to the
local S3). `--keep` leaves the stack running; `maas local down` stops it later.
"""

from __future__ import annotations

import argparse
import sys
import time

from maas import demo_steps as steps
from maas.client import Client
from maas_local import lifecycle
from maas_local.aws_resources import stack_credentials
from maas_local.config import StackPaths, default_home, read_json
from maas_local.stack import StackOptions

TOTAL = 9
CANARY_PERCENT = 50
# The emulator runs deployment waits at a tenth of real time: 900 s bakes for 90 s here.
CANARY_WAIT_SECONDS = 900


class Narrator:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def step(self, number: int, text: str) -> None:
        print(
            f"\n[{time.monotonic() - self.started:6.1f}s] step {number}/{TOTAL}: {text}", flush=True
        )

    def say(self, text: str) -> None:
        print(f"          {text}", flush=True)


def run(paths: StackPaths, keep: bool, epochs: int) -> int:
    tell = Narrator()
    tell.step(1, "install: done by `make demo` (the .venv holds every dependency)")
    tell.step(
        2, "start the local stack: moto (S3, DynamoDB, KMS, IAM), SageMaker emulator, gateway"
    )
    if lifecycle.up(paths, foreground=False, options=StackOptions()) != 0:
        tell.say("the stack did not start; see `maas local logs`")
        return 1
    try:
        return _story(paths, tell, epochs)
    finally:
        if keep:
            tell.step(9, "left running (--keep): `maas local status`, `maas local down`")
        else:
            tell.step(9, "shut down")
            lifecycle.down(paths)  # shielded from a second Ctrl-C


def _story(paths: StackPaths, tell: Narrator, epochs: int) -> int:
    state = read_json(paths.state_file) or {}
    api = Client.local(paths.home)
    tell.step(3, "upload the digits data (scikit-learn's 8x8 digits) to the local S3")
    channels, held = steps.prepare_and_upload(
        state["parts"]["moto"]["url"], tell.say, stack_credentials(paths.keys)
    )
    tell.say(f"kept {len(held.y)} test digits aside")

    tell.step(4, "train v1 through the API (image-cnn), auto-deploy if accuracy >= 0.9")
    spec = steps.training_request(channels, seed=1, epochs=epochs, auto_deploy=True)
    job = steps.train(api, spec, tell.say)
    if job["status"] != "Completed":
        tell.say(f"training ended {job['status']}: {job.get('failure_reason')}")
        return 1

    tell.step(5, "register and deploy the version (the job-completed event does both)")
    job = steps.wait_for_version(api, job["id"])
    first = job.get("registered_version")
    if first is None:
        tell.say(f"no version registered (outcome: {job.get('outcome')})")
        return 1
    tell.say(f"registered {steps.MODEL} v{first}")
    if steps.follow_auto_deployment(api, job["id"], tell.say)["status"] != "Succeeded":
        return 1
    steps.wait_until_live(api, first, tell.say)

    tell.step(6, "predict held-out digits")
    steps.show_predictions(api, held, tell.say)

    tell.step(7, f"train v2 and roll it out as a {CANARY_PERCENT}% canary")
    spec = steps.training_request(channels, seed=2, epochs=epochs, auto_deploy=False)
    job = steps.wait_for_version(api, steps.train(api, spec, tell.say)["id"])
    second = job.get("registered_version")
    if second is None:
        tell.say(f"no second version registered (outcome: {job.get('outcome')})")
        return 1
    deployment = api.deploy(
        steps.MODEL,
        {
            "version": second,
            "canary_percent": CANARY_PERCENT,
            "canary_wait_seconds": CANARY_WAIT_SECONDS,
            "rollback_alarms": steps.ROLLBACK_ALARMS,
        },
    )
    tell.say(f"deployment {deployment['id']}: v{second} canary beside v{first}")
    steps.canary_split(api, held, second, tell.say)
    return _generation(paths, api, tell)


def _generation(paths: StackPaths, api: Client, tell: Narrator) -> int:
    tell.step(8, "train a text generator on the standard library's docstrings, deploy, stream")
    state = read_json(paths.state_file) or {}
    channels = steps.prepare_text_and_upload(
        state["parts"]["moto"]["url"], tell.say, stack_credentials(paths.keys)
    )
    job = steps.train(api, steps.generation_request(channels), tell.say)
    if job["status"] != "Completed":
        tell.say(f"training ended {job['status']}: {job.get('failure_reason')}")
        return 1
    job = steps.wait_for_version(api, job["id"])
    version = job.get("registered_version")
    if version is None:
        tell.say(f"no version registered (outcome: {job.get('outcome')})")
        return 1
    perplexity = job.get("metrics", {}).get("validation:perplexity")
    tell.say(f"registered {steps.WRITER} v{version} (validation perplexity {perplexity})")
    if steps.follow_auto_deployment(api, job["id"], tell.say)["status"] != "Succeeded":
        return 1
    steps.wait_until_live(api, version, tell.say, name=steps.WRITER)
    tell.say("POST /openai/v1/completions, stream: true (server-sent events, as they come):")
    print(flush=True)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    usage = steps.stream_completion(api, write)
    tell.say(f"usage: {usage}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per version")
    args = parser.parse_args(argv)
    paths = StackPaths(default_home())
    try:
        return run(paths, args.keep, args.epochs)
    except KeyboardInterrupt:
        left = "left running (--keep)" if args.keep else "stopped"
        print(f"\ninterrupted; the stack is {left}", flush=True)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
