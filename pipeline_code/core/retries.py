"""Which AWS errors a later attempt may get past, for the job and handler code that retries or re-raises."""

from __future__ import annotations

from typing import Any, Mapping

# Error codes of an AWS API call that a later attempt may get past: throttling, a request that timed out, the
# service's own failure (botocore's standard retry mode treats these, and every HTTP 5xx, as retryable).
TRANSIENT_ERROR_CODES = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestTimeout", "RequestTimeoutException", "InternalFailure", "InternalError", "ServiceUnavailable",
})


def transient_response(response: Mapping[str, Any]) -> bool:
    """Whether the error ``response`` of a botocore ``ClientError`` may pass on a later attempt
    (:data:`TRANSIENT_ERROR_CODES`, HTTP 429 or 5xx); anything else fails the same way again."""
    code = (response.get("Error") or {}).get("Code", "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    return code in TRANSIENT_ERROR_CODES or status == 429 or status >= 500
