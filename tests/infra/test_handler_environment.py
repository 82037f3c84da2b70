"""Every environment variable a construct gives one of our Lambda handlers is a name that handler reads.

A handler reads its settings with defaults (``environ.get("COOLDOWN_HOURS", "24")``), so a variable renamed or
misspelt on one side is no error anywhere: the handler runs on its default. The names are the handler's; this checks
every function of every synthesized template (the user's config, and the serving-mode and multi-model scenarios) whose
code is ``pipeline_code.handlers.<module>.handler`` against the string literals of that module and of the
``pipeline_code.core`` modules it imports (where a name shared with a job lives, e.g. ``online_features``), and of the
handler's own parts it imports (the deploy handler's settings live in ``pipeline_code.handlers.deploy``).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Iterable, Iterator


HANDLER_PREFIX = "pipeline_code.handlers."
# Imported modules whose literals count as the handler's: the shared core, and the deploy handler's parts.
FOLLOWED = ("pipeline_code.core", "pipeline_code.handlers.deploy")


def functions(template: dict) -> Iterator[tuple[str, str, dict]]:
    """(logical id, handler module, environment variables) of every Lambda function of ours in ``template``."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        properties = resource.get("Properties") or {}
        handler = properties.get("Handler")
        if isinstance(handler, str) and handler.startswith(HANDLER_PREFIX):
            module = handler.rsplit(".", 1)[0]
            yield logical_id, module, dict((properties.get("Environment") or {}).get("Variables") or {})


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"no module {module}"
    return Path(spec.origin)


def literals(module: str) -> set[str]:
    """Every string literal of ``module`` and of the modules of :data:`FOLLOWED` it imports."""
    seen: set[str] = set()
    out: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse(_source(name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.add(node.value)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(FOLLOWED):
                pending.append(node.module)
                pending.extend(f"{node.module}.{a.name}" for a in node.names
                               if importlib.util.find_spec(node.module).submodule_search_locations)
            elif isinstance(node, ast.Import):
                pending.extend(a.name for a in node.names if a.name.startswith(FOLLOWED))
    return out


def unread(templates: Iterable[tuple[str, dict]]) -> list[str]:
    """One line per variable a function is given that its handler module never names."""
    problems = []
    for where, template in templates:
        for logical_id, module, variables in functions(template):
            known = literals(module)
            problems += [f"{where}: {logical_id} ({module}) is given {name}, which {module} never reads; rename it to "
                         "the name the handler reads, or read it there" for name in sorted(variables) if name not in known]
    return problems


def test_every_variable_a_handler_is_given_is_one_it_reads(synthesized, modes, pooled):
    templates = [(f"{env}/{stack}", s.template) for (env, stack), s in synthesized.stacks.items()]
    templates += [(f"modes/{n}", t) for n, t in (("Serving", modes.serving), ("Operations", modes.operations))]
    templates += [(f"pooled/{n}", t) for n, t in (("Serving", pooled.serving), ("Operations", pooled.operations))]
    checked = {module for _, t in templates for _, module, _ in functions(t)}
    # The check saw the handlers the scenarios deploy (not none because a handler moved).
    assert {"pipeline_code.handlers.deploy_on_approval", "pipeline_code.handlers.retrain_trigger"} <= checked, checked
    assert unread(templates) == []


def test_a_variable_the_handler_does_not_read_is_named():
    """GIVEN a function of the retrain trigger given COOLDOWN_HOUR (the handler reads COOLDOWN_HOURS) THEN the line
    names the function, the handler and the variable; the names it reads pass."""
    template = {"Resources": {"Trigger": {"Type": "AWS::Lambda::Function", "Properties": {
        "Handler": "pipeline_code.handlers.retrain_trigger.handler",
        "Environment": {"Variables": {"COOLDOWN_HOUR": "12", "MAX_STARTS_PER_DAY": "2", "NAME_PREFIX": "p"}}}},
        "Other": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "index.handler",
                                                                   "Environment": {"Variables": {"X": "1"}}}}}}
    assert unread([("dev/Operations", template)]) == [
        "dev/Operations: Trigger (pipeline_code.handlers.retrain_trigger) is given COOLDOWN_HOUR, which "
        "pipeline_code.handlers.retrain_trigger never reads; rename it to the name the handler reads, or read it there"]
