"""How many attempts the code's AWS clients make: what their comments and docs say.

botocore reads ``retries={"max_attempts": n}`` as *n retries after the first attempt* (n + 1 calls), while
``total_max_attempts`` counts every attempt. Each client that must not repeat a call (an InvokeEndpoint retried scores
the request twice) or that a time budget bounds said ``max_attempts`` and made one attempt more than meant.
"""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest

from pipeline_code.handlers import deploy_on_approval, parity_check, score_by_id

REPO_ROOT = Path(__file__).resolve().parents[1]
# A retries dict written in the code that says max_attempts (whatever else it says).
_RETRIES_WITH_MAX_ATTEMPTS = re.compile(r"""retries\s*=\s*\{[^}]*["']max_attempts["']""")


def test_no_client_config_counts_its_attempts_with_max_attempts():
    """GIVEN the code that runs in AWS, the tools and the infrastructure WHEN their botocore configs are read THEN none
    says ``max_attempts`` (botocore's retries, not attempts): each says ``total_max_attempts``."""
    found = [f"{path.relative_to(REPO_ROOT)}:{text[:match.start()].count(chr(10)) + 1}"
             for package in ("pipeline_code", "mlops_cli", "mlops_loop")
             for path in sorted((REPO_ROOT / package).rglob("*.py"))
             for text in [path.read_text()]
             for match in _RETRIES_WITH_MAX_ATTEMPTS.finditer(text)]
    assert found == []


def test_the_pattern_finds_a_config_that_says_max_attempts():
    """The check above is not blind: it finds the form the clients had."""
    assert _RETRIES_WITH_MAX_ATTEMPTS.search('Config(retries={"mode": "standard", "max_attempts": 1}, read_timeout=62)')
    assert not _RETRIES_WITH_MAX_ATTEMPTS.search('Config(retries={"mode": "standard", "total_max_attempts": 1})')


@pytest.mark.parametrize("service, config, attempts", [
    ("sagemaker-featurestore-runtime", score_by_id._CONFIGS["sagemaker-featurestore-runtime"], 5),
    # One attempt per call: a hanging new fleet must not use the parity check's time up.
    ("sagemaker-runtime", parity_check.RUNTIME_CONFIG, 1),
    # An MME loads a model on its first request: one retry.
    ("sagemaker-runtime", deploy_on_approval.RUNTIME_CONFIG, 2),
], ids=["score-by-id-store", "parity-check", "deploy-smoke-test"])
def test_each_client_makes_the_attempts_its_purpose_allows(service, config, attempts):
    """GIVEN a client built with the handler's config WHEN botocore reads it THEN it makes exactly that many attempts
    (before, each said max_attempts and made one more). The score-by-id front's endpoint client: its own test file."""
    client = boto3.client(service, region_name="eu-west-1", config=config)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": attempts}
