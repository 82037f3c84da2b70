"""Assets of what synth generates: a JSON document, a tarball, the handlers' code root.

Their sources live in the process's staging directory (``mlops_loop.packaging``), removed at exit once
the CDK has copied each asset into the cloud assembly.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ..packaging import keep_staged_files, staged_file

# aws-cdk-lib's cx-api DISABLE_ASSET_STAGING_CONTEXT (not exported to Python): set by `cdk synth
# --no-staging` for the SAM CLI, which then reads each asset from its source path.
DISABLE_ASSET_STAGING = "aws:cdk:disable-asset-staging"


def generated_asset(scope: Construct, construct_id: str, file_name: str, data: bytes | str) -> s3_assets.Asset:
    """An S3 asset of ``data`` (text as UTF-8) in a file named ``file_name``."""
    return s3_assets.Asset(scope, construct_id, path=generated_source(scope, staged_file(file_name, data)))


def generated_source(scope: Construct, path: Path) -> str:
    """``path``, a file or directory in the staging directory, as the source of an asset in ``scope``.

    In an app that stages no assets the assembly points at the source itself, so the staging directory
    is then kept when the process exits.
    """
    if scope.node.try_get_context(DISABLE_ASSET_STAGING):
        keep_staged_files()
    return str(path)
