"""Scoring by entity id: the request, the online-store records' verdicts, and what the endpoint is sent.

The front function (:mod:`pipeline_code.handlers.score_by_id`) and the local twin
(:mod:`mlops_cli.local.online_store`) share this module; each brings its own store (Feature Store
``BatchGetRecord`` or SQLite) and its own way to score. Standard library only.

**Request** (``application/json``)::

    {"ids": ["c-1", "c-2"]}                                   # entity ids only, or
    {"instances": [{"<record identifier>": "c-1", "<raw field>": ...}, ...]}

An instance may carry request-time raw fields (the dataset's curated columns): they are used only
when the model's policy is ``compute`` and the store has no fresh record for that id. At most
:data:`MAX_IDS` instances per request (``BatchGetRecord``'s limit per feature group); an id is a
non-empty string of at most :data:`MAX_ID_LENGTH` printable characters (Feature Store's record
identifier limit).

**Verdicts** per id: ``fresh`` (used as stored), ``unknown`` (no record), ``expired`` (past the online
store's TTL, ``ExpiresAt``), ``stale`` (event time older than the model's ``max_age_hours``),
``invalid`` (a value not of its catalog type, or no readable event time: the group does not match the
catalog; an event time more than :data:`MAX_EVENT_TIME_AHEAD_SECONDS` after the lookup, a future-dated record that
would otherwise be served unchanged for as long as it is online; or a feature the model requires absent or blank,
see below). A feature absent from a record is a missing
value (Feature Store stores no value for a null), except for a *required* feature (:attr:`LookupSpec.required`: a
column unchanged, ``col(x)``, declared ``nullable: false``, :meth:`pipeline_code.catalog.Dataset.required_column`):
training never saw it missing and serving refuses a record without it (400), so a stored record lacking it (written
before the feature was added to the group, or before its column became ``nullable: false``) is ``invalid``, resolved
by the policy for that id alone instead of failing the whole request at the endpoint. So is a stored value that
breaks a rule serving holds it to (:attr:`LookupSpec.rules`, :meth:`pipeline_code.catalog.Dataset.feature_rule`: a
``min`` / ``max`` / ``allowed`` of its column, a bucket's labels) - a value written before the rule was tightened (a
new category list, a narrower range) - or a boolean feature's value serving does not read as true or false (a
``boolean`` rule: the front types it as serving does, so ``2`` is invalid and ``true`` is sent as 1). Each ``invalid`` id's answer says why (``lookup_reason``: the feature, the
stored value and the rule).
Every verdict but ``fresh`` is a miss, resolved by the model's policy:

* ``reject``: the whole request is refused (404 when every refused id is unknown, 422 otherwise), naming the ids;
* ``missing``: scored with every feature missing (the model's missing-value path) and marked so;
* ``compute``: scored from the instance's raw fields, which the serving code turns into features with
  the catalog's expressions (the same code as training); an instance without them is refused (422); one lacking a
  raw field serving requires of a raw record (:attr:`LookupSpec.required_raw`) is refused alone, its answer naming
  the fields (no score, ``error``), and the others are scored (422 when none is left).

**What the endpoint gets**: one record per instance, the features exactly as used, plus
``entity_id``, ``feature_source`` (:data:`SOURCE_STORE` | :data:`SOURCE_COMPUTED` | :data:`SOURCE_MISSING`),
``feature_event_time`` (the stored record's event time, or null), ``feature_lookup`` (the verdict: why a miss
was completed) and ``inference_id``. The endpoint's capture keeps these records, so the drift monitor sees
what the model saw and where it came from (:mod:`pipeline_code.monitoring.skew`).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core.contract import FEATURE_EVENT_TIME, MAX_EVENT_TIME_AHEAD_SECONDS, TRIMMED, inference_id_problem
from pipeline_code.core.record_kinds import SOURCE_FEATURES, RecordKinds
from pipeline_code.core.value_rules import FLOAT32_MAX, ValueRule, parse_boolean, repeated_key_problem, shown

MAX_IDS = 100
MAX_ID_LENGTH = 1024
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")

POLICIES = ("reject", "missing", "compute")
# The drift monitor's default limit on a feature's share of served values that differ from the training snapshot.
DEFAULT_MAX_SKEW_RATE = 0.01

FRESH, UNKNOWN, EXPIRED, STALE, INVALID = "fresh", "unknown", "expired", "stale", "invalid"
MISSES = (UNKNOWN, EXPIRED, STALE, INVALID)

SOURCE_STORE = "online_store"
SOURCE_COMPUTED = "computed"
SOURCE_MISSING = "missing"
FEATURE_SOURCE = "feature_source"
ENTITY_ID = "entity_id"
FEATURE_LOOKUP = "feature_lookup"
# The caller's answer per id: why an invalid record was not used (the endpoint is not sent it).
LOOKUP_REASON = "lookup_reason"
# The front's rules (LookupSpec.rules) travel as JSON in FEATURE_RULES, or - when they would not fit in Lambda's 4 KB of
# environment variables (a feature with hundreds of allowed values) - in a file of the function's code, named by
# FEATURE_RULES_FILE relative to the code root (the directory holding pipeline_code).
RULES_ENV = "FEATURE_RULES"
RULES_FILE_ENV = "FEATURE_RULES_FILE"
RULES_FILE = "feature_rules.json"
# A wide model's feature list (name:type, hundreds of them) does not fit in the 4 KB either: then the whole spec's lists
# (features, required features, rules) travel as one file of the function's code, named by FEATURE_SPEC_FILE.
SPEC_FILE_ENV = "FEATURE_SPEC_FILE"
SPEC_FILE = "feature_spec.json"
CODE_ROOT = Path(__file__).resolve().parents[2]
# The keys a by-id record carries besides the model's features (the drift monitor expects them).
PROVENANCE_KEYS = (ENTITY_ID, FEATURE_SOURCE, FEATURE_EVENT_TIME, FEATURE_LOOKUP)
INFERENCE_ID = "inference_id"

# The front's CloudWatch metrics (embedded-metric log lines) go to its project's namespace
# (contract.serving_namespace), dimensions Environment and Model: two projects or two environments sharing an
# account (dev and staging, say) never share a series, so one's 5xx never pages the other's people.
METRIC_DIMENSIONS = ("Environment", "Model")
ENVIRONMENT_ENV = "ENVIRONMENT_NAME"
# The front's model and its feature list (name:type, comma-separated), as the template diff reads them too.
MODEL_ENV = "MODEL_NAME"
FEATURES_ENV = "FEATURES"
REQUIRED_FEATURES_ENV = "REQUIRED_FEATURES"
# Under policy compute: the raw fields an instance must carry to be scored (absent = none checked, as before them).
REQUIRED_RAW_ENV = "REQUIRED_RAW_FIELDS"
# Under policy compute: what serving's rule telling a precomputed record from a raw one needs (RecordKinds, JSON).
RECORDS_ENV = "RECORD_KINDS"
NAMESPACE_ENV = "METRIC_NAMESPACE"
REQUESTS_METRIC = "ByIdRequests"
SERVER_ERRORS_METRIC = "ByIdServerErrors"


def verdict_metric(kind: str) -> str:
    """The metric counting ids with verdict ``kind`` (``ByIdFresh``, ``ByIdUnknown``, ...)."""
    return f"ById{kind.capitalize()}"

# Feature Store's feature types, as the catalog declares them (pipeline_code.catalog FS_*).
INTEGRAL, FRACTIONAL, STRING = "Integral", "Fractional", "String"
# How the front types a boolean feature (Integral in the store, a ``boolean`` rule in FEATURE_RULES): as serving does.
BOOLEAN = "boolean"


class RefusedRequest(Exception):
    """A request the front refuses: ``status`` is the HTTP status, the message says what to fix; ``counts``
    the ids per verdict when the lookup had run (so a refused request is still counted)."""

    def __init__(self, status: int, message: str, counts: Optional[Dict[str, int]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.counts = counts or {}


@dataclass(frozen=True)
class LookupSpec:
    """One model's by-id settings: its feature group's keys, its features with their types, the policy, and which
    features a stored record must hold to be used (``required``; none by default: every feature may be missing).

    Raises:
        ValueError: a required feature that is not one of ``features``.
    """

    record_identifier: str
    event_time: str
    features: Tuple[Tuple[str, str], ...]  # (name, Integral | Fractional | String), the model's order
    policy: str = "reject"
    max_age_seconds: Optional[int] = None
    max_ids: int = MAX_IDS
    # The features serving refuses missing (pipeline_code.catalog.Dataset.required_features), the model's order.
    required: Tuple[str, ...] = ()
    # The rules serving holds a present value to (pipeline_code.catalog.Dataset.feature_rules), the model's order.
    rules: Tuple[Tuple[str, ValueRule], ...] = ()
    # Under policy compute, the raw fields an instance must carry, non-null and not blank, to be scored from them
    # (pipeline_code.catalog.Dataset.required_raw_fields, the rule serving refuses a raw record by); one without them
    # is refused alone, its answer naming them, instead of the endpoint's 400 failing every id of the request.
    required_raw: Tuple[str, ...] = ()
    # Under policy compute, what serving's rule telling a precomputed record from a raw one needs
    # (pipeline_code.catalog.Dataset.record_kinds): an instance serving would read as a precomputed record lacking a
    # feature (one holding a feature named like no column, or another feature list's) is refused alone, in serving's
    # words. None: no such check (a front deployed before it, or a model whose dataset makes none).
    records: Optional[RecordKinds] = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.required if name not in self.feature_names]
        if unknown:
            raise ValueError(f"REQUIRED_FEATURES {unknown[0]!r}: not one of the model's FEATURES "
                             f"({', '.join(self.feature_names)})")
        unknown = [name for name, _ in self.rules if name not in self.feature_names]
        if unknown:
            raise ValueError(f"{RULES_ENV} {unknown[0]!r}: not one of the model's FEATURES "
                             f"({', '.join(self.feature_names)})")

    @property
    def feature_names(self) -> List[str]:
        return [name for name, _ in self.features]

    @property
    def lookup_names(self) -> List[str]:
        """The feature names asked of the store: the two keys, then the model's features."""
        return [self.record_identifier, self.event_time, *self.feature_names]

    def rules_document(self) -> str:
        """The rules as compact JSON, feature -> rule (:meth:`ValueRule.to_json`): FEATURE_RULES' value, or the rules
        file's content."""
        return json.dumps({name: rule.to_json() for name, rule in self.rules}, separators=(",", ":"), ensure_ascii=False)

    def spec_document(self) -> str:
        """The spec's lists as compact JSON (features as ``[name, type]`` pairs, required features, rules as in
        :meth:`rules_document`, and the required raw fields when there are any): the content of the file
        FEATURE_SPEC_FILE names."""
        return json.dumps({"features": [list(pair) for pair in self.features], "required": list(self.required),
                           "rules": {name: rule.to_json() for name, rule in self.rules},
                           **({"required_raw": list(self.required_raw)} if self.required_raw else {}),
                           **({"records": self.records.to_json(with_features=False)} if self.records else {})},
                          separators=(",", ":"), ensure_ascii=False)

    def encode(self, rules_file: Optional[str] = None, spec_file: Optional[str] = None) -> Dict[str, str]:
        """The spec as environment variables (the front function's configuration); the rules inline
        (``FEATURE_RULES``), or, given ``rules_file``, named as that file of the function's code (``FEATURE_RULES_FILE``,
        which the caller ships holding :meth:`rules_document`); given ``spec_file``, the features, required features
        and rules are all in that file of the code instead (``FEATURE_SPEC_FILE``, holding :meth:`spec_document`)."""
        scalars = {
            "RECORD_IDENTIFIER": self.record_identifier,
            "EVENT_TIME": self.event_time,
            "MISSING_POLICY": self.policy,
            "MAX_AGE_SECONDS": "" if self.max_age_seconds is None else str(self.max_age_seconds),
            "MAX_IDS": str(self.max_ids),
        }
        if spec_file:
            return {**scalars, SPEC_FILE_ENV: spec_file}
        return {
            "RECORD_IDENTIFIER": self.record_identifier,
            "EVENT_TIME": self.event_time,
            FEATURES_ENV: ",".join(f"{name}:{kind}" for name, kind in self.features),
            "MISSING_POLICY": self.policy,
            "MAX_AGE_SECONDS": scalars["MAX_AGE_SECONDS"],
            "MAX_IDS": scalars["MAX_IDS"],
            REQUIRED_FEATURES_ENV: ",".join(self.required),
            **({REQUIRED_RAW_ENV: ",".join(self.required_raw)} if self.required_raw else {}),
            **({RECORDS_ENV: self.records.document(with_features=False)} if self.records else {}),
            **({RULES_FILE_ENV: rules_file} if rules_file else {RULES_ENV: self.rules_document()}),
        }

    @classmethod
    def decode(cls, environ: Mapping[str, str]) -> "LookupSpec":
        """Inverse of :meth:`encode`."""
        max_age = environ.get("MAX_AGE_SECONDS", "")
        policy = environ.get("MISSING_POLICY", "reject")
        if policy not in POLICIES:
            raise ValueError(f"MISSING_POLICY {policy!r}: not a by-id policy; allowed: {', '.join(POLICIES)}")
        if environ.get(SPEC_FILE_ENV):
            features, required, rules, required_raw, records = _decode_spec_file(environ[SPEC_FILE_ENV])
        else:
            features = tuple(tuple(item.split(":", 1)) for item in environ[FEATURES_ENV].split(",") if item)
            required = tuple(name for name in environ.get(REQUIRED_FEATURES_ENV, "").split(",") if name)
            rules = _decode_rules(environ)
            required_raw = tuple(name for name in environ.get(REQUIRED_RAW_ENV, "").split(",") if name)
            records = _decode_records(environ.get(RECORDS_ENV), [name for name, _ in features])
        return cls(
            record_identifier=environ["RECORD_IDENTIFIER"],
            event_time=environ["EVENT_TIME"],
            features=features,  # type: ignore[arg-type]
            policy=policy,
            max_age_seconds=int(max_age) if max_age else None,
            max_ids=int(environ.get("MAX_IDS", MAX_IDS)),
            required=required,
            rules=rules,
            required_raw=required_raw,
            records=records,
        )


