"""The base of every config model: frozen, unknown fields refused, and no silent type coercion.

Pydantic's default (lax) mode turns ``psi_threshold: true`` into 1.0, ``"0.2"`` into 0.2 and
``"yes"`` into True. In a config file that is a mistake to report, not to repair: a boolean is not a
number, and a quoted number or boolean is a string. Numbers given for a float field stay accepted
(``max_auc_drop: 0`` means 0.0).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, model_validator


def _kinds(annotation: Any) -> set[str]:
    """What an annotation accepts: any of ``number``, ``bool``, ``str`` and ``other``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return set().union(*(_kinds(type(v)) for v in typing.get_args(annotation)))
    if annotation is bool:
        return {"bool"}
    if annotation in (int, float):
        return {"number"}
    if annotation is str:
        return {"str"}
    if annotation is type(None):
        return set()
    return {"other"}


def coercion_problem(annotation: Any, value: Any) -> str:
    """Why ``value`` would only fit ``annotation`` by coercion ("" when it fits as it is)."""
    kinds = _kinds(annotation)
    if "other" in kinds:
        return ""
    if isinstance(value, bool) and "bool" not in kinds and "number" in kinds:
        return f"must be a number, not the boolean {str(value).lower()}"
    if isinstance(value, str) and "str" not in kinds and kinds & {"number", "bool"}:
        what = " or ".join(k if k == "number" else "boolean (true/false)" for k in sorted(kinds & {"number", "bool"}))
        return f"must be a {what}, not the string {value!r}" + ("; write it without quotes" if _unquoted(value) else "")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and kinds == {"bool"}:
        return f"must be true or false, not the number {value}"
    return ""


def _unquoted(text: str) -> bool:
    """Whether ``text`` is a number or boolean that quotes turned into a string."""
    if text.strip().lower() in ("true", "false"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


class StrictModel(BaseModel):
    """Frozen, ``extra="forbid"``, and a value of the wrong kind is refused rather than coerced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_coercion(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        for name, field in cls.model_fields.items():
            key = field.alias if field.alias in data else name
            if key in data:
                problem = coercion_problem(field.annotation, data[key])
                if problem:
                    raise ValueError(f"{key}: {problem}")
        return data
