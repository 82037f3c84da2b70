"""Whether what a version was registered with still holds: its model artefact and inference container, the frozen
test set it was judged on and the splits it was trained with, each against the digest recorded at registration."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core import integrity
from pipeline_code.core.contract import (
    ARCHIVE_SHA256_PROPERTY,
    CONTAINER_SHA256_PROPERTY,
    FROZEN_TEST_PROPERTY,
    MANIFEST_FILE,
    MODEL_SHA256_PROPERTY,
    SPLIT_PROPERTIES,
    SPLIT_SHA256_PROPERTIES,
    TEST_FILE,
    TEST_SET_SHA256_PROPERTY,
)

from .aws import Clients, CLOUDTRAIL_HISTORY_DAYS, Gaps, Names, as_datetime, attempt, list_pages, read_json, s3_parts


# The digests without which the deploy handler refuses a version (a version sealed before container digests were
# recorded still serves, its container unverified).
_DIGESTS = (ARCHIVE_SHA256_PROPERTY, MODEL_SHA256_PROPERTY)


def gather_integrity(clients: Clients, package: Mapping[str, Any], metadata: Mapping[str, Any], model_data: List[str],
                     history: Optional[List[Dict[str, Any]]], gaps: Gaps, now: dt.datetime) -> Dict[str, Any]:
    """The digests recorded at registration, whether the artefact in S3 still holds those bytes (``verified``: True /
    False, or None when it could not be checked - the reason is a gap) and whether the inference container is the one
    registered (``container_verified``, alike). ``history`` is the version's UpdateModelPackage calls (None when
    CloudTrail could not be read): it tells a digest removed after registration from one never recorded."""
    out: Dict[str, Any] = {
        "sha256": metadata.get(ARCHIVE_SHA256_PROPERTY),
        "model_sha256": metadata.get(MODEL_SHA256_PROPERTY),
        "container_sha256": metadata.get(CONTAINER_SHA256_PROPERTY),
        "verified": None,
        "container_verified": None,
    }
    absent = [name for name in _DIGESTS if not metadata.get(name)]
    if absent:
        gaps.add(f"integrity: {', '.join(absent)} {'is' if len(absent) == 1 else 'are'} absent "
                 f"({_why_absent(absent, package, model_data, history, now)}); the deploy handler refuses to deploy the version")
    if not out["container_sha256"] and not absent:
        # Sealed, so the handler deploys it: its container is unverified. (Unsealed, it is refused anyway.)
        why = _removed_by([CONTAINER_SHA256_PROPERTY], history) or (
            "registered before container digests were recorded, or removed without a record in CloudTrail's history")
        gaps.add(f"integrity: {CONTAINER_SHA256_PROPERTY} is absent ({why}); the version's inference container (image and "
                 "environment) is not verified, and the deploy handler deploys it unverified")
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    if out["container_sha256"]:
        if len(containers) != 1:
            out["container_verified"] = False
            gaps.add(f"integrity: the version has {len(containers)} inference containers, the pipeline registers one: its "
                     "inference specification was changed after registration")
        else:
            now_digest = integrity.container_digest(containers[0].get("Image") or "", containers[0].get("Environment"))
            out["container_verified"] = now_digest == out["container_sha256"]
            if not out["container_verified"]:
                gaps.add(f"integrity: the inference container (image {containers[0].get('Image')}) is not the one registered: "
                         f"its image and environment hash to {now_digest}, {out['container_sha256']} was recorded at "
                         f"registration ({CONTAINER_SHA256_PROPERTY})")
    if not out["sha256"] or not model_data:
        return out
    try:
        bucket, key = s3_parts(model_data[0])
    except ValueError as exc:
        gaps.add(f"integrity: {exc}")
        return out
    actual = attempt(gaps, f"artefact {model_data[0]}", lambda: integrity.stored_sha256(clients.s3, bucket, key))
    if actual is not None:
        out["verified"] = actual == out["sha256"]
        if not out["verified"]:
            gaps.add(f"integrity: {model_data[0]} has sha256 {actual}, not the {out['sha256']} recorded at registration")
    return out


def _removed_by(names: Sequence[str], history: Optional[List[Dict[str, Any]]]) -> Optional[str]:
    """"removed after registration: by <who> at <when>, ..." for the successful calls on record that removed any of
    ``names``; None when none did."""
    removals = [h for h in history or [] if not h["error"] and set(names) & set(h["removed"])]
    if not removals:
        return None
    return "removed after registration: " + ", ".join(f"by {h['identity']} at {h['time']}" for h in removals)


def sealed_location(model_data: Sequence[str]) -> Optional[Tuple[str, str]]:
    """(bucket, key) of the first artefact at a sealed key (only a sealed registration uses one); None without one."""
    for uri in model_data:
        try:
            bucket, key = s3_parts(uri)
        except ValueError:
            continue
        if integrity.digest_of_sealed_key(key):
            return bucket, key
    return None


def _why_absent(names: Sequence[str], package: Mapping[str, Any], model_data: List[str],
                history: Optional[List[Dict[str, Any]]], now: dt.datetime) -> str:
    """Why registered digests are missing: removed after registration, never recorded, or either when nothing tells."""
    removed = _removed_by(names, history)
    if removed:
        return removed
    if sealed_location(model_data[:1]):
        return ("removed after registration: the artefact sits at a sealed key "
                f"(.../{integrity.SEALED_SEGMENT}/<sha256>/{integrity.MODEL_ARCHIVE}), which only a sealed registration uses")
    created = as_datetime(package.get("CreationTime"))
    if history is not None and created is not None and created >= now - dt.timedelta(days=CLOUDTRAIL_HISTORY_DAYS):
        return "registered before artefacts were sealed: CloudTrail shows no update of the version removing them"
    return (f"removed, or registered before artefacts were sealed: the version is older than CloudTrail's "
            f"{CLOUDTRAIL_HISTORY_DAYS}-day event history" if history is not None else
            "removed, or registered before artefacts were sealed: CloudTrail could not be read to tell")


def gather_test_set(clients: Clients, metadata: Mapping[str, Any], report: Optional[Mapping[str, Any]],
                    verified: Optional[bool], gaps: Gaps) -> Dict[str, Any]:
    """Whether the frozen test set now under the package's ``FROZEN_TEST_PROPERTY`` prefix is the one the version was judged
    on: the sha256 of its data file now against the one recorded at registration (``TEST_SET_SHA256_PROPERTY``;
    the evaluation report's, when ``verified``, must agree). Another set now is information (``earlier``, no gap) when
    Prepare re-froze it since (:func:`_earlier_test_set`), a gap when the current manifest does not name the recorded
    set among those it replaced."""
    uri = metadata.get(FROZEN_TEST_PROPERTY)
    recorded = metadata.get(TEST_SET_SHA256_PROPERTY)
    out: Dict[str, Any] = {"uri": uri, "recorded": recorded, "now": None, "same": None, "earlier": None}
    judged = ((report or {}).get("test_set") or {}).get("sha256")
    if not recorded:
        gaps.add(f"frozen test set: not recorded: the version records no digest of the test set it was judged on "
                 f"(registered before {TEST_SET_SHA256_PROPERTY} was), so whether {uri or 'its prefix'} still "
                 "holds it is not known")
        return out
    if verified and judged and judged != recorded:
        gaps.add(f"frozen test set: the package's {TEST_SET_SHA256_PROPERTY} {recorded} is not the "
                 f"{judged} of the verified evaluation report")
    if not uri:
        gaps.add(f"frozen test set: not recorded in the package's CustomerMetadataProperties ({FROZEN_TEST_PROPERTY})")
        return out
    prefix = uri if uri.endswith("/") else uri + "/"
    manifest = attempt(gaps, f"frozen test set {prefix}{MANIFEST_FILE}", lambda: read_json(clients, prefix + MANIFEST_FILE))
    if manifest is None:
        return out
    data = prefix + str(manifest.get("file") or TEST_FILE)
    try:
        bucket, key = s3_parts(data)
    except ValueError as exc:
        gaps.add(f"frozen test set: {exc}")
        return out
    out["now"] = attempt(gaps, f"frozen test set {data}", lambda: integrity.stored_sha256(clients.s3, bucket, key))
    if out["now"] is not None:
        out["same"] = out["now"] == recorded
        if not out["same"]:
            out["earlier"] = _earlier_test_set(manifest, recorded, prefix + MANIFEST_FILE)
        if not out["same"] and out["earlier"] is None:
            gaps.add(f"frozen test set: {data} now has sha256 {out['now']}, not the {recorded} this version was judged "
                     "on: the set was replaced since")
    return out


def _earlier_test_set(manifest: Mapping[str, Any], recorded: str, manifest_uri: str) -> Optional[Dict[str, Any]]:
    """The set a version was judged on when Prepare has re-frozen it since (None when ``recorded`` is not one the
    current manifest says it replaced): ``{"version", "replaced_at", "reason", "text"}``.

    Prepare's re-freeze (``--test-set-refreeze when_stale``, the default) is routine, not a gap: it writes the new set's
    manifest with ``replaced_test_sets`` (every set replaced, latest first) and ``refrozen`` (why the latest went), and
    the replaced bytes stay old object versions under the same keys (the bucket's KeepEveryVersion). A set replaced
    by hand (the prefix deleted) is in no such list: that stays a gap."""
    chain = [entry for entry in manifest.get("replaced_test_sets") or [] if isinstance(entry, Mapping)]
    index = next((i for i, entry in enumerate(chain) if entry.get("sha256") == recorded), None)
    if index is None:
        return None
    # Each set was replaced by the one before it in the list (the current set for the latest).
    successor = manifest if index == 0 else chain[index - 1]
    reason = ((manifest.get("refrozen") or {}).get("reason") if index == 0 else None) or (
        f"it had gone stale (Prepare's reason is in the manifest of version {successor.get('version')}, an old object "
        f"version of {manifest_uri})")
    replaced_at = _day(successor.get("created_at"))
    version = chain[index].get("version")
    return {"version": version, "replaced_at": replaced_at, "reason": reason,
            "text": f"judged on an earlier frozen set (version {version}, replaced on {replaced_at} because {reason})"}


def _day(value: Any) -> str:
    """The date of an ISO time (``2026-11-20``); the text itself when it is none."""
    try:
        return dt.datetime.fromisoformat(str(value)).date().isoformat()
    except ValueError:
        return str(value)


def gather_splits(clients: Clients, names: Names, metadata: Mapping[str, Any], gaps: Gaps) -> Dict[str, Dict[str, Any]]:
    """Whether each prepared split now under the package's ``SPLIT_PROPERTIES`` location is the data the version was
    trained with: :func:`~pipeline_code.core.integrity.files_digest` of the objects now below it (each object's
    sha256, its key relative to the location) against the digest recorded at registration (``SPLIT_SHA256_PROPERTIES``).

    ``{split: {"uri", "recorded", "now", "objects", "same", "gone"}}``; a split changed, gone (the run's working data
    expires) or registered before its digest was is a gap naming it."""
    out: Dict[str, Dict[str, Any]] = {}
    for split, location_key in SPLIT_PROPERTIES.items():
        uri, recorded = metadata.get(location_key), metadata.get(SPLIT_SHA256_PROPERTIES[split])
        result: Dict[str, Any] = {"uri": uri, "recorded": recorded, "now": None, "objects": None, "same": None,
                                  "gone": None}
        out[split] = result
        if not recorded:
            gaps.add(f"{split} split: not recorded: the version records no digest of the {split} data it was trained "
                     f"with (registered before {SPLIT_SHA256_PROPERTIES[split]} was), so whether {uri or 'its location'} "
                     "still holds it is not known")
            continue
        if not uri:
            gaps.add(f"{split} split: not recorded in the package's CustomerMetadataProperties ({location_key})")
            continue
        prefix = uri if uri.endswith("/") else uri + "/"
        try:
            bucket, key_prefix = s3_parts(prefix)
        except ValueError as exc:
            gaps.add(f"{split} split: {exc}")
            continue
        keys = attempt(gaps, f"{split} split {prefix} (ListObjectsV2)", lambda: [o["Key"] for o in list_pages(
            clients.s3.list_objects_v2, "Contents", "ContinuationToken", next_token_key="NextContinuationToken",
            Bucket=bucket, Prefix=key_prefix)])
        if keys is None:
            continue
        keys = sorted(k for k in keys if not k.endswith("/"))  # a folder marker holds no data
        result["objects"], result["gone"] = len(keys), not keys
        if not keys:
            expiring = key_prefix.startswith(integrity.work_prefix(names.model))
            why = ("a run's working data expires data_lake.pipeline_work_expiration_days after it was written, or it "
                   "was deleted" if expiring else "it was deleted: no lifecycle rule expires it there")
            gaps.add(f"{split} split: {prefix} holds nothing now: the data this version was trained with is gone, so "
                     f"its digest {recorded} cannot be checked ({why})")
            continue
        digests = {}
        for key in keys:
            digest = attempt(gaps, f"{split} split s3://{bucket}/{key}",
                             lambda: integrity.stored_sha256(clients.s3, bucket, key))
            if digest is None:
                break
            digests[key[len(key_prefix):]] = digest
        else:
            result["now"] = integrity.files_digest(digests)
            result["same"] = result["now"] == recorded
            if not result["same"]:
                gaps.add(f"{split} split: {prefix} now holds {len(keys)} object(s) with digest {result['now']}, not the "
                         f"{recorded} this version was trained with: its data was rewritten since")
    return out
