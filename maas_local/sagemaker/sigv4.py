"""Signature Version 4 verification for the emulator: only holders of the local stack's
credentials may call it, as only holders of an account's keys may call SageMaker.

The signature is recomputed with botocore's own signer (`botocore.auth.SigV4Auth`) over the
headers the client says it signed, at the time it says it signed them, and compared in
constant time. Refusals use the codes and messages AWS's JSON services answer with
(SageMaker API Reference, "Common Errors":
https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html; "Signature
Version 4 signing": https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html):
- no Authorization header: MissingAuthenticationTokenException, 403;
- a header that is not a complete SigV4 one: IncompleteSignatureException, 400;
- an access key the stack did not issue: UnrecognizedClientException, 403;
- a wrong signature, or one more than 15 minutes from the server's clock:
  InvalidSignatureException, 403.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# The local stack passes the credentials it issued at `up` through these variables.
ACCESS_KEY_ENV = "MAAS_EMULATOR_ACCESS_KEY_ID"
SECRET_KEY_ENV = "MAAS_EMULATOR_SECRET_ACCESS_KEY"  # noqa: S105 - a variable's name
MAX_SKEW = dt.timedelta(minutes=15)
SIGNING_NAME = "sagemaker"  # sagemaker and sagemaker-runtime both sign as "sagemaker"
_HEADER = re.compile(
    r"^AWS4-HMAC-SHA256 "
    r"Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*Signature=(?P<sig>[0-9a-f]{64})$"
)


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "message": self.message}).encode()


@dataclass(frozen=True)
class Verifier:
    access_key: str
    secret_key: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Verifier | None:
        key, secret = env.get(ACCESS_KEY_ENV), env.get(SECRET_KEY_ENV)
        return cls(key, secret) if key and secret else None

    def verify(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        now: dt.datetime | None = None,
    ) -> None:
        """Returns when the request is signed with our credentials; raises Refusal otherwise.
        `url` is the full URL the client addressed (scheme, Host header, path and query)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        authorization = lowered.get("authorization")
        if not authorization:
            raise Refusal(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        match = _HEADER.match(authorization.strip())
        stamp = lowered.get("x-amz-date", "")
        if not match or not re.fullmatch(r"\d{8}T\d{6}Z", stamp):
            raise Refusal(
                400,
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                "parameters and an X-Amz-Date header in the SigV4 form.",
            )
        if not hmac.compare_digest(match["key"], self.access_key):
            raise Refusal(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        now = now or dt.datetime.now(dt.UTC)
        if abs(now - signed_at) > MAX_SKEW:
            raise Refusal(
                403,
                "InvalidSignatureException",
                f"Signature expired: {stamp} is now earlier than "
                f"{(now - MAX_SKEW):%Y%m%dT%H%M%SZ} ({now:%Y%m%dT%H%M%SZ} - 15 min.)",
            )
        expected = self._signature(method, url, lowered, match, body, stamp)
        if match["date"] != stamp[:8] or not hmac.compare_digest(expected, match["sig"]):
            raise Refusal(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method. Consult the "
                "service documentation for details.",
            )

    def _signature(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        match: re.Match[str],
        body: bytes,
        stamp: str,
    ) -> str:
        signed = match["headers"].split(";")
        # The signer takes Host from the URL when the header is absent, as clients do.
        sent = [n for n in signed if n != "host" or n in headers]
        if "host" not in signed or any(name not in headers for name in sent):
            return ""  # nothing can match: the client signed headers it did not send
        request = AWSRequest(
            method=method, url=url, data=body, headers={n: headers[n] for n in sent}
        )
        request.context["timestamp"] = stamp
        credentials = Credentials(self.access_key, self.secret_key)
        signer = SigV4Auth(credentials, match["service"], match["region"])
        canonical = signer.canonical_request(request)
        return signer.signature(signer.string_to_sign(request, canonical), request)


def signed_get_headers(url: str, access_key: str, secret_key: str, region: str) -> dict[str, str]:
    """Headers that sign a GET of `url` as a SageMaker call, for the emulator's own
    `/_emulator/endpoints` (the stack's owner only) and the tests that read it."""
    request = AWSRequest(method="GET", url=url, data=b"")
    SigV4Auth(Credentials(access_key, secret_key), SIGNING_NAME, region).add_auth(request)
    return dict(request.headers.items())