def _decode_spec_file(name: str) -> Tuple[Tuple[Tuple[str, str], ...], Tuple[str, ...], Tuple[Tuple[str, ValueRule], ...],
                                         Tuple[str, ...], Optional[RecordKinds]]:
    """The features, required features, rules, required raw fields and record kinds of the code's file ``name``
    (:meth:`LookupSpec.spec_document`)."""
    try:
        body = json.loads(_code_file(name))
        if not isinstance(body, dict) or not isinstance(body.get("features"), list):
            raise ValueError(f"expected an object with 'features', 'required' and 'rules', got {shown(body)}")
        features = tuple((str(pair[0]), str(pair[1])) for pair in body["features"])
        required = tuple(str(n) for n in body.get("required") or ())
        rules = tuple((str(feature), ValueRule.from_json(rule)) for feature, rule in (body.get("rules") or {}).items())
        required_raw = tuple(str(n) for n in body.get("required_raw") or ())
        records = RecordKinds.from_json(body.get("records"), [name for name, _ in features])
        return features, required, rules, required_raw, records
    except (OSError, ValueError, TypeError, IndexError) as error:
        raise ValueError(f"{SPEC_FILE_ENV} {name!r}: {error}") from error


def _decode_records(text: Optional[str], features: Sequence[str]) -> Optional[RecordKinds]:
    """The record kinds of RECORD_KINDS (for the model's ``features``: the variable does not repeat them); None without
    it (a front deployed before it: no such check, as then)."""
    try:
        return RecordKinds.from_json(json.loads(text), features) if text else None
    except ValueError as error:
        raise ValueError(f"{RECORDS_ENV}: {error}") from error


