"""Load and validate ``config/mlops-loop.yaml`` (or the file ``location.resolve_config`` names instead).

The file has five top-level keys::

    project: mlops-loop          # prefix of every physical name
    defaults: {...}              # merged (deeply) under every environment
    datasets: {<name>: {...}}    # columns, keys, labels and features (pipeline_code.catalog)
    models: {<name>: {...}}      # what to train and serve, each on one dataset
    environments: {<name>: {...}}

Validation errors are collected and raised together as one :class:`ConfigError` whose
lines each name the environment or model, the field and the allowed values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml
from pydantic import ValidationError

from pipeline_code.catalog import Dataset, DeclarationError, parse_dataset
from pipeline_code.core.contract import DEFAULT_PROJECT, environment_prefix
from pipeline_code.core.problem import BINARY

from ..naming import (
    LAKE_BUCKETS,
    RESERVED_BUCKET_PREFIXES,
    RESERVED_PARAMETER_PREFIXES,
    bucket_name_problem,
    checked_feature_group_name,
)
from .budget import budget_problems
from .native_monitor import native_monitor_problems
from .schedules import monitoring_schedule
from .app_config import AppConfig, CROSS_CHECKED
from .cross_checks import (accelerator_problems, account_wide_name_problems, capture_problems,
                           environment_name_problems, inferentia2_problems, label_delay_problems, model_name_problems,
                           multi_model_problems, network_problems, offer_problems, owner_contact_problems,
                           serving_where, team_approver_problems, training_problems)
from .environment import EnvironmentConfig
from .model import ModelConfig

_NAMED_FIELD = re.compile(r"^([a-z_][a-z0-9_.]*): (.*)$", re.S)
_TOP_LEVEL = {"project", "defaults", "datasets", "models", "environments"}
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{1,19}$")  # as AppConfig.project


class ConfigError(ValueError):
    """Invalid configuration; the message lists every problem found, one per line."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"invalid configuration in {source}:\n" + "\n".join(f"  - {p}" for p in problems))


