"""An emulated SageMaker: the control plane maas uses and the runtime, on one local port.

Training jobs run `training/train.py` (or the job's `sourcedir.tar.gz`) in a subprocess with the
SageMaker environment; endpoints serve `model.tar.gz` through its `code/inference.py` in one
worker process per production variant. Plain boto3 clients work against it with `endpoint_url`.
"""

from maas_local.sagemaker.server import Emulator, serve

__all__ = ["Emulator", "serve"]