def _decode_rules(environ: Mapping[str, str]) -> Tuple[Tuple[str, ValueRule], ...]:
    """The rules of FEATURE_RULES, or of the code's file FEATURE_RULES_FILE names; none without either (a front
    deployed before they existed: every stored value is used, as then)."""
    name = environ.get(RULES_FILE_ENV)
    where = f"{RULES_FILE_ENV} {name!r}" if name else RULES_ENV
    try:
        text = _code_file(name) if name else environ.get(RULES_ENV) or "{}"
        body = json.loads(text)
        if not isinstance(body, dict):
            raise ValueError(f"expected an object of feature -> rule, got {shown(body)}")
        return tuple((str(feature), ValueRule.from_json(rule)) for feature, rule in body.items())
    except (OSError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from error


@functools.lru_cache(maxsize=4)
def _code_file(name: str) -> str:
    """A file of the function's code (read once per execution environment: it only changes with a new deploy)."""
    return (CODE_ROOT / name).read_text(encoding="utf-8")


def front_environment(*, environment: str, model: str, endpoint: str, feature_group: str, spec: LookupSpec,
                      namespace: str, rules_file: Optional[str] = None, spec_file: Optional[str] = None) -> Dict[str, str]:
    """The front function's whole configuration: which environment, model, endpoint and feature group, the spec, and
    the CloudWatch namespace of its metrics; the spec's rules inline unless ``rules_file`` names the code's file
    holding them (:meth:`LookupSpec.encode`).

    Synth gives it to the function; the local twin builds the same for the same handler.
    """
    return {ENVIRONMENT_ENV: environment, MODEL_ENV: model, "ENDPOINT_NAME": endpoint, "FEATURE_GROUP": feature_group,
            NAMESPACE_ENV: namespace, **spec.encode(rules_file, spec_file)}


@dataclass(frozen=True)
class StoredRecord:
    """One online-store record: feature name -> value as stored (text), and when the TTL expires it."""

    values: Mapping[str, Any]  # text as stored; a list (ValueAsStringList) where the catalog expects a scalar
    expires_at: Optional[datetime] = None


@dataclass
class Instance:
    entity_id: str
    raw: Dict[str, Any]
    inference_id: Optional[str] = None


@dataclass
class Resolved:
    """The records to score, one per instance the front does not refuse, and what the lookup found per instance."""

    records: List[Dict[str, Any]]
    verdicts: List[str]
    event_times: List[Optional[str]]
    counts: Dict[str, int] = field(default_factory=dict)
    # Why each invalid record was not used (None for every other verdict).
    reasons: List[Optional[str]] = field(default_factory=list)
    # Per instance, why the front refused to score it (None for each one scored, which has a record).
    refusals: List[Optional[str]] = field(default_factory=list)


def _lacking_raw_fields(instance: Instance, spec: LookupSpec) -> List[str]:
    """The required raw fields (:attr:`LookupSpec.required_raw`) a compute instance lacks: absent, null or blank text,
    as serving reads a raw record's (an instance holding every model feature is a precomputed record: none)."""
    if all(name in instance.raw for name in spec.feature_names):
        return []
    return [name for name in spec.required_raw
            if instance.raw.get(name) is None
            or (isinstance(instance.raw[name], str) and not instance.raw[name].strip(TRIMMED))]


def _precomputed_refusal(instance: Instance, spec: LookupSpec) -> Optional[str]:
    """Serving's words refusing a compute instance it reads as a precomputed record lacking a model feature (one
    holding a feature named like no column, or another feature list's: :meth:`RecordKinds.source`), else None."""
    if spec.records is None:
        return None
    source, missing = spec.records.source(instance.raw)
    return spec.records.refusal(instance.raw, missing)[0] if source == SOURCE_FEATURES and missing else None


def parse_request(payload: Any, spec: LookupSpec) -> List[Instance]:
    """The instances of a by-id request (see the module docstring); RefusedRequest(400/413) naming the field. A body or
    instance read with :func:`pipeline_code.core.value_rules.json_object` that holds a field twice is refused as
    serving refuses a record so (:func:`pipeline_code.core.value_rules.repeated_key_problem`)."""
    problem = repeated_key_problem(payload)
    if problem:
        raise RefusedRequest(400, f"request body: {problem}")
    if isinstance(payload, dict) and "ids" in payload and "instances" not in payload:
        ids = payload["ids"]
        if not isinstance(ids, list):
            raise RefusedRequest(400, f"'ids' must be a list of entity ids ({spec.record_identifier}), got {type(ids).__name__}")
        items: List[Any] = [{spec.record_identifier: value} for value in ids]
    elif isinstance(payload, dict) and isinstance(payload.get("instances"), list):
        items = payload["instances"]
    else:
        raise RefusedRequest(
            400, f'a by-id request is {{"ids": [...]}} or {{"instances": [{{"{spec.record_identifier}": ..., ...}}]}}'
        )
    if not items:
        raise RefusedRequest(400, "the request holds no entity id")
    if len(items) > spec.max_ids:
        raise RefusedRequest(413, f"{len(items)} entity ids in one request; at most {spec.max_ids}: split the request")
    instances: List[Instance] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise RefusedRequest(400, f"instance {index}: expected an object with '{spec.record_identifier}'")
        problem = repeated_key_problem(item)
        if problem:
            raise RefusedRequest(400, f"instance {index}: {problem}")
        entity_id = item.get(spec.record_identifier)
        if isinstance(entity_id, bool) or not isinstance(entity_id, (str, int)):
            raise RefusedRequest(400, f"instance {index}: '{spec.record_identifier}' must be a string id, got {entity_id!r}")
        entity_id = str(entity_id)
        if not entity_id or len(entity_id) > MAX_ID_LENGTH or not _PRINTABLE.fullmatch(entity_id):
            raise RefusedRequest(
                400,
                f"instance {index}: '{spec.record_identifier}' must be 1-{MAX_ID_LENGTH} printable characters, got {entity_id[:60]!r}",
            )
        raw = {k: v for k, v in item.items() if k not in (spec.record_identifier, INFERENCE_ID)}
        inference_id = item.get(INFERENCE_ID)
        id_problem = inference_id_problem(inference_id)
        if id_problem:  # serving's rule and words: echoed as str() it would be an id the caller never sent
            raise RefusedRequest(400, f"instance {index}: field {INFERENCE_ID!r}: {id_problem}")
        instances.append(Instance(entity_id, raw, None if inference_id is None else str(inference_id)))
    return instances


def parse_time(text: Optional[str]) -> Optional[datetime]:
    """An ISO-8601 time (``Z`` or offset; naive = UTC) or epoch seconds, as Feature Store stores event times."""
    if text is None or text == "":
        return None
    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):  # not a number, or "inf" / 1e20: no representable time
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _typed(value: Any, kind: str) -> Tuple[bool, Any]:
    """(valid, value) of one stored value, read as serving reads that value: an absent value or blank numeric text is a
    valid missing one; an Integral is an integer, also written as a float with a zero fraction (``3.0``); a number is
    finite and within float32's range; a :data:`BOOLEAN` value is ``1`` / ``0`` or a boolean word, any case
    (:func:`parse_boolean`), valued 1 / 0; any other text (``2``, ``maybe`` for a boolean) is not of its type. An
    invalid number beyond float32's range keeps its value (every other invalid value is None), for the reason to say so.
    """
    if value is None:
        return True, None
    if not isinstance(value, str):  # a collection where the catalog declares one value
        return False, None
    if kind == BOOLEAN:
        flag = parse_boolean(value)
        return flag is not None, None if flag is None else int(flag)
    if kind in (INTEGRAL, FRACTIONAL) and not value.strip(TRIMMED):
        return True, None  # blank text: serving reads it as a missing number, as the ETL does (a required one: judge)
    if kind == INTEGRAL:
        try:
            number = int(value)
            # Beyond float32 the model's input would be infinity: serving refuses it (for every id of the request).
            return abs(number) <= FLOAT32_MAX, number
        except ValueError:
            pass
        # An integer written as a float ("3.0", "3."): serving reads it as 3 (catalog.INTEGER_PATTERN, as the ETL does,
        # since exporters write integers so), so the front uses it as 3 rather than refusing a value serving accepts.
        whole, point, zeros = value.rstrip().partition(".")
        if point and not zeros.strip("0"):
            try:
                number = int(whole)
                return abs(number) <= FLOAT32_MAX, number
            except ValueError:
                pass
        return False, None
    if kind == FRACTIONAL:
        try:
            number = float(value)
        except ValueError:
            return False, None
        if number != number:
            return False, None
        # Infinity and beyond float32 (which the model would read as infinity): serving refuses each.
        return abs(number) <= FLOAT32_MAX, number
    return True, value


