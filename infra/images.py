"""Deep Learning Container image URIs, resolved at synth time from sagemaker-core's bundled
tables (no network call), so templates pin exact images for the stage's region. Inference has
a GPU and a CPU image: a CUDA image does not start on a CPU instance."""

from __future__ import annotations

from dataclasses import dataclass

from maas_contract.sagemaker import is_gpu

# Any GPU (CPU) instance type selects the GPU (CPU) flavour of the inference image; these
# two only pick the flavour, whatever the training instance type is.
GPU_INFERENCE_INSTANCE_TYPE = "ml.g5.xlarge"
CPU_INFERENCE_INSTANCE_TYPE = "ml.m5.large"


@dataclass(frozen=True)
class ContainerImages:
    training: str
    inference: str
    inference_cpu: str

    def inference_for(self, instance_type: str) -> str:
        return self.inference if is_gpu(instance_type) else self.inference_cpu

    def repository_arns(self) -> list[str]:
        """ECR repository ARNs of every image, for a pull policy scoped to exactly them."""
        arns = []
        for uri in (self.training, self.inference, self.inference_cpu):
            host, _, path = uri.partition("/")
            account, _, _, region, *_ = host.split(".")
            arns.append(f"arn:aws:ecr:{region}:{account}:repository/{path.split(':')[0]}")
        return sorted(set(arns))


def resolve_images(
    *, region: str, framework_version: str, py_version: str, instance_type: str
) -> ContainerImages:
    from sagemaker.core import image_uris  # slow import; only synth needs it

    def uri(scope: str, on: str) -> str:
        return str(
            image_uris.retrieve(
                framework="pytorch",
                region=region,
                version=framework_version,
                py_version=py_version,
                instance_type=on,
                image_scope=scope,
            )
        )

    return ContainerImages(
        training=uri("training", instance_type),
        inference=uri("inference", GPU_INFERENCE_INSTANCE_TYPE),
        inference_cpu=uri("inference", CPU_INFERENCE_INSTANCE_TYPE),
    )
