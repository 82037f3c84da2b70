"""Serving's rule telling a precomputed JSON record from a raw one, with the data it needs: one definition for serving
(:meth:`pipeline_code.catalog.Dataset.record_source`, which builds a :class:`RecordKinds` from the catalog) and for the
by-id front (:mod:`pipeline_code.core.online_features`, whose spec carries one). Standard library only.

A record holding every model feature is precomputed. One lacking some is precomputed too (and refused: serving answers
400) when it holds a model feature named like no column, or a feature of another feature list (a feature of the
dataset named like no column that the model reads neither as a feature nor as an extra, e.g. an earlier version's)
while a missing model feature could not be computed from its raw fields (:func:`missing_without`). Anything else is
raw fields.

A feature's *missing tree* says which absent columns leave it missing (null) whatever the others hold: a column name
(missing when absent), ``False`` (a literal: never missing), or ``["all" | "any", child, ...]`` (``coalesce`` is
missing when each argument is, every other operator when one is).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Tuple

SOURCE_FEATURES = "features"
SOURCE_RAW = "raw"


def missing_without(tree: Any, present: Collection[str]) -> bool:
    """Whether a feature of missing tree ``tree`` is missing whatever values the columns in ``present`` hold."""
    if isinstance(tree, str):
        return tree not in present
    if isinstance(tree, list) and tree and tree[0] in ("all", "any"):
        children = (missing_without(child, present) for child in tree[1:])
        return all(children) if tree[0] == "all" else any(children)
    return False


@dataclass(frozen=True)
class RecordKinds:
    """What serving's rule needs of a model: its dataset's name, its features in order, those of them named like no
    column, the dataset's other features named like no column it reads neither as features nor as extras, and the
    missing tree of each of its features (only needed when there are other features)."""

    dataset: str
    features: Tuple[str, ...]
    named_like_no_column: Tuple[str, ...] = ()
    other_features: Tuple[str, ...] = ()
    missing_when: Tuple[Tuple[str, Any], ...] = ()

    def other_list(self, record: Mapping[str, Any], missing: Sequence[str]) -> Tuple[List[str], List[str]]:
        """(other features, unfed) of a record lacking the model features ``missing``: the other list's features it
        holds, and those of ``missing`` its fields leave missing read as raw (none when it holds no other feature)."""
        order = self._other_order
        # The record's keys, not the dataset's other features, are walked: a record's cost is its own size.
        others = sorted((name for name in record if name in order), key=order.__getitem__)
        if not others:
            return [], []
        trees = self._trees
        # A feature without a tree (a spec written without them) counts as missing: serving refuses rather than guess.
        return others, [name for name in missing if missing_without(trees.get(name, ["any", name]), record)]

    @functools.cached_property
    def _other_order(self) -> Dict[str, int]:
        return {name: i for i, name in enumerate(self.other_features)}

    @functools.cached_property
    def _trees(self) -> Dict[str, Any]:
        return dict(self.missing_when)

    def source(self, record: Mapping[str, Any]) -> Tuple[str, List[str]]:
        """(``features`` | ``raw``, the model features it lacks when read as precomputed; none when raw)."""
        missing = [name for name in self.features if name not in record]
        if not missing:
            return SOURCE_FEATURES, []
        if any(name in record for name in self.named_like_no_column) or self.other_list(record, missing)[1]:
            # e.g. avg_charge_per_month given: the caller meant precomputed features, this model's or another list's.
            return SOURCE_FEATURES, missing
        return SOURCE_RAW, []

    def refusal(self, record: Mapping[str, Any], missing: Sequence[str]) -> Tuple[str, List[str]]:
        """(serving's words, the other list's features at fault) refusing a precomputed record lacking ``missing``."""
        others, unfed = self.other_list(record, missing)
        needs = f"a precomputed-feature record needs every model feature: {list(self.features)}"
        if not unfed:
            return f"missing feature {missing[0]!r} ({needs})", []
        # What happened and the fix first, the lists after: a 400 cut to MAX_ERROR_MESSAGE (core.contract) loses the
        # end of the words, and a wide model's lists alone pass it.
        return (f"missing feature {missing[0]!r}: the record was written for another feature list (an earlier "
                f"version's?); send every feature of this model (a record may hold the features of both lists while "
                f"versions change), or raw fields only. Its {', '.join(map(repr, others))} "
                f"{'is a feature' if len(others) == 1 else 'are features'} of dataset {self.dataset!r} that this model "
                f"does not read, and read as raw fields it would be scored with {', '.join(map(repr, unfed))} missing "
                f"({needs})"), others

    def to_json(self, with_features: bool = True) -> Dict[str, Any]:
        """As JSON; without the features when the holder carries them already (the by-id spec's own list)."""
        return {"dataset": self.dataset, **({"features": list(self.features)} if with_features else {}),
                "named_like_no_column": list(self.named_like_no_column), "other_features": list(self.other_features),
                "missing_when": dict(self.missing_when)}

    def document(self, with_features: bool = True) -> str:
        return json.dumps(self.to_json(with_features), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, body: Any, features: Optional[Sequence[str]] = None) -> Optional["RecordKinds"]:
        """Inverse of :meth:`to_json` (None for None), given ``features`` when written without them; ValueError naming
        what is wrong."""
        if body is None:
            return None
        if isinstance(body, dict) and features is not None:
            body = {**body, "features": list(features)}
        if not isinstance(body, dict) or not isinstance(body.get("features"), list):
            raise ValueError(f"expected an object with 'dataset', 'features', 'named_like_no_column', 'other_features' "
                             f"and 'missing_when', got {type(body).__name__}")
        return cls(dataset=str(body.get("dataset") or ""), features=tuple(map(str, body["features"])),
                   named_like_no_column=tuple(map(str, body.get("named_like_no_column") or ())),
                   other_features=tuple(map(str, body.get("other_features") or ())),
                   missing_when=tuple((str(k), v) for k, v in (body.get("missing_when") or {}).items()))
