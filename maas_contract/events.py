"""The SageMaker events maas reacts to: their source, detail-types and terminal states.

EventBridge rules (infra), the events handler and the local emulator all name them from here.
Detail-types and states from
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
"""

from __future__ import annotations

SOURCE = "aws.sagemaker"
TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
ENDPOINT_DEPLOYMENT_STATE_CHANGE = "SageMaker Endpoint Deployment State Change"

# The detail-types the events function is subscribed to.
HANDLED_DETAIL_TYPES = (TRAINING_JOB_STATE_CHANGE, ENDPOINT_STATE_CHANGE)

# TrainingJobStatus values after which a job never changes again.
TRAINING_JOB_TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
# The registry's deployment states after which a deployment never changes again.
DEPLOYMENT_TERMINAL = frozenset({"Succeeded", "Failed", "RolledBack"})
