"""`python -m maas_local.sagemaker --port PORT --root DIR [--event-sink URL|events:BUS]`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from maas_local.sagemaker.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m maas_local.sagemaker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: a free one)")
    parser.add_argument("--root", required=True, help="folder for jobs, models and logs")
    parser.add_argument(
        "--event-sink",
        help="http(s) URL to POST events to, or events:BUSNAME; default: $MAAS_EVENT_SINK "
        "(a URL that holds a secret belongs there, not on the command line)",
    )
    parser.add_argument("--source-dir", help="training code when a job has no submit directory")
    parser.add_argument("--seed", type=int, help="seed for weighted traffic splitting")
    parser.add_argument("--time-scale", type=float, help="multiplies deployment wait times")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    emulator = serve(
        args.host,
        args.port,
        args.root,
        args.event_sink,
        source_dir=args.source_dir,
        seed=args.seed,
        time_scale=args.time_scale,
    )
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    print(f"sagemaker emulator ready on {emulator.url}", flush=True)
    stopped.wait()
    emulator.shutdown()


if __name__ == "__main__":
    main()
