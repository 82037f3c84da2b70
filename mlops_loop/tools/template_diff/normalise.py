"""What makes two templates comparable: volatile stamps and hashes normalised, embedded JSON expanded."""

from __future__ import annotations

import json
import re
from typing import Any

from .model import JSON_SEGMENT, MISSING


# Lineage stamps: the git commit (``-dirty`` for a modified working tree) is written into the
# training pipeline definitions. It differs between ANY two refs by construction, so it carries no
# review information (the pull request is the commit) and is dropped from the comparison entirely.
_COMMIT = re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?:-dirty)?(?![0-9a-f])")
# Asset hashes (64 hex: S3 keys of job code, Lambda code, model specs) and the 16-hex code digest of
# the training checkpoint prefix: the same patterns the snapshot tests normalise.
ASSET_HASH = re.compile(r"[0-9a-f]{64}")
_CODE_DIGEST = re.compile(r"(?<![0-9a-f])[0-9a-f]{16}(?![0-9a-f])")


def map_strings(value: Any, fn) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    return value


def strip_commit_stamps(value: Any) -> Any:
    """``value`` with every git commit stamp replaced by ``<git-commit>`` (see _COMMIT)."""
    return map_strings(value, lambda s: _COMMIT.sub("<git-commit>", s))


def normalise_assets(value: Any) -> Any:
    """``value`` with asset hashes and code digests replaced by placeholders (as the snapshot tests do)."""
    return map_strings(value, lambda s: _CODE_DIGEST.sub("<code-digest>", ASSET_HASH.sub("<asset-hash>", s)))


def _token(value: Any) -> str:
    """A quote-free placeholder for an intrinsic inside a joined string, so the result can still parse as JSON."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return "${" + str(arg) + "}"
        if fn == "Fn::GetAtt" and isinstance(arg, list):
            return "${" + ".".join(map(str, arg)) + "}"
    return "${" + json.dumps(value, sort_keys=True, separators=(",", ":")).replace('"', "'") + "}"


def _parse_json_document(text: str) -> Any:
    stripped = text.strip()
    if len(stripped) < 2 or stripped[0] not in "{[":
        return MISSING
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return MISSING
    return parsed if isinstance(parsed, (dict, list)) else MISSING


def expand_json_documents(value: Any) -> Any:
    """Replace embedded JSON documents by their parsed form under a ``<json>`` key, recursively.

    SageMaker pipeline definitions (and other JSON-in-a-string properties) are one long string, or an
    ``Fn::Join`` of string pieces and intrinsics. Diffing them structurally turns "the definition
    changed" into "Parameters[Name=TrainingInstanceType].DefaultValue: ml.m5.xlarge -> ml.m5.2xlarge".
    """
    if isinstance(value, str):
        parsed = _parse_json_document(value)
        return value if parsed is MISSING else {JSON_SEGMENT: expand_json_documents(parsed)}
    if isinstance(value, dict):
        join = value.get("Fn::Join") if len(value) == 1 else None
        if isinstance(join, list) and len(join) == 2 and join[0] == "" and isinstance(join[1], list):
            text = "".join(p if isinstance(p, str) else _token(p) for p in join[1])
            parsed = _parse_json_document(text)
            if parsed is not MISSING:
                return {JSON_SEGMENT: expand_json_documents(parsed)}
        return {k: expand_json_documents(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_json_documents(v) for v in value]
    return value
