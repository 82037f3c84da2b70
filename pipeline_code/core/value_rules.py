"""The declared rules one feature value keeps: bounds, allowed values, bucket labels, true or false. Standard library
only.

One definition for every place that checks a value against its dataset's declaration: serving, for a raw field
(:meth:`pipeline_code.catalog.Column.value_problem`) and a precomputed feature
(:meth:`pipeline_code.catalog.Dataset.feature_rule`), and the score-by-id front, for a value stored in the online
Feature Store (:mod:`pipeline_code.core.online_features`), which gets each model feature's rule in its environment
(:meth:`ValueRule.to_json`). A stored value can break a rule tightened after it was written (a new category list, a
narrower range): the front finds it per id instead of the endpoint refusing the whole request.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from pipeline_code.core.contract import TRIMMED

# The rule kinds, as the front's environment spells them (FEATURE_RULES).
MINIMUM, MAXIMUM, ALLOWED, BUCKETS, BOOLEAN = "min", "max", "allowed", "buckets", "boolean"
RULE_KINDS = (MINIMUM, MAXIMUM, ALLOWED, BUCKETS, BOOLEAN)

# The largest float32 (about 3.4e38): the models compute in float32, so serving refuses a number beyond it (it would
# become infinity and score as nonsense), and the by-id front does not send one it stores.
FLOAT32_MAX = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]

# How a boolean is written in text, after trimming and lower-casing (the ETL, serving and the by-id front all read
# these, and the sample-data generator writes the first of each). A boolean feature value is Integral 1 / 0.
# "1.0" / "0.0": how pandas writes a boolean column that has a missing value (it becomes a float column).
TRUE_WORDS = ("true", "1", "yes", "y", "t", "1.0")
FALSE_WORDS = ("false", "0", "no", "n", "f", "0.0")


def parse_boolean(value: str) -> Optional[bool]:
    """True / False for a word of :data:`TRUE_WORDS` / :data:`FALSE_WORDS` (any case, trimmed), else None."""
    word = value.strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def normalise_category(value: str) -> str:
    """The one normal form of a categorical value: trimmed (:data:`TRIMMED`) and lower-cased.

    The ETL, the feature job and serving all apply it before checking a value against
    ``allowed``, so ``" North"`` and ``"north"`` are the same category everywhere; declared
    ``allowed`` values must already be in this form.
    """
    return value.strip(TRIMMED).lower()


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` for a message, cut after ``limit`` characters with the length it had: a request's 1 MB field
    must not become a 1 MB error message (or a quarantine reason per distinct value)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


@dataclass(frozen=True)
class ValueRule:
    """What a present value must keep: a number ``minimum`` / ``maximum`` (inclusive), a text one of ``allowed``
    (compared in normal form, :func:`normalise_category`); ``buckets`` says ``allowed`` are a bucket feature's labels
    (only the message differs); ``boolean`` says the value is true or false (a boolean column as it is: serving reads
    1 / 0, JSON true / false or a boolean word, :func:`parse_boolean`, and nothing else). None everywhere: no rule."""

    minimum: Optional[float] = None
    maximum: Optional[float] = None
    allowed: Optional[Tuple[str, ...]] = None
    buckets: bool = False
    boolean: bool = False

    def problem(self, value: Any) -> Optional[str]:
        """Why ``value`` (already of its type: a number, a string, a bool) breaks the rule, None when it keeps it.

        A missing value (None, NaN, blank text) has no problem here: whether it may be missing is the caller's rule.
        Booleans are never held to bounds; bounds apply to numbers, allowed values to text; a ``boolean`` rule
        holds a number to 1 or 0 (a bool keeps it).
        """
        if value is None or (isinstance(value, float) and value != value):
            return None
        if isinstance(value, str) and not value.strip(TRIMMED):
            return None
        if self.boolean and isinstance(value, (int, float)) and not isinstance(value, bool) and value not in (0, 1):
            return f"{shown(value)} is not true or false (1 or 0)"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"{shown(value)} is below the minimum {self.minimum:g}"
            if self.maximum is not None and value > self.maximum:
                return f"{shown(value)} is above the maximum {self.maximum:g}"
        if self.allowed is not None and isinstance(value, str):
            if normalise_category(value) not in {normalise_category(v) for v in self.allowed}:
                what = "one of the feature's buckets" if self.buckets else "an allowed value"
                return f"{shown(value)} is not {what}; allowed: {', '.join(self.allowed)}"
        return None

    def to_json(self) -> Dict[str, Any]:
        """The rule as JSON: only the kinds it has (``min``, ``max``, ``allowed`` or ``buckets``, ``boolean``: true)."""
        out: Dict[str, Any] = {}
        for kind, bound in ((MINIMUM, self.minimum), (MAXIMUM, self.maximum)):
            if bound is not None:
                # 0, not 0.0: the front's environment has 4 KB in all.
                out[kind] = int(bound) if float(bound).is_integer() and abs(bound) < 2**53 else bound
        if self.allowed is not None:
            out[BUCKETS if self.buckets else ALLOWED] = list(self.allowed)
        if self.boolean:
            out[BOOLEAN] = True
        return out

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "ValueRule":
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: not a mapping of known rule kinds of the right types.
        """
        if not isinstance(body, Mapping):
            raise ValueError(f"a rule is an object of {', '.join(RULE_KINDS)}, got {shown(body)}")
        unknown = sorted(set(body) - set(RULE_KINDS))
        if unknown or (ALLOWED in body and BUCKETS in body):
            raise ValueError(f"unknown rule kinds {unknown or [ALLOWED, BUCKETS]}; known: {', '.join(RULE_KINDS)}")
        bounds = {}
        for kind in (MINIMUM, MAXIMUM):
            value = body.get(kind)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{kind} must be a number, got {shown(value)}")
            bounds[kind] = None if value is None else float(value)
        values = body.get(ALLOWED, body.get(BUCKETS))
        if values is not None and (not isinstance(values, list) or not all(isinstance(v, str) for v in values)):
            raise ValueError(f"{BUCKETS if BUCKETS in body else ALLOWED} must be a list of strings, got {shown(values)}")
        # Only ever written as true (to_json leaves a rule without it out): anything else is a hand-made mistake.
        if BOOLEAN in body and body[BOOLEAN] is not True:
            raise ValueError(f"{BOOLEAN} must be true, got {shown(body[BOOLEAN])}")
        return cls(minimum=bounds[MINIMUM], maximum=bounds[MAXIMUM],
                   allowed=None if values is None else tuple(values), buckets=BUCKETS in body, boolean=BOOLEAN in body)


class RepeatedKey(dict):
    """A JSON object that held a key more than once (read by :func:`json_object`), ``repeated`` the first such key."""

    repeated: str = ""


def json_object(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """``json.loads``' ``object_pairs_hook`` for requests: a JSON object as a dict, or a :class:`RepeatedKey` when it
    holds a key twice (json keeps the last value, while a gateway or validator in front may have read the first)."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen = set()
    for key, _ in pairs:
        if key in seen:
            break
        seen.add(key)
    repeated = RepeatedKey(obj)
    repeated.repeated = key
    return repeated


def repeated_key_problem(value: Any) -> Optional[str]:
    """Why an object read by :func:`json_object` is refused (None: each key once): serving's words for a record or
    envelope and the by-id front's for an instance or its body, one definition."""
    if not isinstance(value, RepeatedKey):
        return None
    return (f"field {shown(value.repeated)} is given more than once in one object (JSON parsers disagree on which value counts); "
            "send each field once")
