"""The configuration reference (docs/configuration.md) and the loader stay in step.

*Every setting: its default and bounds* (docs/configuration.md, under Configuration) has one table per block of the config, one
row per key: its default, the values it allows and what it does. These tests walk the loader's models
(``mlops_loop/config``, pydantic, every block reachable from ``AppConfig``, nested) and the dataset declaration's
keys (``pipeline_code/catalog.py``) and hold the tables to them both ways: a key the loader accepts without a row,
a default or a numeric bound that differs, and a row or a key of the documentation's YAML samples that the loader does not
have (a typo, a removed key) each fail, naming the key. They read no config: the sample model line-up is not theirs.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mlops_loop.config.loader import _TOP_LEVEL
from mlops_loop.config.app_config import AppConfig
from mlops_loop.config.environment import EnvironmentConfig
from mlops_loop.config.gate import GateConfig
from mlops_loop.config.model import ModelConfig
from pipeline_code.catalog import _COLUMN_KEYS, _DATASET_KEYS, _FEATURE_KEYS
from tests.support import docs

SECTION = "### Every setting: its default and bounds"
TOP_LEVEL = "top level"
# Keys the loader sets itself, from the mapping key the block is written under (a name written there is overwritten).
FROM_THE_KEY = {ModelConfig: {"name"}, EnvironmentConfig: {"name"}}
# Blocks that are no pydantic model: the dataset declaration, whose keys catalog.parse_dataset accepts.
DECLARATIONS = {"datasets.<>": _DATASET_KEYS, "datasets.<>.columns.<>": _COLUMN_KEYS,
                "datasets.<>.features.<>": _FEATURE_KEYS}
# Free-form mappings of a model whose keys are another block's.
KEYS_OF = {(ModelConfig, "gate"): GateConfig}


@dataclass(frozen=True)
class Row:
    key: str
    default: str
    allowed: str
    does: str
    line: str  # file:line, as messages name it


@dataclass(frozen=True)
class Table:
    label: str
    rows: tuple[Row, ...]


def _tables() -> list[Table]:
    """Each block's table: a bold label line (``**`models.<model>.serving`**`` or ``**top level**``), then its rows."""
    section = docs.section(SECTION)
    body, first = section.text, section.line
    tables: list[Table] = []
    label: Optional[str] = None
    rows: list[Row] = []
    for number, line in enumerate(body.splitlines(), start=first):
        bold = re.match(r"^\*\*(?:`([^`]+)`|(top level))\*\*", line)
        if bold:
            if label is not None:
                tables.append(Table(label, tuple(rows)))
            label, rows = bold.group(1) or bold.group(2), []
        elif line.startswith("| ") and not line.startswith(("| key |", "| --- |")):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            assert len(cells) == 4, f"{section.name}:{number}: a row has key | default | allowed | what it does, got {cells}"
            key = re.fullmatch(r"`([a-z][a-z0-9_]*)`", cells[0])
            assert key, f"{section.name}:{number}: the first cell is one key in backticks, got {cells[0]!r}"
            assert label is not None, f"{section.name}:{number}: a row before any block label"
            rows.append(Row(key.group(1), cells[1], cells[2], cells[3], f"{section.name}:{number}"))
    if label is not None:
        tables.append(Table(label, tuple(rows)))
    return tables


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _keys(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The keys a config file writes in ``model``'s block (aliases, e.g. ``async``), with their fields."""
    skip = FROM_THE_KEY.get(model, set())
    return {field.alias or name: field for name, field in model.model_fields.items() if name not in skip}


def _reachable() -> dict[type[BaseModel], str]:
    """Every model class a config reaches from AppConfig, with the first path to it."""
    found: dict[type[BaseModel], str] = {}

    def walk(model: type[BaseModel], path: str) -> None:
        if model in found:
            return
        found[model] = path
        for key, field in _keys(model).items():
            mapping = typing.get_origin(field.annotation) is dict
            for sub in _models_in(field.annotation):
                walk(sub, f"{path}.{key}.<name>" if mapping else f"{path}.{key}".lstrip("."))

    walk(AppConfig, "")
    return found


def _resolve(label: str) -> Any:
    """The block a table's label names: a model class, a declaration's keys, or the top level."""
    if label == TOP_LEVEL:
        return TOP_LEVEL
    shape = re.sub(r"<[^>]+>", "<>", label)
    if shape in DECLARATIONS:
        return DECLARATIONS[shape]
    current: type[BaseModel] = AppConfig
    mapped: Optional[type[BaseModel]] = None
    for segment in label.split("."):
        if mapped is not None:
            assert re.fullmatch(r"<[a-z_]+>", segment), f"{label}: {segment!r} stands for a name: write it as <name>"
            current, mapped = mapped, None
            continue
        keys = _keys(current)
        assert segment in keys, (f"{label}: the loader's {current.__name__} has no key {segment!r}; "
                                 f"keys: {', '.join(keys)}")
        annotation = keys[segment].annotation
        models = _models_in(annotation)
        assert len(models) == 1, f"{label}: {segment!r} is no block of its own"
        if typing.get_origin(annotation) is dict:
            mapped = models[0]
        else:
            current = models[0]
    assert mapped is None, f"{label}: ends at a mapping; add .<name> for its entries"
    return current


def _documented() -> dict[Any, Table]:
    documented: dict[Any, Table] = {}
    for table in _tables():
        block = _resolve(table.label)
        assert block not in documented, f"{table.label} documents the block of {documented[block].label} again"
        documented[block] = table
    return documented


def _loader_keys(block: Any) -> set[str]:
    if block == TOP_LEVEL:
        return set(_TOP_LEVEL)
    if isinstance(block, tuple):
        return set(block)
    return set(_keys(block))


def _pydantic_rows() -> Iterator[tuple[str, Row, FieldInfo]]:
    for block, table in _documented().items():
        keys = _keys(AppConfig) if block == TOP_LEVEL else _keys(block) if inspect.isclass(block) else {}
        for row in table.rows:
            if row.key in keys:
                yield f"{table.label}.{row.key}" if block != TOP_LEVEL else row.key, row, keys[row.key]


def _number(value: float) -> str:
    """A bound as the tables write it: 10,000 and 0.5, never 10000.0."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _numbers(text: str) -> set[float]:
    return {float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _same(documented: Any, default: Any) -> bool:
    default = _plain(default)
    if isinstance(default, bool) or isinstance(documented, bool):
        return documented is default
    return documented == default


def _yaml_or_text(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _accepts_null(field: FieldInfo) -> bool:
    return type(None) in typing.get_args(field.annotation)


def test_every_block_of_the_loader_has_a_table():
    """GIVEN every block a config reaches from AppConfig (and the top level and the dataset declaration)
    THEN the reference has a table for each, once (a label the loader cannot follow fails, naming the key)."""
    documented = _documented()
    missing = [path for model, path in _reachable().items() if model is not AppConfig and model not in documented]
    missing += [shape for shape, keys in DECLARATIONS.items() if keys not in documented]
    missing += [TOP_LEVEL] if TOP_LEVEL not in documented else []
    assert not missing, f"The documentation ({SECTION}) has no table for: {missing}"


@pytest.mark.parametrize("table", _tables(), ids=lambda t: t.label)
def test_each_table_has_exactly_the_loaders_keys(table):
    """GIVEN one block's table WHEN its rows are compared with the keys the loader accepts in that block
    THEN none is missing, none is unknown (a typo, a removed key) and none is written twice."""
    keys = _loader_keys(_resolve(table.label))
    rows = [row.key for row in table.rows]
    twice = sorted({k for k in rows if rows.count(k) > 1})
    assert not twice, f"{table.label}: rows written twice: {twice}"
    problems = []
    missing = sorted(keys - set(rows))
    if missing:
        problems.append(f"{table.label}: the loader accepts {missing}, which the documentation ({SECTION}) does not document; "
                        "add a row: key, default, allowed values, what it does")
    unknown = sorted(set(rows) - keys)
    if unknown:
        problems.append(f"{table.label}: the documentation ({SECTION}) documents {unknown}, which the loader does not accept; "
                        f"keys: {sorted(keys)}")
    assert not problems, "\n".join(problems)


def test_defaults_are_the_loaders():
    """GIVEN each documented key of a loader model WHEN its default cell is read as YAML (its first `...`)
    THEN it is the loader's default; a key without one says **required**, a nested block says (block)."""
    wrong = []
    for path, row, field in _pydantic_rows():
        if field.is_required():
            ok, want = "**required**" in row.default, "**required**"
        elif isinstance(field.default, BaseModel):
            ok, want = row.default == "(block)", "(block)"
        else:
            shown = re.match(r"`([^`]*)`", row.default)
            want = f"`{json.dumps(_plain(field.default))}`"
            ok = bool(shown) and _same(yaml.safe_load(shown.group(1)), field.default)
        if not ok:
            wrong.append(f"{row.line}: {path}: default {row.default!r}, the loader's is {want}")
    assert not wrong, "\n".join(wrong)


def test_bounds_are_the_loaders():
    """GIVEN each documented key of a loader model WHEN its allowed cell is compared with the field's constraints
    THEN every numeric limit appears (an exclusive one as "> x" / "< x"), every value of a fixed list appears, and a
    key that takes null says `null` in its row."""
    wrong = []
    for path, row, field in _pydantic_rows():
        numbers = _numbers(row.allowed)
        for meta in field.metadata:
            for attr in ("ge", "le"):
                limit = getattr(meta, attr, None)
                if limit is not None and float(limit) not in numbers:
                    wrong.append(f"{row.line}: {path}: allowed {row.allowed!r} lacks {_number(limit)}")
            for attr, sign in (("gt", ">"), ("lt", "<")):
                limit = getattr(meta, attr, None)
                # An exclusive limit reads "> 0", not "0–1": 1,000 and 0.5 are other numbers than 1 and 0.
                exclusive = rf"{sign}\s*{re.escape(_number(limit))}(?!\.?\d|,\d)" if limit is not None else None
                if exclusive and not re.search(exclusive, row.allowed):
                    wrong.append(f"{row.line}: {path}: allowed {row.allowed!r} lacks '{sign} {_number(limit)}'")
        if typing.get_origin(field.annotation) is typing.Literal:
            shown = {_yaml_or_text(v) for v in re.findall(r"`([^`]+)`", row.allowed)}
            absent = [v for v in typing.get_args(field.annotation) if v not in shown]
            if absent:
                wrong.append(f"{row.line}: {path}: allowed {row.allowed!r} lacks {absent}")
        if _accepts_null(field) and "`null`" not in f"{row.default} {row.allowed} {row.does}":
            wrong.append(f"{row.line}: {path}: the loader takes null here; say what `null` does")
    assert not wrong, "\n".join(wrong)


def _samples() -> Iterator[tuple[str, dict]]:
    """The documentation's YAML blocks that are config (their top-level keys are the loader's), each with its file:line."""
    for doc in docs.documents():
        for match in re.finditer(r"```yaml\n(.*?)```", doc.text, re.S):
            document = yaml.safe_load(match.group(1))
            if isinstance(document, dict) and set(document) <= _TOP_LEVEL:
                yield f"{doc.name}:{doc.text[:match.start()].count(chr(10)) + 1}", document


def _unknown_keys(value: Any, block: Any, path: str) -> Iterator[str]:
    """The keys of ``value`` (written in ``block``) that the loader does not accept, as dotted paths."""
    if not isinstance(value, dict):
        return
    if isinstance(block, tuple):  # a dataset declaration
        for key, sub in value.items():
            if key not in block:
                yield f"{path}.{key}"
            elif block is _DATASET_KEYS and key in ("columns", "features") and isinstance(sub, dict):
                inner = _COLUMN_KEYS if key == "columns" else _FEATURE_KEYS
                for name, entry in sub.items():
                    yield from _unknown_keys(entry, inner, f"{path}.{key}.{name}")
        return
    keys = _keys(block)
    for key, sub in value.items():
        if key not in keys:
            yield f"{path}.{key}"
            continue
        annotation = keys[key].annotation
        models = _models_in(annotation)
        if (block, key) in KEYS_OF:
            yield from _unknown_keys(sub, KEYS_OF[block, key], f"{path}.{key}")
        elif models and typing.get_origin(annotation) is dict and isinstance(sub, dict):
            for name, entry in sub.items():
                yield from _unknown_keys(entry, models[0], f"{path}.{key}.{name}")
        elif models:
            yield from _unknown_keys(sub, models[0], f"{path}.{key}")


def test_the_yaml_samples_write_only_keys_the_loader_has():
    """GIVEN every YAML sample of the documentation that is config WHEN its keys are walked through the loader's blocks
    THEN each exists where it is written (a typo or a removed key in a sample fails, naming it)."""
    unknown = []
    for line, document in _samples():
        for top, value in document.items():
            if top == "project":
                continue
            if top == "defaults":
                found = _unknown_keys(value, EnvironmentConfig, "defaults")
            else:
                found = (k for name, entry in (value or {}).items()
                         for k in _unknown_keys(entry, DECLARATIONS["datasets.<>"] if top == "datasets" else
                                                ModelConfig if top == "models" else EnvironmentConfig, f"{top}.{name}"))
            unknown += [f"{line}: {key}" for key in found]
    assert not unknown, "keys the loader does not accept:\n" + "\n".join(unknown)


def test_the_readmes_partition_note_lists_exactly_the_regions_the_config_accepts():
    """*Partitions* (docs/deploying.md) names the supported regions: the config's allow-list, no more and no fewer."""
    from mlops_loop.config.instance_types import SUPPORTED_REGIONS

    text = docs.section("**Partitions: only the commercial `aws` partition is supported.**").text
    note = text[:text.index("\n\n")]
    listed = re.search(r"\(`mlops_loop/config/instance_types.py`: ([^)]*)\)", note).group(1)
    assert [r.strip() for r in listed.split(",")] == list(SUPPORTED_REGIONS)
