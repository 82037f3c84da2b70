"""A process environment in which boto3 finds no AWS credentials anywhere, for the workstation tools' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# Every place botocore's default chain looks for credentials that an environment variable decides.
_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                         "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                         "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE")


def without_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials in variables, no shared files (both point at a missing file), no instance metadata."""
    for name in _CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def moto_credentials(monkeypatch: pytest.MonkeyPatch, region: str | None = None) -> None:
    """The stand-in credentials moto's mocked clients take (and, with ``region``, the default region)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    if region is not None:
        monkeypatch.setenv("AWS_DEFAULT_REGION", region)
