"""Deep Learning Container image URIs, resolved at synth time from sagemaker-core's bundled
tables (no network call), so templates pin exact images for the stage's region. Inference has
a GPU and a CPU image: a CUDA image does not start on a CPU instance. Text-generation versions
are served by the Large Model Inference (LMI) container, DJL Serving with vLLM rolling batch
(sagemaker-core's `djl-lmi` table, repository `djl-inference`)."""

from __future__ import annotations

from dataclasses import dataclass

from maas_contract.sagemaker import is_gpu

# Any GPU (CPU) instance type selects the GPU (CPU) flavour of the inference image; these
# two only pick the flavour, whatever the training instance type is.
GPU_INFERENCE_INSTANCE_TYPE = "ml.g5.xlarge"
CPU_INFERENCE_INSTANCE_TYPE = "ml.m5.large"
# The LMI release pinned for text generation: DJL Serving 0.36.0 with LMI 27.0.0 on CUDA 13.0
# (image tag 0.36.0-lmi27.0.0-cu130), one release behind the table's `latest` (0.38.0), so a
# deploy does not take a release on its first day. Its vLLM engine serves the Hugging Face
# folder train.py writes; the request and stream schema is in maas_contract.generation.
# https://docs.djl.ai/docs/serving/serving/docs/lmi/user_guides/lmi_input_output_schema.html
GENERATION_FRAMEWORK = "djl-lmi"
GENERATION_VERSION = "0.36.0"


@dataclass(frozen=True)
class ContainerImages:
    training: str
    inference: str
    inference_cpu: str
    generation: str

    def inference_for(self, instance_type: str) -> str:
        return self.inference if is_gpu(instance_type) else self.inference_cpu

    def repository_arns(self) -> list[str]:
        """ECR repository ARNs of every image, for a pull policy scoped to exactly them."""
        arns = []
        for uri in (self.training, self.inference, self.inference_cpu, self.generation):
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
        generation=str(
            image_uris.retrieve(
                framework=GENERATION_FRAMEWORK, region=region, version=GENERATION_VERSION
            )
        ),
    )
