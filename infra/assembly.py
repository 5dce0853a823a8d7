"""Builds the CDK app for one or more stages from cdk.json context, with cdk-nag attached.
app.py calls this; the infra tests call it too, so both synthesise the very same thing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from infra.config import StageConfig

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402  (jsii reads the variables above when it starts)
from cdk_nag import AwsSolutionsChecks, ServerlessChecks  # noqa: E402

from infra.account_settings import AccountSettingsStack, account_stack_name  # noqa: E402
from infra.config import ConfigError  # noqa: E402
from infra.images import resolve_images  # noqa: E402
from infra.packaging import stage_lambda_code  # noqa: E402
from infra.powertools_layer import check_layer  # noqa: E402
from infra.server_layer import (  # noqa: E402
    LayerBuildError,
    stage_server_layer,
    write_startup_script,
)
from infra.stack import Inputs, MaasStack  # noqa: E402
from maas_contract.packaging import pack_sourcedir  # noqa: E402
from maas_contract.routes import (  # noqa: E402
    STREAMING_GROUPS,
    load_routes,
    require_deployable,
)

STAGES_KEY = "maas:stages"
LAYER_KEY = "maas:powertools_layer_version"


def stage_names(context: dict[str, Any], requested: str | None) -> list[str]:
    stages = context.get(STAGES_KEY) or {}
    if requested:
        return [requested]
    return sorted(stages)


def build_app(
    *,
    repo_root: Path,
    context: dict[str, Any],
    stages: list[str],
    outdir: str | None = None,
    openapi_path: Path | None = None,
) -> cdk.App:
    app = cdk.App(outdir=outdir, context=context)
    build_dir = Path(app.outdir) / ".maas-build"
    routes = load_routes(openapi_path or repo_root / "openapi.json")
    require_deployable(routes)
    code_dir = stage_lambda_code(
        [repo_root / "handlers", repo_root / "maas_contract"],
        openapi_path or repo_root / "openapi.json",
        build_dir / "lambda",
    )
    for group in sorted(STREAMING_GROUPS):
        write_startup_script(code_dir, group)
    try:
        server_layer = stage_server_layer(build_dir / "server-layer")
    except LayerBuildError as exc:
        raise ConfigError(f"the streaming functions' server layer: {exc}") from exc
    sourcedir = pack_sourcedir(repo_root / "training", build_dir / "sourcedir.tar.gz")
    layer_version = int(context[LAYER_KEY])
    try:
        check_layer(layer_version)
    except ValueError as exc:
        raise ConfigError(f"{LAYER_KEY}: {exc}") from exc
    account_stacks: dict[str, AccountSettingsStack] = {}
    for stage in stages:
        config = StageConfig.from_context(stage, context[STAGES_KEY])
        images = resolve_images(
            region=config.region,
            framework_version=config.framework_version,
            py_version=config.py_version,
            instance_type=config.training_instance_type,
        )
        inputs = Inputs(
            routes=routes,
            images=images,
            lambda_code_dir=code_dir,
            sourcedir_archive=sourcedir,
            metric_definitions=repo_root / "training" / "metric_definitions.json",
            powertools_layer_version=layer_version,
            server_layer_dir=server_layer,
        )
        account = config.account or os.environ.get("CDK_DEFAULT_ACCOUNT")
        environment = cdk.Environment(account=account, region=config.region)
        if config.region not in account_stacks:
            account_stacks[config.region] = AccountSettingsStack(
                app,
                account_stack_name(config.region),
                env=environment,
                description="maas: account-wide settings shared by every stage in this region",
            )
            cdk.Tags.of(account_stacks[config.region]).add("project", "maas")
        stack = MaasStack(
            app,
            config.resource_prefix,
            config=config,
            inputs=inputs,
            env=environment,
            description=f"maas platform, stage {stage}",
            termination_protection=config.retain_data,
        )
        # The stage's API logs through the account's API Gateway logging role.
        stack.add_stack_dependency(
            account_stacks[config.region], "API logging needs the account's API Gateway role"
        )
        cdk.Tags.of(stack).add("project", "maas")
        cdk.Tags.of(stack).add("stage", stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(), ServerlessChecks())
    return app
