"""Presigned S3 URLs for the local stack's S3: checked as S3 checks them, then passed on to moto.

A presigned URL authenticates with its query string instead of an Authorization header
(Signature Version 4 query-string auth, https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html):
X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and
X-Amz-Signature. The signature is recomputed here with botocore's own signer for query
strings (`S3SigV4QueryAuth`, the one `generate_presigned_url` uses) and compared in constant
time. Refusals answer as S3 does (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html):
- a parameter missing, or X-Amz-Expires past a week (604800 s):
  AuthorizationQueryParametersError, 400;
- a key the stack did not issue: InvalidAccessKeyId, 403;
- a signature that does not match: SignatureDoesNotMatch, 403;
- past X-Amz-Date + X-Amz-Expires: AccessDenied "Request has expired", 403.

moto itself checks only Authorization headers, so a request that passes is handed on signed
the usual way (`as_header_signed`), with the same key, and without the query's auth.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from botocore.auth import S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MAX_EXPIRES_S = 604_800  # seven days
_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
_CREDENTIAL = re.compile(
    r"^(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request$"
)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def is_presigned(query: str) -> bool:
    return any(k.lower() == "x-amz-signature" for k, _ in parse_qsl(query, True))


@dataclass(frozen=True)
class Checked:
    """A presigned request that passed: where it was signed, and its query without the auth."""

    region: str
    service: str
    query: str


@dataclass(frozen=True)
class Verifier:
    access_key: str
    secret_key: str

    def verify(
        self, method: str, url: str, headers: dict[str, str], now: dt.datetime | None = None
    ) -> Checked:
        """Returns when `url` (scheme, Host, path, query) is a valid presigned request signed
        with our key; raises Refusal otherwise. `headers` are lower-cased."""
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        given = {k: v for k, v in pairs if k in _PARAMS}
        if set(given) != set(_PARAMS) or given["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
            raise Refusal(
                400,
                "AuthorizationQueryParametersError",
                "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                "X-Amz-Expires parameters.",
            )
        credential = _CREDENTIAL.match(given["X-Amz-Credential"])
        stamp, expires = given["X-Amz-Date"], given["X-Amz-Expires"]
        if not credential or not re.fullmatch(r"\d{8}T\d{6}Z", stamp) or not expires.isdigit():
            raise Refusal(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Credential, X-Amz-Date or X-Amz-Expires is malformed.",
            )
        if int(expires) > MAX_EXPIRES_S:
            raise Refusal(
                400,
                "AuthorizationQueryParametersError",
                f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES_S}",
            )
        if not hmac.compare_digest(credential["key"], self.access_key):
            raise Refusal(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        rest = [(k, v) for k, v in pairs if k not in _PARAMS]
        expected = self._signature(method, parts, rest, headers, given, credential)
        if not hmac.compare_digest(expected, given["X-Amz-Signature"]):
            raise Refusal(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
            )
        signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        if (now or dt.datetime.now(dt.UTC)) > signed_at + dt.timedelta(seconds=int(expires)):
            raise Refusal(403, "AccessDenied", "Request has expired")
        return Checked(credential["region"], credential["service"], urlencode(rest))

    def _signature(self, method, parts, rest, headers, given, credential) -> str:
        signed = given["X-Amz-SignedHeaders"].split(";")
        if any(name != "host" and name not in headers for name in signed):
            return ""  # the client signed headers it did not send: nothing can match
        bare = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
        request = AWSRequest(
            method=method,
            url=bare,
            headers={n: headers[n] for n in signed if n != "host" and n in headers},
        )
        request.context["timestamp"] = given["X-Amz-Date"]
        signer = S3SigV4QueryAuth(
            Credentials(self.access_key, self.secret_key),
            credential["service"],
            credential["region"],
            expires=int(given["X-Amz-Expires"]),
        )
        signer.add_auth(request)
        ours = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
        return ours.get("X-Amz-Signature", "")

    def as_header_signed(
        self, method: str, url: str, headers: dict[str, str], checked: Checked
    ) -> dict[str, str]:
        """The headers that sign the same request the usual way (Authorization), for moto."""
        parts = urlsplit(url)
        bare = urlunsplit((parts.scheme, parts.netloc, parts.path, checked.query, ""))
        keep = {"x-amz-content-sha256": UNSIGNED_PAYLOAD}
        for name in ("content-type", "content-md5"):
            if name in headers:
                keep[name] = headers[name]
        request = AWSRequest(method=method, url=bare, headers=keep)
        SigV4Auth(
            Credentials(self.access_key, self.secret_key), checked.service, checked.region
        ).add_auth(request)
        return {k.lower(): v for k, v in request.headers.items()}
