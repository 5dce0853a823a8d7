"""Every AWS call a handler makes locally is authorised against its function's policy.

In the cloud each Lambda function runs under its own role. Locally each execution environment
is a process of one function (maas_local.execution_environment), which binds that function to
the whole process once, at start (`bind_process`); `acting_as` names the function for one block
of one thread instead (the guard's own tests). Each botocore call is checked against that
function's policy from the synthesised template (maas_local.cloud_template): the action, the
resource ARN, and the
condition keys maas relies on (`iam:PassedToService` for PassRole). A denied call answers as
AWS does: a 400 `AccessDeniedException` naming the action and the resource, raised by
botocore as the ClientError the handler would get in the cloud.

The guard hooks botocore, the layer every boto3 and botocore client is made from (the
handlers' own clients and Powertools' idempotency client alike), through its documented
event system: `before-parameter-build` sees the call's parameters, `before-call` may answer
in place of the service.

Every decision goes to the audit log (one JSON line each, as CloudTrail keeps), from which
the IAM contract test lists each (function, action, resource) triple the end-to-end flow
made; the latest ones are also kept in memory, in `calls`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import botocore.handlers
from botocore.awsrequest import AWSResponse

from maas_local.iam_policy import Policy, Request, denial_message
from maas_local.iam_requests import Place, requests_for

__all__ = ["IamGuard", "Place", "acting_as", "bind_process", "requests_for"]

_acting: contextvars.ContextVar[str | None] = contextvars.ContextVar("maas_function", default=None)
# The function this whole process runs as: set once in an execution environment, read by every
# thread (a handler's own threads too, such as S3 transfers), unlike a context variable.
_process_function: str | None = None
_DECISION_KEY = "maas_iam_denial"
KEPT_DECISIONS = 10_000


@contextlib.contextmanager
def acting_as(function: str) -> Iterator[None]:
    """AWS calls made inside this block are made by Lambda function `function` (route group)."""
    token = _acting.set(function)
    try:
        yield
    finally:
        _acting.reset(token)


def bind_process(function: str | None) -> None:
    """Every AWS call this process makes, on any thread, is made by Lambda function `function`
    (None: by no function; the calls are the stack's own and go unchecked)."""
    global _process_function
    _process_function = function


def acting_function() -> str | None:
    return _acting.get() or _process_function


@dataclass
class Decision:
    function: str
    request: Request
    decision: str


@dataclass
class IamGuard:
    """Holds each function's policy and checks every call made while a function is acting."""

    policies: dict[str, Policy]
    place: Place
    bucket_keys: dict[str, str] = field(default_factory=dict)  # bucket -> default KMS key
    audit_log: Path | None = None  # one JSON line per decision, as CloudTrail would keep
    # The latest decisions only: the gateway runs for days, and the audit log keeps them all.
    calls: deque[Decision] = field(default_factory=lambda: deque(maxlen=KEPT_DECISIONS))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _audit: IO[str] | None = None

    @classmethod
    def from_file(cls, path: Path, audit_log: Path | None = None) -> IamGuard:
        """The guard for the policies file the supervisor writes at `maas local up`."""
        document = json.loads(path.read_text())
        policies = {f: Policy(s) for f, s in document["functions"].items()}
        role = document.get("execution_role")
        if role:
            policies[role["arn"]] = Policy(role["statements"])
        return cls(
            policies=policies,
            place=Place(document["region"], document["account"]),
            bucket_keys=document.get("bucket_keys", {}),
            audit_log=audit_log,
        )

    def check(self, function: str, requests: list[Request]) -> Decision | None:
        """The first denial among `requests`, or None when all are allowed."""
        policy = self.policies.get(function)
        denied = None
        for request in requests:
            decision = policy.decide(request) if policy is not None else "ImplicitDeny"
            self._record(Decision(function, request, decision))
            if decision != "Allow" and denied is None:
                denied = Decision(function, request, decision)
        return denied

    def _record(self, decision: Decision) -> None:
        with self._lock:
            self.calls.append(decision)
            if self.audit_log is not None:
                line = {
                    "function": decision.function,
                    "action": decision.request.action,
                    "resource": decision.request.resource,
                    "context": dict(decision.request.context or {}),
                    "decision": decision.decision,
                }
                if self._audit is None:  # opened once, line-buffered: one write per call
                    self._audit = self.audit_log.open("a", buffering=1)
                self._audit.write(json.dumps(line) + "\n")

    def principal(self, function: str) -> str:
        if function.startswith("arn:aws:iam::"):  # a role SageMaker assumed for a job
            role_name = function.rsplit("/", 1)[-1]
            return f"arn:aws:sts::{self.place.account}:assumed-role/{role_name}/SageMaker"
        # Locally a function's role has no name of its own: it is named after the function.
        return f"arn:aws:sts::{self.place.account}:assumed-role/{function}/{function}"

    # -- botocore hooks ----------------------------------------------------------------
    def before_parameter_build(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        function = acting_function()
        if function is None:
            return  # not a handler's call: the stack's own set-up and tests
        service = model.service_model.service_name
        requests = requests_for(service, model.name, params, self.place, self.bucket_keys)
        denied = self.check(function, requests)
        if denied is not None:
            context[_DECISION_KEY] = denied

    def before_call(self, model: Any, context: dict, **_: Any) -> tuple[AWSResponse, dict] | None:
        denied: Decision | None = context.get(_DECISION_KEY)
        if denied is None:
            return None
        message = denial_message(self.principal(denied.function), denied.request, denied.decision)
        # S3 answers 403 AccessDenied; the JSON services answer 400 AccessDeniedException.
        s3 = model.service_model.service_name == "s3"
        code, status = ("AccessDenied", 403) if s3 else ("AccessDeniedException", 400)
        http = AWSResponse(url="", status_code=status, headers={}, raw=None)
        parsed = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
        }
        return http, parsed

    def bind(self, client: Any, principal: str) -> None:
        """Every call of `client` is made as `principal` (a role ARN the guard holds a
        policy for): SageMaker reading and writing S3 with a job's or model's role."""

        def check(params: dict, model: Any, context: dict, **_: Any) -> None:
            service = model.service_model.service_name
            requests = requests_for(service, model.name, params, self.place, self.bucket_keys)
            denied = self.check(principal, requests)
            if denied is not None:
                context[_DECISION_KEY] = denied

        client.meta.events.register("before-parameter-build", check)
        client.meta.events.register("before-call", self.before_call)

    def install(self) -> None:
        """From now on, every botocore session made in this process carries the guard.
        Sessions made earlier are unaffected, so install before the handlers load."""
        botocore.handlers.BUILTIN_HANDLERS.extend(
            [
                ("before-parameter-build", self.before_parameter_build),
                ("before-call", self.before_call),
            ]
        )

    def uninstall(self) -> None:
        for entry in list(botocore.handlers.BUILTIN_HANDLERS):
            if getattr(entry[1], "__self__", None) is self:
                botocore.handlers.BUILTIN_HANDLERS.remove(entry)
