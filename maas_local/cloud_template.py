"""The synthesised CloudFormation template, as the local stack's source of IAM truth.

`synthesise()` gives the local stage's cloud assembly: synthesised from the checkout
(maas_local.synth), or, in an installed wheel, rebuilt from what the wheel carries
(maas_local.bundle), so `maas local up` needs neither Node nor the CDK there.

Policies come out with CloudFormation intrinsics (`Ref`, `Fn::GetAtt`, `Fn::Join`,
`Fn::Sub`) resolved against the resources the local stack really made, so their ARNs are
the ones the local AWS services answer for.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maas_contract.routes import EVENTS_GROUP, ROUTE_GROUPS, STREAMING_GROUPS, handler_entry
from maas_local import bundle, synth
from maas_local.aws_resources import PlatformResources
from maas_local.config import BUNDLE, IN_CHECKOUT, REGION, REPO_ROOT
from maas_local.iam_policy import Policy
from maas_local.proxy_event import ACCOUNT_ID
from maas_local.synth import STACK, SynthError


def synthesise() -> Path:
    """The local stage's cloud assembly folder: synthesised from the checkout (cached until
    its inputs change), else rebuilt from the bundle the installed wheel carries."""
    if IN_CHECKOUT:
        return synth.synthesise(REPO_ROOT)
    return bundle.rebuild(BUNDLE)


@dataclass(frozen=True)
class LocalNames:
    """The physical resources the local stack made, by what they are in the template."""

    table: str
    buckets: dict[str, str]  # "Artifacts" / "Data" / "Capture" -> bucket name
    key_arn: str
    execution_role_arn: str
    alarm_topic_arn: str = ""
    token_usage_table: str = ""
    region: str = REGION
    account: str = ACCOUNT_ID


def local_names(resources: PlatformResources) -> LocalNames:
    """What `maas local up` made (aws_resources.create_platform), by its part in the template."""
    return LocalNames(
        table=resources.registry_table,
        buckets={
            "Artifacts": resources.artifact_bucket,
            "Data": resources.data_bucket,
            "Capture": resources.capture_bucket,
        },
        key_arn=resources.kms_key_arn,
        execution_role_arn=resources.role_arn,
        alarm_topic_arn=resources.alarm_topic_arn,
        token_usage_table=resources.token_usage_table,
    )


def construct_paths(outdir: Path) -> dict[str, str]:
    """Logical ID -> construct path (`/maas-local/ArtifactStore/Key/Resource`), from the
    stack's metadata file in the cloud assembly."""
    metadata = json.loads((outdir / f"{STACK}.metadata.json").read_text())
    return {
        str(entry["data"]): path
        for path, entries in metadata.items()
        for entry in entries
        if entry.get("type") == "aws:cdk:logicalId"
    }


class Resolver:
    """Turns template values into strings, with the local stack's physical names."""

    def __init__(self, template: dict[str, Any], names: LocalNames, paths: dict[str, str]) -> None:
        self.paths = paths
        self.names = names
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": names.region,
            "AWS::AccountId": names.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK,
        }
        self.refs: dict[str, str] = {}
        self.arns: dict[str, str] = {}
        for logical_id, resource in template.get("Resources", {}).items():
            self._name(logical_id, resource)

    def _name(self, logical_id: str, resource: dict[str, Any]) -> None:
        kind, names = resource.get("Type"), self.names
        path = self.paths.get(logical_id, "") + "/"
        if kind == "AWS::DynamoDB::Table" and "/ModelRegistry/" in path:
            self.refs[logical_id] = names.table
            self.arns[logical_id] = (
                f"arn:aws:dynamodb:{names.region}:{names.account}:table/{names.table}"
            )
        elif kind == "AWS::DynamoDB::Table" and "token" in path.lower() and names.token_usage_table:
            # The OpenAI-compatible function's token usage table (its construct names tokens).
            self.refs[logical_id] = names.token_usage_table
            self.arns[logical_id] = (
                f"arn:aws:dynamodb:{names.region}:{names.account}:table/{names.token_usage_table}"
            )
        elif kind == "AWS::S3::Bucket":
            for part, bucket in names.buckets.items():
                if f"/ArtifactStore/{part}/" in path:
                    self.refs[logical_id] = bucket
                    self.arns[logical_id] = f"arn:aws:s3:::{bucket}"
        elif kind == "AWS::KMS::Key" and "/ArtifactStore/Key/" in path:
            self.refs[logical_id] = names.key_arn.rsplit("/", 1)[-1]
            self.arns[logical_id] = names.key_arn
        elif kind == "AWS::SNS::Topic" and path.endswith("/AlarmTopic/Resource/"):
            self.refs[logical_id] = names.alarm_topic_arn  # a topic's Ref is its ARN
        elif kind == "AWS::IAM::Role" and "/TrainingPlatform/ExecutionRole/" in path:
            self.refs[logical_id] = names.execution_role_arn.rsplit("/", 1)[-1]
            self.arns[logical_id] = names.execution_role_arn

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            ref = value["Ref"]
            return self.pseudo.get(ref) or self.refs.get(ref, f"unresolved:{ref}")
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            if attribute == "Arn":
                return self.arns.get(logical_id, f"unresolved:{logical_id}.Arn")
            return f"unresolved:{logical_id}.{attribute}"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self(p)) for p in parts)
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            text = text if isinstance(text, str) else text[0]
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self({"Ref": m.group(1)})), text)
        return {k: self(v) for k, v in value.items()}


