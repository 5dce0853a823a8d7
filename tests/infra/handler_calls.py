"""A static scan of handlers/: which AWS actions each Lambda's code can call, and whether the
function's role in a synthesised template allows each of them.

From a function's entry module (`handlers.<group>.routes`) it follows, function by function, what
the code uses: functions of the same module, and of modules brought in by `from handlers
import x`, `from handlers.x import y` or `import handlers.x` (an import also runs that
module's top-level code). It collects the calls made on clients from `handlers.shared.aws`:
`aws.sagemaker().create_model(`, `aws.runtime().invoke_endpoint(`, `aws.dynamodb().put_item(`,
`aws.client("cloudwatch").put_metric_alarm(`, also through a local name (`client =
aws.client(...)`, then `client.x(`). botocore's own service models turn the method name into
the API operation, so `put_metric_alarm` is `PutMetricAlarm` exactly. Following functions
rather than whole modules keeps predict, which imports the registry's write helpers but never
calls them, from needing write permissions.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

from infra.server_layer import startup_handler
from maas_contract.routes import STREAMING_GROUPS, handler_entry, handler_module

# handlers.shared.aws factories -> botocore service name.
FACTORIES = {
    "sagemaker": "sagemaker",
    "runtime": "sagemaker-runtime",
    "dynamodb": "dynamodb",
    "s3": "s3",
}
# botocore service name -> IAM action prefix where the two differ.
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
# (InvokeEndpoint is `sagemaker:InvokeEndpoint`, though the client is sagemaker-runtime).
IAM_PREFIX = {"sagemaker-runtime": "sagemaker"}
# Library classes that call AWS with a client we hand them.
# Powertools idempotency, "IAM Permissions": GetItem, PutItem, UpdateItem and DeleteItem.
# https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/#iam-permissions
LIBRARY_CALLS = {
    "DynamoDBPersistenceLayer": (
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    )
}
# API operations that IAM authorises as other actions. A transaction is authorised item by
# item: "Permissions for Put, Update, Delete, and Get actions are governed by the permissions
# used for the underlying PutItem, UpdateItem, DeleteItem, and GetItem operations", plus
# dynamodb:ConditionCheckItem. Which an item needs is only known at run time: all four.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
AUTHORISED_AS = {
    "dynamodb:TransactWriteItems": (
        "dynamodb:ConditionCheckItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ),
    "dynamodb:TransactGetItems": ("dynamodb:GetItem",),
    # S3 operations are authorised as the actions in "Amazon S3 API operations and permissions":
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
    # HeadObject is s3:GetObject; CopyObject is s3:GetObject on the source and s3:PutObject on
    # the destination.
    "s3:HeadObject": ("s3:GetObject",),
    "s3:CopyObject": ("s3:GetObject", "s3:PutObject"),
    # "Before you can use this operation, your IAM permissions must allow the
    # sagemaker:InvokeEndpoint action"; the Service Authorization Reference also lists the
    # streaming action, so the role must allow both.
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointWithResponseStream.html
    "sagemaker:InvokeEndpointWithResponseStream": (
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointWithResponseStream",
    ),
}
# Actions AWS authorises alongside an API call (the call's "dependent actions").
# CreateModel and CreateTrainingJob pass the execution role: iam:PassRole.
# https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-pass-role
# RegisterScalableTarget creates the service-linked role on first use.
# https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html
# DeleteEndpoint deregisters an auto-scaled variant on the caller's authority, and fails
# without application-autoscaling:DeregisterScalableTarget.
# https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-delete-with-scaling.html
IMPLIED = {
    "sagemaker:CreateModel": ("iam:PassRole",),
    "sagemaker:DeleteEndpoint": ("application-autoscaling:DeregisterScalableTarget",),
    "sagemaker:CreateTrainingJob": ("iam:PassRole",),
    "application-autoscaling:RegisterScalableTarget": ("iam:CreateServiceLinkedRole",),
}


@cache
def _operations(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def iam_action(service: str, method: str) -> str | None:
    """`("cloudwatch", "put_metric_alarm")` -> `cloudwatch:PutMetricAlarm`; None when the
    method is not an API operation (get_paginator, can_paginate...)."""
    if method == "get_paginator":
        return None
    operation = _operations(service).get(method)
    if operation is None:
        return None
    return f"{IAM_PREFIX.get(service, service)}:{operation}"


MODULE_LEVEL = "<module>"
# The modules whose factories make the clients: the shared one, and the openai function's own
# (same factory names, its own timeouts).
AWS_MODULES = frozenset({"handlers.shared.aws", "handlers.openai.aws"})
# Modules whose DynamoDB calls reach the token usage table, not the registry: the scan marks
# their actions `<action>@usage` so the probe checks them against that table.
USAGE_TABLE_MODULES = frozenset({"handlers.openai.quotas"})
USAGE = "@usage"


def entry_module(group: str) -> str:
    """The module a function starts from: its routes, or a streaming group's ASGI app."""
    return f"handlers.{group}.app" if group in STREAMING_GROUPS else handler_module(group)


