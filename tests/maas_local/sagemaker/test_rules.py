"""The emulator refuses what SageMaker refuses, with SageMaker's error code and wording.

Refusals go through the wire (boto3 against the emulator); where a case must be accepted, the
rule is also called directly, so no job or fleet starts. Each test names its documentation page.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from maas_contract.sagemaker import VARIANT_NAME
from maas_local.sagemaker import rules
from maas_local.sagemaker.protocol import AwsError, service_model
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    create_model,
    unique,
    wait_endpoint,
)

KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def training_request(**overrides) -> dict:
    request = dict(
        TrainingJobName=unique("rules"),
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    request.update(overrides)
    return request


def refused(call, *args, **kwargs) -> str:
    """The message of the ValidationException the call must raise."""
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    error = exc.value.response["Error"]
    assert error["Code"] == "ValidationException", error
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error["Message"]


def accepted(operation: str, request: dict) -> None:
    rules.check_request(operation, request)  # raises AwsError if refused


def variant(model: str, instance_type: str = "ml.m5.large", count: int = 1, **extra) -> dict:
    return {
        "VariantName": VARIANT_NAME,
        "ModelName": model,
        "InstanceType": instance_type,
        "InitialInstanceCount": count,
        **extra,
    }


# -- KMS and local storage ------------------------------------------------------------------


def test_volume_kms_key_on_a_local_storage_training_instance_is_refused(sm):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html
    "You can't request a VolumeKmsKeyId when using an
    instance type with local storage." (ml.g5 carries NVMe instance storage.)"""
    resources = {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10}
    request = training_request(ResourceConfig={**resources, "VolumeKmsKeyId": KMS_KEY})

    message = refused(sm.create_training_job, **request)

    assert message == (
        "You can't request a VolumeKmsKeyId when using an instance type with local storage."
    )
    ebs_only = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10}
    accepted(
        "CreateTrainingJob",
        training_request(ResourceConfig={**ebs_only, "VolumeKmsKeyId": KMS_KEY}),
    )


def test_endpoint_config_kms_key_with_a_local_storage_variant_is_refused(sm, s3):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html
    "If you specify a value for KmsKeyId when using any
    nitro-based instances with local storage, the call to CreateEndpointConfig fails." """
    model = create_model(sm, s3, unique("kms"))

    message = refused(
        sm.create_endpoint_config,
        EndpointConfigName=unique("kms"),
        ProductionVariants=[variant(model, "ml.g5.xlarge")],
        KmsKeyId=KMS_KEY,
    )

    assert message == "You can't request a KmsKeyId when using an instance type with local storage."
    name = unique("kms-ebs")
    sm.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[variant(model)], KmsKeyId=KMS_KEY
    )
    assert sm.describe_endpoint_config(EndpointConfigName=name)["KmsKeyId"] == KMS_KEY


# -- managed spot and the stopping condition ------------------------------------------------


