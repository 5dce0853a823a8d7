"""Deep Learning Container image URIs, resolved at synth time from sagemaker-core's bundled
tables (no network call), so templates pin exact images for the stage's region."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerImages:
    training: str
    inference: str

    def repository_arns(self) -> list[str]:
        """ECR repository ARNs of both images, for a pull policy scoped to exactly them."""
        arns = []
        for uri in (self.training, self.inference):
            host, _, path = uri.partition("/")
            account, _, _, region, *_ = host.split(".")
            arns.append(f"arn:aws:ecr:{region}:{account}:repository/{path.split(':')[0]}")
        return sorted(set(arns))


def resolve_images(
    *, region: str, framework_version: str, py_version: str, instance_type: str
) -> ContainerImages:
    from sagemaker.core import image_uris  # slow import; only synth needs it

    def uri(scope: str) -> str:
        return str(
            image_uris.retrieve(
                framework="pytorch",
                region=region,
                version=framework_version,
                py_version=py_version,
                instance_type=instance_type,
                image_scope=scope,
            )
        )

    return ContainerImages(training=uri("training"), inference=uri("inference"))