def function_handler(group: str) -> str:
    """The Handler setting that identifies the group's function in a template."""
    return startup_handler(group) if group in STREAMING_GROUPS else handler_entry(group)


@dataclass
class Unit:
    """A top-level function or class of a module, or the module's own top-level code."""

    actions: set[str] = field(default_factory=set)
    refs: set[tuple[str, str]] = field(default_factory=set)  # (module, unit) it uses
    imports: set[str] = field(default_factory=set)  # modules whose import it runs


class _Module:
    """One module's units, its import aliases and its names bound to clients."""

    def __init__(self, name: str, tree: ast.Module, package: str, modules: set[str]) -> None:
        self.name, self.package, self.modules = name, package, modules
        self.module_aliases: dict[str, str] = {}  # local name -> module
        self.symbol_aliases: dict[str, tuple[str, str]] = {}  # local name -> (module, name)
        self.client_names: dict[str, str] = {}  # local name -> botocore service
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self._alias(node)
            elif isinstance(node, ast.Assign):
                service = self._service_of(node.value)
                for target in node.targets:
                    if service and isinstance(target, ast.Name):
                        self.client_names[target.id] = service
        # Services whose client this module calls by a computed name, `getattr(client, op)`:
        # there, every string constant that names one of the service's operations counts as a
        # call of it (handlers.openai.endpoint picks invoke_endpoint or its streaming twin).
        self.dynamic_services: set[str] = set()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and len(node.args) >= 2
                and not isinstance(node.args[1], ast.Constant)
            ):
                service = self._service_of(node.args[0])
                if service:
                    self.dynamic_services.add(service)
        self.bodies: dict[str, list[ast.AST]] = {MODULE_LEVEL: []}
        self.unit_of: dict[str, str] = {}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                # Decorators run at import time; the body runs when called.
                self.bodies[MODULE_LEVEL] += node.decorator_list
                self.bodies[node.name] = (
                    [*node.body, node.args] if hasattr(node, "args") else [*node.body]
                )
                self.unit_of[node.name] = node.name
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                            self.unit_of.setdefault(item.name, node.name)
            else:
                self.bodies[MODULE_LEVEL].append(node)

    def _alias(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in self.modules:
                    self.module_aliases[alias.asname or alias.name] = alias.name
            return
        for alias in node.names:
            local = alias.asname or alias.name
            submodule = f"{node.module}.{alias.name}"
            if submodule in self.modules:
                self.module_aliases[local] = submodule
            elif node.module in self.modules:
                self.symbol_aliases[local] = (node.module, alias.name)

    def _imported(self, node: ast.Import | ast.ImportFrom) -> set[str]:
        if isinstance(node, ast.Import):
            return {a.name for a in node.names if a.name in self.modules}
        found = {f"{node.module}.{a.name}" for a in node.names} | {node.module or ""}
        return found & self.modules

    def _service_of(self, node: ast.AST) -> str | None:
        """The botocore service of a client expression, or None if it is not one."""
        if isinstance(node, ast.Name):
            return self.client_names.get(node.id)
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            return None
        owner, factory = node.func.value, node.func.attr
        is_aws = isinstance(owner, ast.Name) and self.module_aliases.get(owner.id) in AWS_MODULES
        if not is_aws:
            return None
        if factory == "client" and node.args and isinstance(node.args[0], ast.Constant):
            return str(node.args[0].value)
        return FACTORIES.get(factory)

    def unit(self, body: list[ast.AST]) -> Unit:
        unit = Unit()
        for node in (n for top in body for n in ast.walk(top)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                unit.imports |= self._imported(node)
            elif isinstance(node, ast.Call):
                self._call(node, unit)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                for service in self.dynamic_services:
                    action = iam_action(service, node.value)
                    if action:
                        unit.actions.add(action)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id in self.unit_of:
                    unit.refs.add((self.name, self.unit_of[node.id]))
                elif node.id in self.symbol_aliases:
                    unit.refs.add(self.symbol_aliases[node.id])
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in self.module_aliases:
                    unit.refs.add((self.module_aliases[node.value.id], node.attr))
        return unit

    def _call(self, node: ast.Call, unit: Unit) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            service = self._service_of(func.value)
            action = iam_action(service, func.attr) if service else None
            if action and service == "dynamodb" and self.name in USAGE_TABLE_MODULES:
                action += USAGE
            if action:
                unit.actions.add(action)
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        unit.actions.update(LIBRARY_CALLS.get(name, ()))


def scan_package(root: Path, package: str = "handlers") -> dict[str, dict[str, Unit]]:
    """Every unit of every module of the package under `root` (the folder with `package/`)."""
    files = {
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (root / package).rglob("*.py")
    }
    scans = {}
    for name, path in files.items():
        module = _Module(name, ast.parse(path.read_text(), str(path)), package, set(files))
        scans[name] = {unit: module.unit(body) for unit, body in module.bodies.items()}
    return scans


def actions_from(entry: str, scans: dict[str, dict[str, Unit]]) -> set[str]:
    """The actions reachable from the entry module: its top-level code and every function in
    it (routes are reached through the resolver), then whatever those use, transitively."""
    todo = [(entry, unit) for unit in scans.get(entry, {})]
    seen: set[tuple[str, str]] = set()
    actions: set[str] = set()
    while todo:
        module, name = key = todo.pop()
        unit = scans.get(module, {}).get(name)
        if key in seen or unit is None:
            continue
        seen.add(key)
        actions |= unit.actions
        # Using a module's function also means that module was imported.
        todo += [*unit.refs, *((m, MODULE_LEVEL) for m, _ in unit.refs)]
        todo += [(m, MODULE_LEVEL) for m in unit.imports]
    for action in list(actions):
        actions.update(IMPLIED.get(action, ()))
        if action in AUTHORISED_AS:
            actions.discard(action)
            actions.update(AUTHORISED_AS[action])
    return actions


# --- the template side -----------------------------------------------------------------------


def render(value: Any) -> str:
    """A template value as one string: Refs and GetAtts become `<Name>` / `<Name.Attr>`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", text)
    return json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def function_statements(template: dict, group: str) -> list[dict]:
    """The identity-policy statements of the role of the group's function."""
    resources = template["Resources"]
    (function,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == function_handler(group)
    ]
    role_id = function["Role"]["Fn::GetAtt"][0]
    statements = []
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in props.get("Roles", []):
            statements += props["PolicyDocument"]["Statement"]
    for policy in resources[role_id]["Properties"].get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    return statements


@dataclass(frozen=True)
class Probe:
    """Stands for the resources the handlers reach: named like this stage's resources."""

    prefix: str
    region: str
    table_id: str
    account: str = "<AWS::AccountId>"
    usage_table_id: str = "TokenUsageTable"
    partition: str = "<AWS::Partition>"

    def arn(self, service: str, path: str, region: str | None = None) -> str:
        where = self.region if region is None else region
        return f"arn:{self.partition}:{service}:{where}:{self.account}:{path}"

    def resource_for(self, action: str) -> str | None:
        """A resource the action is used on, or None where only the action is checked."""
        if action.endswith(USAGE):
            return f"<{self.usage_table_id}.Arn>"
        service, name = action.split(":")
        if service == "sagemaker" and name != "AddTags":
            noun = re.sub(r"^(Create|Describe|Update|Delete|Stop|Invoke|List)", "", name)
            noun = noun.removesuffix("WithResponseStream")  # still an endpoint
            kind = re.sub(r"(?<!^)(?=[A-Z])", "-", noun).lower()
            return self.arn("sagemaker", f"{kind}/{self.prefix}-probe")
        if service == "dynamodb":
            return f"<{self.table_id}.Arn>"
        if service == "cloudwatch" and "Alarm" in name:
            return self.arn("cloudwatch", f"alarm:{self.prefix}-probe-5xx")
        if action in ("application-autoscaling:DescribeScalableTargets",):
            return "*"
        if service == "application-autoscaling":
            return self.arn("application-autoscaling", "scalable-target/0123abcd")
        return None


def allows(statements: list[dict], action: str, resource: str | None) -> bool:
    """Whether an Allow statement matches the action and (if given) the resource. Conditions
    are not evaluated here; the rehearsal tests pin the ones that matter."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        patterns = [str(a).lower() for a in _as_list(statement.get("Action", []))]
        if not any(fnmatch.fnmatchcase(action.lower(), p) for p in patterns):
            continue
        if resource is None:
            return True
        granted = [render(r) for r in _as_list(statement.get("Resource", []))]
        if resource == "*":
            if "*" in granted:
                return True
        elif any(fnmatch.fnmatchcase(resource, g) for g in granted):
            return True
    return False


def missing_permissions(
    template: dict, groups: list[str], scans: dict[str, dict[str, Unit]], probe: Probe
) -> dict[str, list[str]]:
    """Per function: the actions its code calls that its role does not allow."""
    missing = {}
    for group in groups:
        statements = function_statements(template, group)
        lacking = sorted(
            a
            for a in actions_from(entry_module(group), scans)
            if not allows(statements, a.removesuffix(USAGE), probe.resource_for(a))
        )
        if lacking:
            missing[group] = lacking
    return missing