@pytest.mark.parametrize(
    ("spot", "stopping", "expected"),
    [
        (
            False,
            {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
            "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining"
            " is set to true",
        ),
        (
            True,
            {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 1800},
            "Invalid MaxWaitTimeInSeconds. It must be equal to or greater than MaxRuntimeInSeconds",
        ),
        (
            True,
            {"MaxRuntimeInSeconds": 3600},
            "MaxWaitTimeInSeconds is required when EnableManagedSpotTraining is set to true",
        ),
        (
            False,
            {"MaxRuntimeInSeconds": 28 * 24 * 3600 + 1},
            "1 validation error detected: Value '2419201' at 'stoppingCondition."
            "maxRuntimeInSeconds' failed to satisfy constraint: Member must have value less "
            "than or equal to 2419200",
        ),
    ],
)
def test_spot_and_runtime_limits_are_enforced(sm, spot, stopping, expected):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html
    MaxWaitTimeInSeconds "must be equal to or greater
    than MaxRuntimeInSeconds"; MaxRuntimeInSeconds "The maximum value is 28 days."
    https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html"""
    request = training_request(EnableManagedSpotTraining=spot, StoppingCondition=stopping)

    assert refused(sm.create_training_job, **request) == expected


def test_spot_with_a_long_enough_wait_is_accepted():
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html
    a wait equal to the runtime is allowed."""
    stopping = {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}
    accepted(
        "CreateTrainingJob",
        training_request(EnableManagedSpotTraining=True, StoppingCondition=stopping),
    )


# -- hyperparameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hyperparameters", "constraint"),
    [
        (
            {f"k{i}": "1" for i in range(101)},
            "failed to satisfy constraint: Member must have length less than or equal to 100",
        ),
        (
            {"k" * 257: "1"},
            "failed to satisfy constraint: Map keys must satisfy constraint: [Member must have "
            "length less than or equal to 256",
        ),
        (
            {"lr": "1" * 2501},
            "failed to satisfy constraint: Map value must satisfy constraint: [Member must have "
            "length less than or equal to 2500",
        ),
    ],
)
def test_hyperparameter_limits_are_enforced(sm, hyperparameters, constraint):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html#sagemaker-CreateTrainingJob-request-HyperParameters

    at most 100 entries, keys up to 256 characters, values up to 2500."""
    request = training_request(HyperParameters=hyperparameters)

    message = refused(sm.create_training_job, **request)

    assert message.startswith("1 validation error detected: Value '{")
    assert "at 'hyperParameters' " + constraint in message
    accepted("CreateTrainingJob", training_request(HyperParameters={"k" * 256: "1" * 2500}))


# -- instance types and names from the service model ----------------------------------------


def test_training_instance_type_outside_the_enum_is_refused_with_the_enum(sm):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html#sagemaker-Type-ResourceConfig-InstanceType
    Valid Values.
    ml.c5.large hosts endpoints but does not train."""
    allowed = service_model("sagemaker").shape_for("TrainingInstanceType").enum
    resources = {"InstanceType": "ml.c5.large", "InstanceCount": 1, "VolumeSizeInGB": 10}

    message = refused(sm.create_training_job, **training_request(ResourceConfig=resources))

    assert message == (
        "1 validation error detected: Value 'ml.c5.large' at 'resourceConfig.instanceType' "
        f"failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
    )


def test_hosting_instance_type_outside_the_enum_is_refused(sm, s3):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html#sagemaker-Type-ProductionVariant-InstanceType

    ml.c5n.xlarge trains but does not host."""
    model = create_model(sm, s3, unique("type"))

    message = refused(
        sm.create_endpoint_config,
        EndpointConfigName=unique("type"),
        ProductionVariants=[variant(model, "ml.c5n.xlarge")],
    )

    assert message.startswith(
        "1 validation error detected: Value 'ml.c5n.xlarge' at "
        "'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must "
        "satisfy enum value set: [ml.t2.medium, "
    )


@pytest.mark.parametrize(
    ("field", "value", "constraint"),
    [
        ("trainingJobName", "bad_name", "Member must satisfy regular expression pattern: "),
        ("trainingJobName", "a" * 64, "Member must have length less than or equal to 63"),
    ],
)
def test_training_job_name_pattern_and_length_are_enforced(sm, field, value, constraint):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html#sagemaker-CreateTrainingJob-request-TrainingJobName

    Pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}, Maximum length of 63."""
    message = refused(sm.create_training_job, **training_request(TrainingJobName=value))

    assert f"Value '{value}' at '{field}' failed to satisfy constraint: {constraint}" in message