def verdict(record: Optional[StoredRecord], spec: LookupSpec, now: datetime) -> Tuple[str, Dict[str, Any], Optional[str]]:
    """(verdict, typed features, event time) of one id's stored record at ``now`` (:func:`judge` without the reason)."""
    found, features, event_text, _ = judge(record, spec, now)
    return found, features, event_text


def judge(record: Optional[StoredRecord], spec: LookupSpec, now: datetime
          ) -> Tuple[str, Dict[str, Any], Optional[str], Optional[str]]:
    """(verdict, typed features, event time, reason) of one id's stored record at ``now``; the reason says why an
    ``invalid`` record is unusable (None for every other verdict)."""
    if record is None:
        return UNKNOWN, {}, None, None
    event_text = record.values.get(spec.event_time)
    if record.expires_at is not None and record.expires_at <= now:
        return EXPIRED, {}, event_text, None
    features: Dict[str, Any] = {}
    required = set(spec.required)
    rules = dict(spec.rules)
    for name, kind in spec.features:
        stored = record.values.get(name)
        # Feature Store keeps no value for a null feature, so an absent feature is a missing value, as in training;
        # but serving refuses a required one missing (blank text included, as it reads text), which would fail every
        # id of the request at the endpoint: the record is unusable, and this id's miss is the policy's to resolve.
        if name in required and (stored is None or (isinstance(stored, str) and not stored.strip(TRIMMED))):
            held = "absent from the stored record" if stored is None else f"stored as blank text {shown(stored)}"
            return INVALID, {}, event_text, f"feature {name!r}: {held}, but serving refuses it missing (a required feature)"
        # A boolean feature is Integral in the store, but serving reads it as true or false: typed as serving types it,
        # a stored 2 is unusable (not sent, failing every id) and a stored "true" is used.
        boolean = name in rules and rules[name].boolean
        ok, value = _typed(stored, BOOLEAN if boolean else kind)
        if not ok:
            held = ("true or false, as serving reads a boolean feature" if boolean
                    else f"of its catalog type {kind}" if value is None
                    else f"within the float32 range the model computes in (±{FLOAT32_MAX:.4g})")
            return INVALID, {}, event_text, f"feature {name!r}: stored {shown(stored)} is not {held}"
        # A value kept since before a rule was tightened would likewise be refused at the endpoint (that id unscored,
        # not resolved by the policy).
        problem = rules[name].problem(value) if name in rules else None
        if problem:
            return INVALID, {}, event_text, f"feature {name!r}: stored {problem}"
        features[name] = value
    event_time = parse_time(event_text)
    if event_time is None:
        held = "absent from the stored record" if event_text is None else f"stored {shown(event_text)} is not a time"
        return INVALID, {}, event_text, f"event time {spec.event_time!r}: {held}"
    if event_time - now > timedelta(seconds=MAX_EVENT_TIME_AHEAD_SECONDS):
        when = now.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        return INVALID, {}, event_text, (
            f"event time {spec.event_time!r}: stored {shown(event_text)} is after the lookup time {when} (more than "
            f"{MAX_EVENT_TIME_AHEAD_SECONDS} s ahead): the online store keeps a future-dated record over every put with "
            "an earlier event time, so its values would be served unchanged; delete it (DeleteRecord, HardDelete, with "
            "an event time after its own) and correct its source (docs/invocation-contract.md, Future-dated records)")
    if spec.max_age_seconds is not None and now - event_time > timedelta(seconds=spec.max_age_seconds):
        return STALE, {}, event_text, None
    return FRESH, features, event_text, None


