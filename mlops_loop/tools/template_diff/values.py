"""Structural diff of two JSON values, with list items matched by their identifying field."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from .model import JSON_SEGMENT, MISSING, PropertyChange
from .normalise import ASSET_HASH, map_strings


# Identifying fields of list items: lists of such dicts are matched by that field, so one inserted
# statement or pipeline step does not show up as a change of every later item.
_LIST_ITEM_KEYS = ("Sid", "Name", "Id", "Key", "VariantName", "PolicyName", "AttributeName", "FeatureName", "ParameterKey")

def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _list_item_key(old: list, new: list) -> Optional[str]:
    items = old + new
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _LIST_ITEM_KEYS:
        if all(_is_scalar(i.get(key, MISSING)) and key in i for i in items):
            if len({i[key] for i in old}) == len(old) and len({i[key] for i in new}) == len(new):
                return key
    return None


def diff_values(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[PropertyChange]:
    """Every leaf-level difference between ``old`` and ``new`` (MISSING marks an absent side)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[PropertyChange] = []
        for key in list(old) + [k for k in new if k not in old]:
            out.extend(diff_values(old.get(key, MISSING), new.get(key, MISSING), path + (key,)))
        return out
    if isinstance(old, list) and isinstance(new, list):
        return _diff_lists(old, new, path)
    return [PropertyChange(path, old, new)]


def _diff_lists(old: list, new: list, path: tuple[str, ...]) -> list[PropertyChange]:
    if all(_is_scalar(v) for v in old + new):
        # One change for the whole list; rendered as "+added, -removed" (or "reordered").
        return [PropertyChange(path, old, new)]
    key = _list_item_key(old, new)
    if key is not None:
        old_by = {i[key]: i for i in old}
        new_by = {i[key]: i for i in new}
        out = []
        for k in list(old_by) + [k for k in new_by if k not in old_by]:
            out.extend(diff_values(old_by.get(k, MISSING), new_by.get(k, MISSING), path + (f"[{key}={k}]",)))
        return out
    # No identifying field: identical items match first; what is left pairs up in order.
    new_left = list(enumerate(new))
    old_left = []
    for oi, item in enumerate(old):
        match = next((n for n in new_left if _canonical(n[1]) == _canonical(item)), None)
        if match is None:
            old_left.append((oi, item))
        else:
            new_left.remove(match)
    out = []
    for (oi, o), (ni, n) in zip(old_left, new_left):
        out.extend(diff_values(o, n, path + (f"[{ni}]",)))
    for oi, o in old_left[len(new_left):]:
        out.append(PropertyChange(path + (f"[{oi}]",), o, MISSING))
    for ni, n in new_left[len(old_left):]:
        out.append(PropertyChange(path + (f"[{ni}]",), MISSING, n))
    return out


def shorten(value: Any, limit: int = 80) -> str:
    """A one-line rendering of ``value``, cut to ``limit`` characters with an ellipsis."""
    if value is MISSING:
        return "(absent)"
    if isinstance(value, dict) and set(value) == {JSON_SEGMENT}:
        value = value[JSON_SEGMENT]
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_change(change: PropertyChange, limit: int = 80) -> str:
    """``old -> new`` for values, with both sides shortened around where they first differ; for lists of plain
    values, ``--flag: old -> new`` per changed argument of a command line, else ``+a, -b``."""
    if change.moved:
        return change.moved
    old, new = change.old, change.new
    prefix = ""
    if change.asset_only:
        # The hashes are what changed: show their heads rather than cutting them off at the end.
        old, new = (map_strings(v, lambda s: ASSET_HASH.sub(lambda m: m.group(0)[:12] + "…", s)) for v in (old, new))
        prefix = "asset changed: "
    if isinstance(old, list) and isinstance(new, list) and all(_is_scalar(v) for v in old + new):
        flags = _changed_flag_values(old, new)
        if flags:
            return prefix + shorten(", ".join(f"{flag}: {shorten(o, 40)} -> {shorten(n, 40)}" for flag, o, n in flags),
                                    limit * 2)
        added = [v for v in new if v not in old]
        removed = [v for v in old if v not in new]
        if not added and not removed:
            return prefix + "reordered"
        text = ", ".join([f"+{shorten(v, 60)}" for v in added] + [f"-{shorten(v, 60)}" for v in removed])
        return prefix + shorten(text, limit * 2)
    return prefix + " -> ".join(_shorten_pair(old, new, limit))


def _changed_flag_values(old: list, new: list) -> list:
    """``[(flag, old value, new value)]`` when the lists are one command line (``["--x", "1", ...]``) whose changes
    are only values right after an unchanged ``--flag``; else ``[]``. Shown as ``+1, -2``, a changed threshold
    would not say which one it is."""
    if len(old) != len(new):
        return []
    changed = [i for i, (o, n) in enumerate(zip(old, new)) if o != n]
    flagged = all(i > 0 and isinstance(old[i - 1], str) and old[i - 1].startswith("--") and old[i - 1] == new[i - 1]
                  for i in changed)
    return [(old[i - 1], old[i], new[i]) for i in changed] if changed and flagged else []


def _shorten_pair(old: Any, new: Any, limit: int) -> tuple:
    """Both sides shortened to ``limit``; when they first differ beyond what that keeps (two long ARNs alike up to
    their last path segment), both are shown from a little before that point, so the difference is visible."""
    texts = [shorten(value, 10**9) for value in (old, new)]
    if all(len(text) <= limit for text in texts) or MISSING in (old, new):
        return shorten(old, limit), shorten(new, limit)
    common = len(os.path.commonprefix(texts))
    if common < limit - 10:
        return shorten(old, limit), shorten(new, limit)
    start = common - limit // 4
    return tuple("…" + shorten(text[start:], limit - 1) for text in texts)