def test_model_endpoint_and_variant_names_follow_their_patterns(sm, s3):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html,
    .../API_CreateEndpoint.html and .../API_ProductionVariant.html: ModelName, EndpointName
    and VariantName patterns and lengths."""
    container = {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"}
    model_message = refused(
        sm.create_model,
        ModelName="-leading-dash",
        ExecutionRoleArn=ROLE,
        PrimaryContainer=container,
    )
    endpoint_message = refused(sm.create_endpoint, EndpointName="e" * 64, EndpointConfigName="c")
    model = create_model(sm, s3, unique("names"))
    variant_message = refused(
        sm.create_endpoint_config,
        EndpointConfigName=unique("names"),
        ProductionVariants=[{**variant(model), "VariantName": "v_1"}],
    )

    assert "Value '-leading-dash' at 'modelName' failed to satisfy constraint" in model_message
    assert "at 'endpointName' failed to satisfy constraint: Member must have length less " in (
        endpoint_message
    )
    assert "Value 'v_1' at 'productionVariants.1.member.variantName' failed" in variant_message


# -- unknown resources ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("describe_training_job", {"TrainingJobName": "ghost"}, "Requested resource not found."),
        ("stop_training_job", {"TrainingJobName": "ghost"}, "Requested resource not found."),
        ("describe_endpoint", {"EndpointName": "ghost"}, 'Could not find endpoint "{arn}".'),
        ("delete_endpoint", {"EndpointName": "ghost"}, 'Could not find endpoint "{arn}".'),
        (
            "update_endpoint",
            {"EndpointName": "ghost", "EndpointConfigName": "ghost-cfg"},
            'Could not find endpoint "{arn}".',
        ),
        ("describe_model", {"ModelName": "ghost"}, 'Could not find model "{arn}".'),
        ("delete_model", {"ModelName": "ghost"}, 'Could not find model "{arn}".'),
        (
            "describe_endpoint_config",
            {"EndpointConfigName": "ghost"},
            'Could not find endpoint configuration "{arn}".',
        ),
        (
            "delete_endpoint_config",
            {"EndpointConfigName": "ghost"},
            'Could not find endpoint configuration "{arn}".',
        ),
    ],
)
def test_unknown_resources_answer_validation_exception(sm, operation, params, expected):
    """SageMaker answers ValidationException for unknown names, not the ResourceNotFound its
    model declares: https://github.com/aws/aws-sdk/issues/165 ("Requested resource not found.")
    and https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
    (Errors: none but the common ValidationException) for the others."""
    kind = {"endpoint": "endpoint", "model": "model", "config": "endpoint-config"}
    resource = next((k for k in ("config", "endpoint", "model") if k in operation), "")
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:{kind.get(resource)}/ghost"

    message = refused(getattr(sm, operation), **params)

    assert message == expected.format(arn=arn)


# -- deployment guardrails ------------------------------------------------------------------

GUARDRAILS = "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html"


def canary(size: dict, wait: int = 60, **policy) -> dict:
    routing = {"Type": "CANARY", "CanarySize": size, "WaitIntervalInSeconds": wait}
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, **policy}}


def linear(size: dict) -> dict:
    routing = {"Type": "LINEAR", "LinearStepSize": size, "WaitIntervalInSeconds": 60}
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing}}


def rolling(size: dict) -> dict:
    return {"RollingUpdatePolicy": {"MaximumBatchSize": size, "WaitIntervalInSeconds": 60}}


def percent(value: int) -> dict:
    return {"Type": "CAPACITY_PERCENT", "Value": value}


def instances(value: int) -> dict:
    return {"Type": "INSTANCE_COUNT", "Value": value}


@pytest.fixture(scope="module")
def live(sm, s3):
    """An InService endpoint on one `AllTraffic` variant: (endpoint, its model)."""
    model = create_model(sm, s3, unique("guard"))
    config = unique("guard")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant(model)])
    name = unique("guard")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    yield name, model
    sm.delete_endpoint(EndpointName=name)


def new_config(sm, model: str, **variant_overrides) -> str:
    name = unique("guard-next")
    spec = {**variant(model), **variant_overrides}
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[spec])
    return name


def test_blue_green_or_rolling_update_with_another_variant_name_is_refused(sm, live):
    """https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html:
    "your new endpoint configuration must have the same variant name as the old" one."""
    endpoint, model = live
    renamed = new_config(sm, model, VariantName="v2")

    for deploy in (canary(percent(25)), rolling(percent(50))):
        message = refused(
            sm.update_endpoint,
            EndpointName=endpoint,
            EndpointConfigName=renamed,
            DeploymentConfig=deploy,
        )
        assert "['v2']" in message and f"['{VARIANT_NAME}']" in message
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"


@pytest.mark.parametrize(
    ("deploy", "count", "expected"),
    [
        (canary(percent(51)), 1, "CanarySize CAPACITY_PERCENT 51 is invalid"),
        (canary(instances(3)), 4, "CanarySize INSTANCE_COUNT 3 is invalid"),
        (linear(percent(5)), 1, "LinearStepSize CAPACITY_PERCENT 5 is invalid"),
        (linear(instances(3)), 4, "LinearStepSize INSTANCE_COUNT 3 is invalid"),
        (rolling(percent(4)), 1, "MaximumBatchSize CAPACITY_PERCENT 4 is invalid"),
        (rolling(instances(3)), 4, "MaximumBatchSize INSTANCE_COUNT 3 is invalid"),
        (
            {**canary(percent(10)), **rolling(percent(10))},
            1,
            "Only one update policy, BlueGreenUpdatePolicy or RollingUpdatePolicy",
        ),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 0}
                }
            },
            1,
            "CanarySize is required for a CANARY traffic routing.",
        ),
    ],
)
def test_step_sizes_beyond_the_documented_shares_are_refused(sm, live, deploy, count, expected):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html:
    CanarySize "less than or equal to 50%", LinearStepSize "10-50%" of the variant's total
    instance count; .../API_RollingUpdatePolicy.html: MaximumBatchSize "between 5% to 50%";
    .../API_BlueGreenUpdatePolicy.html: "Only one update policy should be used"."""
    endpoint, model = live
    config = new_config(sm, model, InitialInstanceCount=count)

    message = refused(
        sm.update_endpoint,
        EndpointName=endpoint,
        EndpointConfigName=config,
        DeploymentConfig=deploy,
    )

    assert message.startswith(expected)