def resolve(instances: Sequence[Instance], stored: Mapping[str, StoredRecord], spec: LookupSpec, now: datetime) -> Resolved:
    """The records to score for ``instances`` given the store's ``stored`` records, by the model's policy.

    Raises:
        RefusedRequest: 404/422 under ``reject`` (or ``compute`` without raw fields), naming the ids.
    """
    records: List[Dict[str, Any]] = []
    verdicts: List[str] = []
    event_times: List[Optional[str]] = []
    reasons: List[Optional[str]] = []
    refusals: List[Optional[str]] = []
    refused: Dict[str, List[str]] = {}
    why: Dict[str, str] = {}  # refused id -> why its record is invalid
    for instance in instances:
        found, features, event_text, reason = judge(stored.get(instance.entity_id), spec, now)
        verdicts.append(found)
        reasons.append(reason)
        event_times.append(event_text if found != UNKNOWN else None)
        meta = {ENTITY_ID: instance.entity_id, FEATURE_LOOKUP: found, INFERENCE_ID: instance.inference_id or instance.entity_id}
        computing = found != FRESH and spec.policy == "compute" and bool(instance.raw)
        precomputed = _precomputed_refusal(instance, spec) if computing else None
        lacking = _lacking_raw_fields(instance, spec) if computing and not precomputed else []
        refusals.append(None)
        if precomputed:
            # Serving reads these fields as a precomputed record lacking a feature: refused here in its words, without
            # a call its 400 would spend.
            refusals[-1] = f"{instance.entity_id}: not scored: {precomputed}"
        elif lacking:
            # Serving would refuse this raw record with a 400 failing every id of the request: refuse this id alone.
            refusals[-1] = (f"{instance.entity_id}: not scored: policy 'compute' scores it from the raw fields sent with "
                            f"it, which lack {', '.join(map(repr, lacking))} (missing, null or blank); a raw instance "
                            f"must carry {', '.join(spec.required_raw)}")
        elif found == FRESH:
            records.append({**features, FEATURE_SOURCE: SOURCE_STORE, FEATURE_EVENT_TIME: event_text, **meta})
        elif spec.policy == "missing":
            records.append({**{name: None for name in spec.feature_names}, FEATURE_SOURCE: SOURCE_MISSING,
                            FEATURE_EVENT_TIME: None, **meta})
        elif spec.policy == "compute" and instance.raw:
            records.append({**instance.raw, FEATURE_SOURCE: SOURCE_COMPUTED, FEATURE_EVENT_TIME: None, **meta})
        else:
            refused.setdefault(found, []).append(instance.entity_id)
            if reason:
                why.setdefault(instance.entity_id, reason)
    counts = {kind: verdicts.count(kind) for kind in (FRESH, *MISSES)}
    if refused:
        # 404 only when the caller asked for ids nobody knows and nothing could stand in for them.
        status = 404 if spec.policy == "reject" and set(refused) == {UNKNOWN} else 422
        detail = "; ".join(f"{kind}: {', '.join(ids[:10])}{' …' if len(ids) > 10 else ''}" for kind, ids in refused.items())
        # Only "reject" and "compute" refuse: "missing" scores every miss.
        fix = ("the model's by-id policy is 'reject'" if spec.policy == "reject"
               else "policy 'compute' needs the instance's raw fields for these ids")
        # The first few reasons: the caller learns what to fix without a 100-id message.
        reasons_shown = "".join(f"; {entity_id}: {reason}" for entity_id, reason in list(why.items())[:3])
        raise RefusedRequest(status, f"no fresh online-store record ({detail}); {fix}{reasons_shown}", counts)
    if not records:  # every instance refused for its raw fields: nothing to score
        shown_refusals = [r for r in refusals if r]
        more = f" (+{len(shown_refusals) - 10} more)" if len(shown_refusals) > 10 else ""
        raise RefusedRequest(422, f"no instance could be scored: {'; '.join(shown_refusals[:10])}{more}", counts)
    return Resolved(records=records, verdicts=verdicts, event_times=event_times, counts=counts, reasons=reasons,
                    refusals=refusals)


def answer(instances: Sequence[Instance], resolved: Resolved, predictions: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The caller's answer per instance: the prediction (one per record scored, in order) with the id, the feature
    source and event time, the verdict and, for an invalid record, why (``lookup_reason``); an instance the front
    refused has no prediction and no source, and its ``error`` says why."""
    out = []
    reasons = resolved.reasons or [None] * len(instances)
    refusals = resolved.refusals or [None] * len(instances)
    scored = iter(zip(resolved.records, predictions))
    for instance, found, event_time, reason, refusal in zip(
        instances, resolved.verdicts, resolved.event_times, reasons, refusals
    ):
        record, prediction = (None, {}) if refusal else next(scored)
        out.append({
            **prediction,
            "id": instance.entity_id,
            FEATURE_SOURCE: None if record is None else record[FEATURE_SOURCE],
            FEATURE_EVENT_TIME: event_time,
            "lookup": found,
            **({LOOKUP_REASON: reason} if reason else {}),
            **({"error": refusal} if refusal else {}),
        })
    return out
