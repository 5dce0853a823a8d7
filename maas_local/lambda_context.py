"""Lambda's context object: the attributes that Powertools and the handlers read.

The local gateway hands one to every handler call, and the handler tests use the same class,
so there is one stand-in for Lambda's context in the project.
"""

from __future__ import annotations

import time
import uuid

from maas_local.config import REGION
from maas_local.proxy_event import ACCOUNT_ID


class LambdaContext:
    def __init__(
        self,
        function_name: str,
        request_id: str | None = None,
        timeout_s: float = 30.0,
        *,
        memory_limit_in_mb: int = 512,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
