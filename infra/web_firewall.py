"""A regional WAFv2 web ACL in front of the API: AWS managed rule groups plus a per-IP rate
limit, with its requests logged to CloudWatch."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as waf
from constructs import Construct

MANAGED_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
# Predict bodies (batches of instances, npy arrays) routinely exceed the common rule set's
# 8 KB body limit; API Gateway's own 10 MB limit and the handlers' validation still apply.
COUNT_ONLY = {"AWSManagedRulesCommonRuleSet": ["SizeRestrictions_BODY"]}


def _visibility(name: str) -> waf.CfnWebACL.VisibilityConfigProperty:
    return waf.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


class WebFirewall(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_prefix: str,
        protected_arn: str,
        requests_per_5min_per_ip: int,
        log_retention: logs.RetentionDays,
        encryption_key: kms.IKey,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        rules = [self._managed(name, priority) for priority, name in enumerate(MANAGED_GROUPS)]
        rules.append(
            waf.CfnWebACL.RuleProperty(
                name="RatePerIp",
                priority=len(rules),
                action=waf.CfnWebACL.RuleActionProperty(block={}),
                statement=waf.CfnWebACL.StatementProperty(
                    rate_based_statement=waf.CfnWebACL.RateBasedStatementProperty(
                        limit=requests_per_5min_per_ip, aggregate_key_type="IP"
                    )
                ),
                visibility_config=_visibility("RatePerIp"),
            )
        )
        self.web_acl = waf.CfnWebACL(
            self,
            "Acl",
            scope="REGIONAL",
            default_action=waf.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules,
            visibility_config=_visibility(f"{resource_prefix}-api"),
        )
        waf.CfnWebACLAssociation(
            self, "Association", resource_arn=protected_arn, web_acl_arn=self.web_acl.attr_arn
        )
        # WAF only delivers to log groups whose name starts with aws-waf-logs-.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"aws-waf-logs-{resource_prefix}",
            retention=log_retention,
            encryption_key=encryption_key,
            removal_policy=removal_policy,
        )
        waf.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[self.log_group.log_group_arn],
        )

    @staticmethod
    def _managed(name: str, priority: int) -> waf.CfnWebACL.RuleProperty:
        overrides = [
            waf.CfnWebACL.RuleActionOverrideProperty(
                name=rule, action_to_use=waf.CfnWebACL.RuleActionProperty(count={})
            )
            for rule in COUNT_ONLY.get(name, [])
        ]
        return waf.CfnWebACL.RuleProperty(
            name=name,
            priority=priority,
            override_action=waf.CfnWebACL.OverrideActionProperty(none={}),
            statement=waf.CfnWebACL.StatementProperty(
                managed_rule_group_statement=waf.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name=name, rule_action_overrides=overrides or None
                )
            ),
            visibility_config=_visibility(name),
        )
