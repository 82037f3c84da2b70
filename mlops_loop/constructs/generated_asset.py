"""Assets of what synth generates: a JSON document, a tarball.

Their sources live in the process's staging directory (``mlops_loop.packaging``), removed at exit once
the CDK has copied each asset into the cloud assembly (kept by ``app_builder.new_app`` when staging is off).
"""

from __future__ import annotations

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ..packaging import staged_file


def generated_asset(scope: Construct, construct_id: str, file_name: str, data: bytes | str) -> s3_assets.Asset:
    """An S3 asset of ``data`` (text as UTF-8) in a file named ``file_name``."""
    return s3_assets.Asset(scope, construct_id, path=str(staged_file(file_name, data)))
