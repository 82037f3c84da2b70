"""CDK tokens in a spec: replaced by placeholders the SDK accepts, put back verbatim in the JSON."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any, Dict, List, Sequence, Tuple

if TYPE_CHECKING:  # the spec validates tokens with this module: no import cycle at run time
    from .spec import PipelineSpec

CDK_TOKEN = re.compile(r"\$\{Token\[[^\]]*\]\}")
_PLACEHOLDER_MARK = "mlopsloop-cdktoken"

# Fields that may hold CDK tokens (resources created elsewhere in the app), and the shape of
# the placeholder the SDK sees when the *whole* value is a token.
TOKEN_FIELDS = (
    "account",
    "role_arn",
    "kms_key_arn",
    "artifacts_bucket",
    "model_package_group_name",
    "feature_data_s3_uri",
    "labels_s3_uri",
    "frozen_test_s3_uri",
    "code_entry_s3_uri",
    "code_library_s3_uri",
    "model_spec_s3_uri",
)


def has_token(value: Any) -> bool:
    """True for a value holding a CDK token (or the placeholder standing in for one)."""
    return isinstance(value, str) and (bool(CDK_TOKEN.search(value)) or _PLACEHOLDER_MARK in value)



# Literal fields that only pass through into the definition as text (descriptions, metadata):
# generated with a placeholder too, so one generated definition serves every commit (sdk_cache).
PASS_THROUGH_FIELDS = ("code_version", "code_asset_hash", "code_sha256", "code_entry_sha256")


def with_placeholders(spec: PipelineSpec) -> Tuple[PipelineSpec, List[Tuple[str, str]]]:
    """``spec`` with every CDK token replaced by an SDK-safe placeholder, and the reverse map.

    A field that is entirely a token gets a placeholder of the field's shape (an ARN-shaped
    role, a bucket-shaped bucket ...); a token inside a larger value (``s3://${Token}/x``)
    gets a neutral marker, and so does each of :data:`PASS_THROUGH_FIELDS`. The map is ordered
    longest placeholder first.
    """
    tokens: Dict[str, str] = {}
    replacements: Dict[str, str] = {}

    def marker(token: str) -> str:
        if token not in tokens:
            tokens[token] = f"{_PLACEHOLDER_MARK}{len(tokens):04d}z"
        return tokens[token]

    changes: Dict[str, str] = {}
    for name in TOKEN_FIELDS:
        value = getattr(spec, name)
        if not has_token(value):
            continue
        if CDK_TOKEN.fullmatch(value):
            mark = marker(value)
            shaped = {
                "account": "000000000000",
                "role_arn": f"arn:aws:iam::000000000000:role/{mark}",
                "kms_key_arn": f"arn:aws:kms:{spec.region}:000000000000:key/{mark}",
                "artifacts_bucket": mark,
                "model_package_group_name": mark,
            }.get(name, f"s3://{mark}")
            if name != "account":  # the account is only validated, never emitted
                replacements[shaped] = value
            changes[name] = shaped
        else:
            changes[name] = CDK_TOKEN.sub(lambda m: marker(m.group(0)), value)
    for name in PASS_THROUGH_FIELDS:
        changes[name] = marker(getattr(spec, name))
    for token, mark in tokens.items():
        replacements.setdefault(mark, token)
    ordered = sorted(replacements.items(), key=lambda kv: (-len(kv[0]), kv[0]))
    return dataclasses.replace(spec, **changes), ordered


def restore_tokens(definition: str, replacements: Sequence[Tuple[str, str]]) -> str:
    for placeholder, token in replacements:
        definition = definition.replace(placeholder, token)
    if _PLACEHOLDER_MARK in definition:
        raise RuntimeError("a CDK token placeholder was altered by the SageMaker SDK and cannot be restored")
    return definition
