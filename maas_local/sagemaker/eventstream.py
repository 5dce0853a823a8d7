"""AWS event-stream framing (`application/vnd.amazon.eventstream`) for
InvokeEndpointWithResponseStream's `ResponseStream`.

Each message is: a 12-byte prelude (total length, headers length, both big-endian uint32, and
the CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything before it.
A header is a 1-byte name length, the name, a 1-byte value type (7: string), a 2-byte value
length and the value. Events carry `:message-type event`, `:event-type <member>` and
`:content-type`; errors carry `:message-type exception` and `:exception-type <member>` with a
JSON payload of the error shape's members.

Sources:
https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html (framing)
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointWithResponseStream.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_ResponseStream.html
(botocore's own parser, botocore.eventstream, is what the tests read these messages back with;
it has no encoder, hence this one.)
"""

from __future__ import annotations

import json
import struct
import zlib

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One framed message."""
    encoded = _headers(headers)
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack("!I", zlib.crc32(body))


def payload_part(data: bytes) -> bytes:
    """A `PayloadPart` event: its `Bytes` member is the event payload, as is."""
    return message(
        {
            ":event-type": "PayloadPart",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        data,
    )


def model_stream_error(message_text: str, error_code: str) -> bytes:
    """`ModelStreamError`; ErrorCode is ModelInvocationTimeExceeded or StreamBroken."""
    return _exception("ModelStreamError", {"Message": message_text, "ErrorCode": error_code})


def internal_stream_failure(message_text: str) -> bytes:
    return _exception("InternalStreamFailure", {"Message": message_text})


def _exception(kind: str, members: dict[str, str]) -> bytes:
    return message(
        {
            ":exception-type": kind,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps(members).encode(),
    )