@dataclass(frozen=True)
class StackPolicies:
    """Each Lambda function's identity policy by route group, and the SageMaker role's."""

    functions: dict[str, Policy]
    execution_role: Policy
    names: LocalNames

    def write(self, path: Path) -> Path:
        """The policies file the gateway and the SageMaker emulator load (owner-only)."""
        document = {
            "region": self.names.region,
            "account": self.names.account,
            "functions": {f: p.statements for f, p in sorted(self.functions.items())},
            "execution_role": {
                "arn": self.names.execution_role_arn,
                "statements": self.execution_role.statements,
            },
            # Every bucket of the stage encrypts with the stage key by default (SSE-KMS).
            "bucket_keys": {b: self.names.key_arn for b in self.names.buckets.values()},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1, sort_keys=True))
        path.chmod(0o600)
        return path


def _role_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    resources = template.get("Resources", {})
    statements: list[dict[str, Any]] = []
    for policy in resources[role_id].get("Properties", {}).get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    for resource in resources.values():
        if resource.get("Type") not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        props = resource.get("Properties", {})
        if {"Ref": role_id} in props.get("Roles", []):
            statements += props["PolicyDocument"]["Statement"]
    return statements


def stack_policies(outdir: Path, names: LocalNames) -> StackPolicies:
    template = load_template(outdir)
    paths = construct_paths(outdir)
    resolve = Resolver(template, names, paths)
    resources = template.get("Resources", {})
    functions: dict[str, Policy] = {}
    execution: Policy | None = None
    group_of = {handler_entry(group): group for group in (*ROUTE_GROUPS, EVENTS_GROUP)}
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Lambda::Function":
            group = group_of.get(str(props.get("Handler", ""))) or _streaming_group(
                paths.get(logical_id, "")
            )
            if group:
                role_id = props["Role"]["Fn::GetAtt"][0]
                functions[group] = Policy(resolve(_role_statements(template, role_id)))
        elif resource.get("Type") == "AWS::IAM::Role" and logical_id in resolve.arns:
            execution = Policy(resolve(_role_statements(template, logical_id)))
    if not functions or execution is None:
        raise SynthError("the template has no handler functions or no SageMaker execution role")
    return StackPolicies(functions=functions, execution_role=execution, names=names)


def function_environment(outdir: Path, group: str) -> dict[str, str]:
    """The environment variables the template gives a route group's function, as written
    there (literal values only: those synthesis resolved, such as image URIs)."""
    template = load_template(outdir)
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Lambda::Function" and _is_function_of(props, group):
            variables = props.get("Environment", {}).get("Variables", {})
            return {k: v for k, v in variables.items() if isinstance(v, str)}
    return {}


def _is_function_of(props: dict[str, Any], group: str) -> bool:
    return props.get("Handler") == handler_entry(group)


def _streaming_group(path: str) -> str | None:
    """A streaming group's function, whose Handler is the Lambda Web Adapter's start script,
    not an entry point: known by its construct path, which names the group."""
    flat = re.sub(r"[^a-z0-9/]", "", path.lower())
    for group in sorted(STREAMING_GROUPS):
        if re.search(rf"/{group.replace('_', '')}[a-z0-9]*/", flat + "/"):
            return group
    return None


def load_template(outdir: Path) -> dict[str, Any]:
    return json.loads((outdir / f"{STACK}.template.json").read_text())


@dataclass(frozen=True)
class Asset:
    path: Path
    bucket: str
    key: str

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def sourcedir_asset(outdir: Path, names: LocalNames) -> Asset:
    """The training code asset as `cdk deploy` publishes it: the very file, in the CDK
    bootstrap bucket under the key the template's policies name."""
    asset = synth.sourcedir_entry(outdir)
    pseudo = {"${AWS::AccountId}": names.account, "${AWS::Region}": names.region}
    destination = next(iter(asset["destinations"].values()))
    bucket = destination["bucketName"]
    for token, value in pseudo.items():
        bucket = bucket.replace(token, value)
    return Asset(outdir / asset["source"]["path"], bucket, destination["objectKey"])