@pytest.mark.parametrize(
    ("deploy", "path", "constraint"),
    [
        (
            canary(percent(10), wait=3601),
            "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration."
            "waitIntervalInSeconds",
            "Member must have value less than or equal to 3600",
        ),
        (
            canary(percent(10), TerminationWaitInSeconds=3601),
            "deploymentConfig.blueGreenUpdatePolicy.terminationWaitInSeconds",
            "Member must have value less than or equal to 3600",
        ),
        (
            canary(percent(10), MaximumExecutionTimeoutInSeconds=28801),
            "deploymentConfig.blueGreenUpdatePolicy.maximumExecutionTimeoutInSeconds",
            "Member must have value less than or equal to 28800",
        ),
        (
            canary(percent(10), MaximumExecutionTimeoutInSeconds=599),
            "deploymentConfig.blueGreenUpdatePolicy.maximumExecutionTimeoutInSeconds",
            "Member must have value greater than or equal to 600",
        ),
        (
            {
                **canary(percent(10)),
                "AutoRollbackConfiguration": {
                    "Alarms": [{"AlarmName": f"alarm-{i}"} for i in range(11)]
                },
            },
            "deploymentConfig.autoRollbackConfiguration.alarms",
            "Member must have length less than or equal to 10",
        ),
    ],
)
def test_deployment_waits_timeouts_and_alarms_are_bounded(
    unvalidated_sm, sm, live, deploy, path, constraint
):
    """https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
    (WaitIntervalInSeconds 0-3600), .../API_BlueGreenUpdatePolicy.html (TerminationWaitInSeconds
    0-3600, MaximumExecutionTimeoutInSeconds 600-28800), .../API_AutoRollbackConfig.html (at most
    10 alarms). The client that skips botocore's own checks lets the minimum reach the server."""
    endpoint, model = live
    config = new_config(sm, model)

    message = refused(
        unvalidated_sm.update_endpoint,
        EndpointName=endpoint,
        EndpointConfigName=config,
        DeploymentConfig=deploy,
    )

    assert message.startswith("1 validation error detected: Value '")
    assert f"at '{path}' failed to satisfy constraint: {constraint}" in message


def record(name: str, *variants: dict) -> dict:
    return {"EndpointConfigName": name, "ProductionVariants": list(variants)}


def test_guardrail_boundaries_are_accepted_and_rolling_exclusions_refused():
    """https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html:
    rolling deployments exclude serverless and multi-variant endpoints; the documented bounds
    themselves (50% canary, 10% and 50% linear steps, 5% rolling batch) are allowed."""
    old, new = record("old", variant("m", count=4)), record("new", variant("m", count=4))
    for deploy in (
        canary(percent(50)),
        canary(instances(2)),
        linear(percent(10)),
        linear(instances(2)),
        rolling(percent(5)),
        {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a"}]}},
    ):
        rules.check_deployment(deploy, old, new)
    two = [variant("m"), {**variant("m"), "VariantName": "b"}]
    serverless = {
        "VariantName": VARIANT_NAME,
        "ModelName": "m",
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
    }
    for old_config, new_config_, expected in (
        (record("old", *two), record("new", *two), "multi-variant"),
        (record("old", serverless), record("new", serverless), "serverless"),
    ):
        with pytest.raises(AwsError, match=expected):
            rules.check_deployment(rolling(percent(50)), old_config, new_config_)
        rules.check_deployment(canary(percent(50)), old_config, new_config_)
