"""Create-only properties, from the CloudFormation resource provider schemas bundled with cfn-lint."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable, Iterator, Optional, Sequence

from .model import MISSING


@lru_cache(maxsize=None)
def create_only_properties(resource_type: str, *, region: str = "us-east-1") -> Optional[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(createOnlyProperties, conditionalCreateOnlyProperties) JSON pointers for ``resource_type``.

    None when cfn-lint has no schema for the type (the caller reports "replacement unknown").
    """
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
    from cfnlint.schema._exceptions import ResourceNotFoundError

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except ResourceNotFoundError:
        return None
    return tuple(schema.get("createOnlyProperties", [])), tuple(schema.get("conditionalCreateOnlyProperties", []))


def _values_at(value: Any, parts: Sequence[str]) -> Iterator[Any]:
    """Values at a schema pointer below ``/properties`` (``*`` = every list item)."""
    if not parts:
        yield value
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(value, list):
            for item in value:
                yield from _values_at(item, rest)
        else:
            yield value if value is MISSING else MISSING
        return
    if isinstance(value, dict):
        yield from _values_at(value.get(head, MISSING), rest)
    elif isinstance(value, list):
        # A pointer through an array without "*": CloudFormation means every item.
        for item in value:
            yield from _values_at(item, parts)
    else:
        yield MISSING


def changed_create_only(old_props: dict, new_props: dict, *, pointers: Iterable[str]) -> list[str]:
    """The create-only pointers (as ``A/B`` paths) whose values differ between the two property sets."""
    changed = []
    for pointer in pointers:
        parts = pointer.split("/")[2:]  # "/properties/A/B" -> ["A", "B"]
        if list(_values_at(old_props, parts)) != list(_values_at(new_props, parts)):
            changed.append("/".join(parts))
    return changed