def load_config(path: str | Path) -> AppConfig:
    """Read and validate the YAML file at ``path``; a key repeated in one mapping is an error."""
    path = Path(path)
    try:
        raw = _load_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found; name an existing file with MLOPS_LOOP_CONFIG=<file> (or give it: "
                                       "-c mlops-loop:config=<file> to cdk, --config <file> to a tool)"])
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [_yaml_problem(exc)]) from None
    except _DuplicateKeys as exc:
        raise ConfigError(str(path), exc.problems) from None
    return parse_config(raw, source=str(path))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: where it is and what the parser found (PyYAML's own text spans lines)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = getattr(exc, "problem", None) or str(exc)
    return f"not valid YAML{where}: {' '.join(str(what).split())}; fix the syntax there"


class _DuplicateKeys(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key repeated within one mapping.

    YAML itself keeps the last one silently: a pasted second ``churn:`` block would replace the first
    (another dataset, a lost feature group) with synth, nag and cfn-lint all clean.
    """
    try:
        return _load_yaml_with(_FAST_LOADER, text)
    except yaml.YAMLError:
        # libyaml's messages leave out what it found (the tab, the alias's name); PyYAML's own parser says it.
        return _load_yaml_with(yaml.SafeLoader, text)


# libyaml (when PyYAML was built with it) parses a config about 8x faster; the documents are the same.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml_with(loader_class: Any, text: str) -> Any:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        problems = list(_duplicates(node, ()))
        if problems:
            raise _DuplicateKeys(problems)
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _duplicates(node: Any, path: tuple[str, ...]):
    """One line per key that appears twice in the same mapping: its path and both line numbers."""
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            where = ".".join((*path, key))
            if key in first_line:
                yield (f"field '{where}': duplicate key at line {line} (first at line {first_line[key]}); YAML keeps "
                       "only the last one, so merge the two or rename one")
            else:
                first_line[key] = line
            yield from _duplicates(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicates(item, (*path, str(index)))


def parse_config(raw: Any, *, source: str = "<config>") -> AppConfig:
    """Validate an already-parsed config document."""
    if not isinstance(raw, Mapping):
        raise ConfigError(source, ["the document must be a mapping with keys: " + ", ".join(sorted(_TOP_LEVEL))])
    problems: list[str] = [
        f"unknown top-level key {key!r}; allowed: {', '.join(sorted(_TOP_LEVEL))}" for key in raw if key not in _TOP_LEVEL
    ]
    defaults = raw.get("defaults") or {}
    datasets = _datasets(_section(raw, "datasets", problems), problems)
    models: dict[str, ModelConfig] = {}
    model_section = _section(raw, "models", problems)
    for name, body in model_section.items():
        model = _validate(ModelConfig, {**(body or {}), "name": name}, f"model {name!r}", problems,
                          context={"datasets": datasets})
        if model is not None:
            models[name] = model
    environments: dict[str, EnvironmentConfig] = {}
    deployed: set = set()
    for name, body in _section(raw, "environments", problems).items():
        merged = _deep_merge(defaults, {**(body or {}), "name": name})
        listed = merged.get("models")
        deployed.update(m for m in (listed if isinstance(listed, (list, tuple)) else []) if isinstance(m, str))
        merged["serving"] = _merged_serving(name, merged, body or {}, model_section, set(models), problems)
        env = _validate_environment(merged, body or {}, defaults, f"environment {name!r}", problems)
        if env is not None:
            environments[name] = env
            unknown = [m for m in env.models if m not in model_section]
            if unknown:
                problems.append(
                    f"environment {name!r}: field 'models': unknown model(s) {unknown}; "
                    f"allowed: {', '.join(sorted(model_section)) or '(none)'}"
                )
    default_serving = defaults.get("serving") if isinstance(defaults, Mapping) else None
    for model in default_serving if isinstance(default_serving, Mapping) else ():
        if model not in deployed:  # a default for the environments that deploy it: none does
            problems.append(f"defaults: field 'serving.{model}': overrides a model no environment deploys; deployed: "
                            f"{', '.join(sorted(map(str, deployed))) or '(none)'}")
    problems.extend(model_name_problems(model_section))
    project = raw.get("project", DEFAULT_PROJECT)
    if isinstance(project, str):  # a project of another type is reported by its own check
        problems.extend(environment_name_problems(project, models, environments))
        problems.extend(account_wide_name_problems(project, models, environments))
    problems.extend(accelerator_problems(models, environments))
    problems.extend(multi_model_problems(models, environments))
    problems.extend(training_problems(models, environments, declared=model_section))
    problems.extend(inferentia2_problems(models, environments))
    problems.extend(offer_problems(models, environments))
    problems.extend(capture_problems(models, environments))
    problems.extend(network_problems(models, environments))
    problems.extend(label_delay_problems(models, environments))
    problems.extend(budget_problems(environments))
    problems.extend(team_approver_problems(models, environments))
    problems.extend(owner_contact_problems(models))
    problems.extend(_project_name_problems(raw.get("project", DEFAULT_PROJECT), environments))
    if problems:
        raise ConfigError(source, problems)
    try:
        config = AppConfig.model_validate(
            {"project": raw.get("project", DEFAULT_PROJECT), "datasets": datasets, "models": models,
             "environments": environments},
            context={"datasets": datasets, CROSS_CHECKED: True},
        )
    except ValidationError as exc:
        raise ConfigError(source, _format(exc, "app")) from None
    problems = _resource_problems(config)
    if problems:
        raise ConfigError(source, problems)
    return config


def _resource_problems(config: AppConfig) -> list[str]:
    """Combinations each valid on its own that a resource would refuse: found here, one line naming the
    field, instead of as a traceback from the construct that builds the resource.

    Today that is a dataset whose feature group name Feature Store would refuse, scoring by id without the
    online store, and native Model Monitor
    (opted into per model) on a model that is not binary, on a monitoring schedule it cannot run, with a decision
    threshold only training chooses, or with a label delay that reaches past the captured requests kept
    (:func:`~mlops_loop.config.native_monitor.native_monitor_problems`). Other
    physical names need no check of their own: the bucket-name budget (see :func:`_project_name_problems`) bounds
    the environment prefix and the name fields are short, which keeps pipeline, endpoint, schedule, role,
    function and alarm names within their services' limits (``tests/infra/test_physical_names.py`` proves
    every name in the templates against its service's rule).
    """
    problems = _feature_group_problems(config)
    for env in config.environments.values():
        problems += _by_id_problems(config, env)
        for model in config.models_of(env):
            if not config.serving_of(env, model).native_model_monitor:
                continue
            if model.problem_type != BINARY:
                # Its bias and explainability jobs are configured for a binary score and threshold.
                problems.append(f"model {model.name!r}: field 'serving.native_model_monitor': supported for "
                                f"{BINARY} models only (this one is {model.problem_type}); our own drift monitor "
                                "covers every problem type")
                continue
            try:
                schedule = monitoring_schedule(env.monitoring.schedule)
            except ValueError as exc:
                problems.append(f"environment {env.name!r}: field 'monitoring.schedule': {exc} (model {model.name!r} "
                                "sets serving.native_model_monitor, and Model Monitor runs no other schedule)")
                continue
            serving = config.serving_of(env, model)
            where = serving_where(env, model, serving, None, "serving.native_model_monitor",
                                  overridden=serving.native_model_monitor != model.serving.native_model_monitor)
            problems += native_monitor_problems(env, model, schedule.period_seconds, where)
    return problems


# Lambda keeps 100 of an account's default 1,000 concurrent executions unreserved; the deploy handler and the
# retrain trigger reserve one each.
MAX_RESERVED_BY_ID = 1000 - 100 - 2


def _by_id_problems(config: AppConfig, env: EnvironmentConfig) -> list[str]:
    """Scoring by id without the online store, a max age the store's TTL makes unreachable, and more reserved
    concurrency than an account can give."""
    problems = []
    reserved = 0
    for model in config.models_of(env):
        by_id = config.serving_of(env, model).by_id
        if not by_id.enabled:
            continue
        reserved += by_id.max_concurrency
        if not env.feature_store.online_store:
            problems.append(f"environment {env.name!r}: field 'serving.{model.name}.by_id.enabled': scoring by id reads "
                            "the online Feature Store, which feature_store.online_store turns off here; turn it on "
                            "or set by_id.enabled: false")
        ttl_days = env.feature_store.online_ttl_days
        if by_id.max_age_hours and ttl_days and by_id.max_age_hours >= ttl_days * 24:
            problems.append(f"environment {env.name!r}: field 'serving.{model.name}.by_id.max_age_hours': "
                            f"{by_id.max_age_hours} hours is not below the online store's TTL (feature_store.online_ttl_days "
                            f"{ttl_days} = {ttl_days * 24} hours), so records expire before they turn stale and it never "
                            f"applies; set it below {ttl_days * 24} or remove it")
    if reserved > MAX_RESERVED_BY_ID:
        problems.append(f"environment {env.name!r}: fields 'serving.<model>.by_id.max_concurrency' reserve {reserved} "
                        f"concurrent executions in all; an account with Lambda's default limit can reserve at most "
                        f"{MAX_RESERVED_BY_ID} for them (100 stay unreserved, the app's handlers hold 2): lower them")
    return problems


def _feature_group_problems(config: AppConfig) -> list[str]:
    """One line per dataset whose feature group (``<project>-<env>-<dataset>``) Feature Store would refuse in an
    environment that provisions it, naming the dataset's field, the longest such name and every environment."""
    failing: dict[str, list[tuple[str, str]]] = {}
    for env in config.environments.values():
        prefix = environment_prefix(config.project, env.name)
        for dataset in dict.fromkeys(m.dataset for m in config.models_of(env)):
            try:
                checked_feature_group_name(prefix, dataset)
            except ValueError as exc:
                failing.setdefault(dataset, []).append((env.name, str(exc)))
    problems = []
    for dataset, found in failing.items():
        longest = max(found, key=lambda item: len(item[1]))[1]
        problems.append(f"field 'datasets.{dataset}': {longest} (environments: {', '.join(e for e, _ in found)}); "
                        f"shorten the dataset name ({len(dataset)} characters) or the project or environment name")
    return problems


def _project_name_problems(project: Any, environments: Mapping[str, EnvironmentConfig]) -> list[str]:
    """Bucket and SSM parameter names AWS would refuse, found here rather than at deploy or as a traceback from the
    data-lake construct.

    Every lake bucket is ``<project>-<env>-<kind>-<account>-<region>``: a reserved prefix is the
    project's fault (one line), a name over 63 characters that of the combination (one line per
    environment, naming its longest bucket).
    """
    if not isinstance(project, str):
        return []  # the project field reports its own type error
    if not _PROJECT.match(project):
        # One line for the project's own mistake, not one "bucket name is invalid" line per environment.
        return [f"field 'project': {project!r} must be 2-20 characters of lowercase letters, digits and '-', starting "
                "with a letter (it starts every bucket and resource name); choose another project name"]
    reserved = next((p for p in RESERVED_BUCKET_PREFIXES if project.startswith(p)), None)
    if reserved:
        return [f"field 'project': {project!r} starts with {reserved!r}, which S3 reserves for bucket names (every "
                "bucket name starts with the project); choose another project name"]
    reserved = next((p for p in RESERVED_PARAMETER_PREFIXES if project.startswith(p)), None)
    if reserved:
        return [f"field 'project': {project!r} starts with {reserved!r}, which SSM Parameter Store refuses at the start "
                "of a parameter name (the multi-model endpoints' target-model parameters and the retraining pause are named "
                "/<project>-<env>/...); choose another project name"]
    problems = []
    for env in environments.values():
        names = [f"{project}-{env.name}-{kind}-{env.account}-{env.region}" for kind in LAKE_BUCKETS]
        longest = max(names, key=len)
        problem = bucket_name_problem(longest)
        if problem:
            problems.append(
                f"environment {env.name!r}: bucket name {longest!r} {problem}; shorten the project name "
                f"({project!r}, {len(project)} characters) or the environment name ({env.name!r})"
            )
    return problems


def _merged_serving(env: str, merged: Mapping, body: Mapping, model_section: Mapping, valid_models: set,
                    problems: list[str]) -> dict:
    """The ``serving`` block of each model this environment overrides, with the overrides on top.

    Models without overrides are left out (they serve as their own block says, already validated),
    and so are models whose own config is invalid, so one mistake is reported once. An override this environment's
    own block (``body``) writes for a model it does not deploy is a mistake; one it inherits from ``defaults`` is a
    default for the environments that do deploy the model (``load`` reports one no environment deploys).
    """
    overrides = merged.get("serving") or {}
    if not isinstance(overrides, Mapping):
        problems.append(f"environment {env!r}: field 'serving': must map model names to serving overrides")
        return {}
    own = body.get("serving") if isinstance(body.get("serving"), Mapping) else {}
    models = merged.get("models") or []
    models = list(models) if isinstance(models, (list, tuple)) else []
    # No models at all is reported once, on 'models', not again for every override.
    for model in overrides if models else ():
        if model not in models and model in own:
            problems.append(
                f"environment {env!r}: field 'serving.{model}': overrides a model this environment does not "
                f"deploy; allowed: {', '.join(map(str, models)) or '(none)'}"
            )
    out = {}
    for model in models:
        if model in overrides and model in valid_models:
            base = model_section[model].get("serving") or {}
            override = overrides.get(model) or {}
            block = _deep_merge(base, override) if isinstance(override, Mapping) else override
            if isinstance(block, Mapping) and block.get("mode") == "multi_model":
                # The model's own alarms watch its own endpoint, and its inference time is its own container's; on a
                # shared one here the endpoint's alarms and model server apply. What this environment sets is kept
                # (and checked).
                own_endpoint_only = {"alarms", "inference_timeout_seconds"} - set(override)
                block = {key: value for key, value in block.items() if key not in own_endpoint_only}
            out[model] = block
    return out


def _section(raw: Mapping, key: str, problems: list[str]) -> Mapping:
    value = raw.get(key)
    if not isinstance(value, Mapping) or not value:
        problems.append(f"top-level key {key!r} must be a non-empty mapping of name -> settings")
        return {}
    return value


def _datasets(section: Mapping, problems: list[str]) -> dict[str, Optional[Dataset]]:
    """Each declared dataset, parsed by the catalog (the code path the jobs use); None where it has mistakes,
    each reported as ``dataset '<name>': field '<path>': <message>``."""
    out: dict[str, Optional[Dataset]] = {}
    for name, body in section.items():
        try:
            out[name] = parse_dataset(name, body or {})
        except DeclarationError as exc:
            out[name] = None
            for problem in exc.problems:
                field, _, message = problem.partition(": ")
                problems.append(f"dataset {name!r}: field '{field}': {message}")
    return out


def _validate(model_cls, data: dict, where: str, problems: list[str], context: Optional[dict] = None):
    try:
        return model_cls.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(_format(exc, where))
        return None


def _validate_environment(merged: dict, body: Mapping, defaults: Mapping, where: str, problems: list[str]):
    """Validate one environment; a mistake in a value it takes from ``defaults`` is reported once, as
    ``defaults``, not once per environment under the environment's name (where it was never written)."""
    try:
        return EnvironmentConfig.model_validate(merged)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            if err["type"] == "value_error" and (named := _NAMED_FIELD.match(err["msg"].removeprefix("Value error, "))):
                loc += tuple(named.group(1).split("."))  # a nested block's validator names the field itself
            from_defaults = loc and not _has_path(body, loc) and _has_path(defaults, loc)
            line = _format_error(err, "defaults" if from_defaults else where)
            if line not in problems:
                problems.append(line)
        return None


def _has_path(data: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return False
        data = data[key]
    return True


def _format(exc: ValidationError, where: str) -> list[str]:
    return [_format_error(err, where) for err in exc.errors()]


def _format_error(err: Any, where: str) -> str:
    """One problem line: ``<where>: field '<path>': <message>``."""
    field = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if not field:
        # Cross-field validators name their field as "field: message".
        field, _, message = message.partition(": ")
    elif err["type"] == "value_error" and (named := _NAMED_FIELD.match(message)):
        # ... also when they sit in a nested block: name the full path.
        field, message = f"{field}.{named.group(1)}", named.group(2)
    if err["type"] == "extra_forbidden":
        message = "unknown field; check the spelling against the documented fields (docs/configuration.md: Configuration)"
    elif err["type"] == "missing":
        message = "required field is missing"
    elif err["type"] == "too_short" and (err.get("ctx") or {}).get("min_length") == 1:
        # pydantic's "Tuple should have at least 1 item after validation, not 0" says neither what nor how.
        message = f"must list at least one {field.rsplit('.', 1)[-1].removesuffix('s')}; add one"
    elif err["type"] == "string_pattern_mismatch" and field == "account":
        message = "must be a 12-digit AWS account id"
    elif field == "account" and isinstance(err.get("input"), int):
        # Unquoted, YAML reads an account id as a number (a leading 0 makes it octal).
        message = (f"must be a quoted string, e.g. account: \"123456789012\"; YAML read the unquoted value as "
                   f"the number {err['input']}")
    elif "input" in err and err["type"] not in ("value_error",):
        message = f"{message} (got {err['input']!r})"
    return f"{where}: field '{field}': {message}"


def _deep_merge(base: Mapping, override: Mapping) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
