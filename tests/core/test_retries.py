"""core.retries: which AWS errors the job and handler code treats as worth another attempt."""

from __future__ import annotations

import pytest

from pipeline_code.core.retries import transient_response


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("Throttling", 400, True), ("ThrottlingException", 400, True), ("RequestLimitExceeded", 400, True),
    ("ServiceUnavailable", 503, True), ("SomethingNew", 502, True), ("TooManyRequestsException", 429, True),
    ("ValidationError", 400, False), ("AccessDenied", 403, False),
])
def test_one_rule_says_which_aws_errors_a_later_attempt_may_pass(code, status, expected):
    assert transient_response({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}) is expected
