"""The platform's KMS key and its S3 buckets: data, artifacts, data capture and access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import skip_checkov
from maas_contract import artifacts


class ArtifactStore(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        capture_retention: Duration,
        noncurrent_retention_days: int = 30,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description="maas: buckets, registry, logs, SageMaker volumes and outputs",
            removal_policy=removal_policy,
        )
        # S3 server access logging can only deliver to SSE-S3 buckets, never SSE-KMS.
        self.access_logs = self._bucket("AccessLogs", removal_policy, kms_key=None)
        self.access_logs.add_lifecycle_rule(expiration=Duration.days(365))
        skip_checkov(
            self.access_logs,
            "CKV_AWS_18",
            "This is the access-log bucket; logging it into itself would loop.",
        )
        self.data = self._bucket("Data", removal_policy, kms_key=self.key)
        self.artifacts = self._bucket("Artifacts", removal_policy, kms_key=self.key)
        self.capture = self._bucket("Capture", removal_policy, kms_key=self.key)
        self.capture.add_lifecycle_rule(expiration=capture_retention)
        # Registration's staging copies (maas_contract.artifacts) are deleted as soon as their
        # digest is known; one left by a timed-out call goes after a day.
        self.artifacts.add_lifecycle_rule(
            prefix=artifacts.STAGING_PREFIX, expiration=Duration.days(1)
        )
        # Uploads through presigned URLs are pinned when registered; the rest go after a week.
        self.artifacts.add_lifecycle_rule(
            prefix=artifacts.UPLOADS_PREFIX, expiration=Duration.days(artifacts.UPLOADS_KEPT_DAYS)
        )
        for bucket in (self.data, self.artifacts, self.capture, self.access_logs):
            bucket.add_lifecycle_rule(
                abort_incomplete_multipart_upload_after=Duration.days(7),
                noncurrent_version_expiration=Duration.days(noncurrent_retention_days),
            )

    def _bucket(
        self, name: str, removal_policy: RemovalPolicy, *, kms_key: kms.IKey | None
    ) -> s3.Bucket:
        is_log_bucket = kms_key is None
        return s3.Bucket(
            self,
            name,
            encryption=s3.BucketEncryption.S3_MANAGED if is_log_bucket else s3.BucketEncryption.KMS,
            encryption_key=kms_key,
            bucket_key_enabled=not is_log_bucket,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=None if is_log_bucket else self.access_logs,
            server_access_logs_prefix=None if is_log_bucket else f"{name.lower()}/",
            removal_policy=removal_policy,
            auto_delete_objects=False,
        )
