"""Checks across models and environments (names that must not clash, accelerators, multi-model endpoints, offers,
capture, approvers, networks): each returns one line per problem, naming the field and the fix. The loader runs them
(:func:`mlops_loop.config.loader.parse_config`); :class:`~.app_config.AppConfig` runs them when built any other way."""

from __future__ import annotations

import math
from typing import Any, Collection, Optional

from pipeline_code.core.contract import (RETRAIN_INFIX, approver_role_name, environment_prefix, lake_bucket,
                                         monitor_label_window_hours, records_lookback_hours, team_approver_role_name)
from pipeline_code.core.frameworks import PYTORCH

from ..naming import (LAKE_BUCKETS, analyst_role_name, budget_name, loop_dashboard_name, monitor_role_name,
                      serving_deployer_role_name)
from .environment import EnvironmentConfig
from .instance_offers import load_offers
from .instance_types import ACCELERATOR_LABELS, FRAMEWORKS, INSTANCE_TYPES, NEURON_IMAGE_REGIONS
from .model import ModelConfig
from .serving import ServingConfig, compiled_for_inferentia2, inferentia2_types


def members_by_endpoint(models: dict[str, ModelConfig], env: EnvironmentConfig) -> dict[str, tuple[ModelConfig, ...]]:
    """Each multi-model endpoint ``env`` builds, with its member models (in ``env.models`` order)."""
    members: dict[str, list[ModelConfig]] = {}
    for model in (models[m] for m in env.models if m in models):
        serving = env.serving.get(model.name, model.serving)
        if serving.mode == "multi_model":
            members.setdefault(serving.multi_model.endpoint, []).append(model)
    return {name: tuple(group) for name, group in members.items()}


def model_name_problems(models: Collection[Any]) -> list[str]:
    """Model names IAM cannot tell apart: a name that is another model's followed by ``-v``, one message per pair.

    A version's model card is ``<project>-<env>-<model>-v<version>-<created>`` (``contract.model_card_name``) and the
    model's roles are granted its cards as ``<project>-<env>-<model>-v*``: IAM wildcards cannot say ``v<digits>``, so
    the grant would also cover every card of a model named ``<model>-v...`` in the same environment."""
    names = [m for m in models if isinstance(m, str)]  # a name of another type is reported by the name's own check
    problems = [
        f"model {other!r}: its name is the name of model {model!r} followed by '-v', so the roles of {model!r} could create "
        f"and update the model cards of {other!r} (a version's card is named <project>-<env>-{model}-v<version>-<time>, "
        f"granted as <project>-<env>-{model}-v*: IAM cannot match only digits after the 'v'); rename model {other!r} so "
        f"that it does not start with '{model}-v'"
        for model in names for other in names if other != model and other.startswith(f"{model}-v")
    ]
    # A model's retrain alarms are matched by the prefix <project>-<env>-<model>-retrain- (the retrain trigger's rule
    # and its grant, contract.retrain_alarm_prefix): a model named <model>-retrain[-...] has alarms under that prefix.
    infix = f"-{RETRAIN_INFIX}"
    problems += [
        f"model {other!r}: its name is the name of model {model!r} followed by '{infix}', so the alarms of {other!r} "
        f"(<project>-<env>-{other}-...) would start the retraining of model {model!r} when they fire (a model's retrain alarms are "
        f"found by their name's start, <project>-<env>-{model}{infix}-); rename model {other!r} so that it does not start "
        f"with '{model}{infix}'"
        for model in names for other in names
        if other != model and (other == f"{model}{infix}" or other.startswith(f"{model}{infix}-"))
    ]
    return problems


def _environment_pairs(environments: dict[str, "EnvironmentConfig"]):
    """(shorter, longer, rest) for each pair of environments in one account and region where ``longer`` is
    ``shorter`` followed by ``-`` and ``rest``."""
    for shorter in environments.values():
        for longer in environments.values():
            if longer.name.startswith(f"{shorter.name}-") and (longer.account, longer.region) == (
                    shorter.account, shorter.region):
                yield shorter, longer, longer.name[len(shorter.name) + 1:]


def environment_name_problems(project: str, models: dict[str, "ModelConfig"],
                              environments: dict[str, "EnvironmentConfig"]) -> list[str]:
    """Environments whose resources take each other's names, one message per pair: in one account and region, one
    named after another followed by ``-`` (``dev``, ``dev-eu``), and a model, dataset or team (its topic) of the first
    whose name starts with the rest (model ``eu-churn``, dataset ``eu_churn``, team ``eu-fraud`` of ``dev``).

    Every resource name is ``<project>-<env>-<rest>`` (``contract.environment_prefix``), and what varies after the
    environment starts with a model's or a dataset's name, or is one of the app's own words (``serving``,
    ``data-pipeline``...), the same in every environment and every config, so a clash of those would fail a pair's
    first deploy, not a later one. So a name of ``dev`` comes to be one of ``dev-eu`` through a model or dataset of
    ``dev`` named ``eu-...``/``eu_...``: that is refused; the pair alone is only warned about (``pair_warnings``), since a deployment made when it was accepted
    could otherwise go on only by renaming an environment, i.e. new, empty stacks."""
    problems = []
    for shorter, longer, rest in _environment_pairs(environments):
        mine = [m for m in shorter.models if m in models]
        # A team's topic is <prefix>-<team>-notifications: team eu-fraud of dev names dev-eu's team fraud's.
        teams = dict.fromkeys(sorted(models[m].owner.team for m in mine if models[m].owner is not None))
        taken = [("model", m) for m in mine if m == rest or m.startswith(f"{rest}-")] + [
            ("dataset", d) for d in dict.fromkeys(models[m].dataset for m in mine)
            if d.replace("_", "-") == rest or d.replace("_", "-").startswith(f"{rest}-")] + [
            ("team", t) for t in teams if t.startswith(f"{rest}-")]
        for kind, name in taken:
            joiner = "_" if kind == "dataset" else "-"
            problems.append(
                f"environments {shorter.name!r} and {longer.name!r}: both deploy to account {longer.account} in "
                f"{longer.region}, and {longer.name!r} is {shorter.name!r} followed by '-', so the names "
                f"{shorter.name!r} gives {kind} {name!r} ({project}-{shorter.name}-{name.replace('_', '-')}-...) are "
                f"names of the resources of {longer.name!r} ({project}-{longer.name}-...; CloudFormation refuses the "
                f"second at deploy); rename {kind} {name!r} so that it does not start with {rest + joiner!r}, or rename "
                f"one environment so that neither name is the other's followed by '-' (e.g. {longer.name!r} to "
                f"{longer.name.replace('-', '')!r}), or deploy them to another account or region")
    return problems


def account_wide_names(project: str, env: "EnvironmentConfig",
                       models: dict[str, "ModelConfig"]) -> dict[str, tuple[str, str]]:
    """Every fixed name ``env`` creates that is unique in its account whatever the region, as ``{name: (kind, what)}``:
    the model-approver, serving-deployer and analyst roles, each team's approver role (``team_approvers``), each
    native Model Monitor's role, the dashboard (CloudWatch dashboards are global), the budget and the lake buckets
    (unique across accounts; theirs end in ``<account>-<region>``). ``tests/infra/test_account_wide_names.py`` proves these are the names the templates write."""
    prefix = environment_prefix(project, env.name)
    names = {approver_role_name(prefix): ("IAM role", "the model approver role"),
             serving_deployer_role_name(prefix): ("IAM role", "the serving deployer role"),
             analyst_role_name(prefix): ("IAM role", "the analyst role"),
             loop_dashboard_name(prefix): ("CloudWatch dashboard", "the loop's dashboard")}
    for team in env.team_approvers:
        names[team_approver_role_name(prefix, team)] = ("IAM role", f"the approver role of team {team!r}")
    if env.budget is not None:
        names[budget_name(prefix, env.budget.actual_percent, env.budget.forecast_percent,
                          env.budget.emails)] = ("budget", "the cost budget")
    for model in env.models:
        if model in models and env.serving.get(model, models[model].serving).native_model_monitor:
            names[monitor_role_name(prefix, model)] = ("IAM role", f"the native Model Monitor role of model {model!r}")
    for kind in LAKE_BUCKETS:
        names[lake_bucket(prefix, kind, env.account, env.region)] = ("S3 bucket", f"the {kind} bucket")
    return names


def account_wide_name_problems(project: str, models: dict[str, "ModelConfig"],
                               environments: dict[str, "EnvironmentConfig"]) -> list[str]:
    """Two environments of one account, in any regions, that would both create a name unique in the account
    (:func:`account_wide_names`), one message per name. ``environment_name_problems`` compares environments in one
    account and region only, but IAM roles, dashboards and budgets meet across regions too: ``dev`` serving a model
    ``eu-churn`` and ``dev-eu`` serving ``churn``, both with native Model Monitor on, would both create the role
    ``<project>-dev-eu-churn-native-monitor``. Such a pair could never deploy both, so refusing it breaks no deployment.
    Pairs in one region are left to ``environment_name_problems``, which refuses every one whose names meet (they meet
    only through a model of one named after the rest of the other's name), so no cause is reported twice."""
    problems = []
    envs = list(environments.values())
    for i, first in enumerate(envs):
        mine = account_wide_names(project, first, models)
        for second in (e for e in envs[i + 1:] if e.account == first.account and e.region != first.region):
            theirs = account_wide_names(project, second, models)
            longer = max(first.name, second.name, key=len)
            for name in (n for n in mine if n in theirs):
                problems.append(
                    f"environments {first.name!r} ({first.region}) and {second.name!r} ({second.region}): both deploy to "
                    f"account {first.account} and both would create {mine[name][0]} {name!r} ({mine[name][1]} in "
                    f"{first.name!r}; {theirs[name][1]} in {second.name!r}); its name is unique in the account whatever "
                    "the region, so CloudFormation refuses the second deploy ('already exists'). Rename one of the "
                    f"models, or rename one environment so that neither name is the other's followed by '-' (e.g. "
                    f"{longer!r} to {longer.replace('-', '')!r}), or deploy the two environments to different accounts")
    return problems


def environment_pair_warnings(project: str, environments: dict[str, "EnvironmentConfig"]) -> list[str]:
    """The pairs ``environment_name_problems`` accepts: one environment named after another followed by ``-`` in one
    account and region, no name shared. What the first grants by name prefix (``<project>-<env>-*``: its alarms' use
    of its keys) reaches the second's resources, and a model, dataset or team added later could take the other's names."""
    return [
        f"environments {shorter.name!r} and {longer.name!r}: both deploy to account {longer.account} in "
        f"{longer.region}, and {longer.name!r} is {shorter.name!r} followed by '-', so what {shorter.name!r} grants by "
        f"name ({project}-{shorter.name}-*) reaches the resources of {longer.name!r}, and a dataset, model or team of "
        f"{shorter.name!r} whose name starts with {rest!r} and '_' or '-' would take names of {longer.name!r} (refused "
        f"then); no name is shared today, so a deployment of both keeps working. To part them, rename one (e.g. "
        f"{longer.name!r} to {longer.name.replace('-', '')!r}): a renamed environment is a new, empty stack beside the "
        "old one, which is left running with its data (the template diff calls it MOVED); or deploy them to another "
        "account or region"
        for shorter, longer, rest in _environment_pairs(environments)]


def multi_model_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """Models that name a multi-model endpoint their environment does not declare, and endpoints whose
    members need different container images (one endpoint runs one image), one message per problem."""
    problems = []
    for env in environments.values():
        for endpoint, members in members_by_endpoint(models, env).items():
            if endpoint not in env.multi_model_endpoints:
                declared = ", ".join(sorted(env.multi_model_endpoints)) or "(none)"
                for model in members:
                    problems.append(
                        f"environment {env.name!r}: field 'serving.{model.name}.multi_model.endpoint': {endpoint!r} is not a "
                        f"multi-model endpoint of this environment; allowed: {declared} — declare it under "
                        f"'multi_model_endpoints' in the environment or in 'defaults'"
                    )
                continue
            # A network is served by the XGBoost image too (scored with numpy), so trees and networks may share.
            images = {FRAMEWORKS[m.framework].serving_image if m.framework in FRAMEWORKS else m.framework for m in members}
            if len(images) > 1:
                problems.append(
                    f"environment {env.name!r}: field 'multi_model_endpoints.{endpoint}': its models need different images "
                    f"({', '.join(f'{m.name}: {m.framework}' for m in members)}); one endpoint runs one container image — "
                    "give each framework its own endpoint"
                )
    return problems


def _serving_types(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]):
    """(where, model, field, instance type) of every serving type set: a model's own block once, per environment only
    what the environment sets itself."""
    for model in models.values():
        for name in model.serving.instance_types:
            yield f"model {model.name!r}", model, model.serving.instance_type_field(), name
    for env in environments.values():
        for model in (models[m] for m in env.models if m in models):
            if model.name in env.serving:
                serving = env.serving[model.name]
                for name in serving.instance_types:
                    field = _override_field(model, serving, name)
                    if field is not None:
                        yield f"environment {env.name!r}", model, field, name


def accelerator_warnings(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """Serving types whose accelerator the model's framework serves on but does not use (``Framework.serving_idle``:
    an XGBoost model on a GPU), one line each."""
    lines = []
    for where, model, field, name in _serving_types(models, environments):
        framework = FRAMEWORKS[model.framework]
        accelerator = INSTANCE_TYPES[name].accelerator
        if accelerator in framework.serving_idle:
            lines.append(
                f"{where}: field '{field}': {name} is {ACCELERATOR_LABELS[accelerator]} instance, which serving with "
                f"framework {model.framework!r} does not use ({framework.why_not.get(accelerator, 'unsupported')}); "
                f"pick e.g. {framework.suggested['serving']} (an autoscaled endpoint cannot change its instance type in "
                "place: the template diff says UPDATE FAILS and what to do)")
    return lines


def accelerator_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """Accelerated instance types the model's framework cannot use, one message per problem.

    Inferentia2 (ml.inf2.*) serves only Neuron-compiled models in a Neuron image and Trainium
    (ml.trn1.*) trains only with the Neuron SDK; the stock XGBoost image has neither, so such a
    combination would fail at the first training job or deployment. Found here, it fails synth.
    """
    problems = []

    def check(where: str, model: ModelConfig, field: str, name: str, purpose: str) -> None:
        framework = FRAMEWORKS[model.framework]
        accelerator = INSTANCE_TYPES[name].accelerator
        allowed = framework.training_accelerators if purpose == "training" else framework.serving_accelerators
        if purpose == "serving" and accelerator in framework.serving_idle:
            return  # served, idle: accelerator_warnings
        if accelerator not in allowed:
            problems.append(
                f"{where}: field '{field}': {name} is {ACCELERATOR_LABELS[accelerator]} instance, which {purpose} "
                f"with framework {model.framework!r} cannot use ({framework.why_not.get(accelerator, 'unsupported')}); "
                f"allowed accelerators for {purpose}: {', '.join(allowed)} — pick e.g. {framework.suggested[purpose]}"
            )

    # A model's own serving block once; per environment only what the environment sets itself.
    for model in models.values():
        for name in model.serving.instance_types:
            check(f"model {model.name!r}", model, model.serving.instance_type_field(), name, "serving")
    for env in environments.values():
        for model in (models[m] for m in env.models if m in models):
            where = f"environment {env.name!r}: model {model.name!r}"
            check(where, model, env.training.instance_type_field(model.name), env.training.instance_type_of(model.name), "training")
            if model.name in env.serving:
                serving = env.serving[model.name]
                for name in serving.instance_types:
                    field = _override_field(model, serving, name)
                    if field is not None:
                        check(f"environment {env.name!r}", model, field, name, "serving")
    return problems


def _override_field(model: ModelConfig, serving: ServingConfig, instance_type: str) -> Optional[str]:
    """The field of an environment's serving override of ``model`` that sets ``instance_type``, named as in the
    file (``serving.<model>.<mode>.instance_type`` under the environment); None when the type is the model's own.

    An override holds the model's whole serving block once anything in it is overridden, so a type counts as
    the environment's only when the override changed the mode or the type.
    """
    if instance_type in model.serving.instance_types and serving.mode == model.serving.mode:
        return None
    return f"serving.{model.name}.{serving.instance_type_field().split('.', 1)[1]}"


def training_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig],
                      declared: Optional[Collection[str]] = None) -> list[str]:
    """How an environment's training settings do not fit its models, one message per problem: per-model instance
    types for names that are no model, a hyperparameter the tuning job would search anyway, and what a network (framework pytorch) cannot do yet - a
    tuning job (it searches XGBoost's hyperparameters), several instances (the trainer is not distributed), or
    Trainium in a region without AWS's Neuron training image."""
    problems = []
    for model in models.values():
        # Ranges no tuning job ever searches: refused, not warned about, as a hyperparameter the search would override
        # is - whoever wrote them believes the search is shaped. A model listed nowhere trains nowhere (not this check's).
        training = [env for env in environments.values() if model.name in env.models]
        if model.tuning_ranges and training and not any(env.training.hyperparameter_tuning for env in training):
            problems.append(f"model {model.name!r}: field 'tuning_ranges': no environment that trains {model.name!r} "
                            f"({', '.join(sorted(env.name for env in training))}) has training.hyperparameter_tuning on, so no tuning job searches "
                            "these ranges; set training.hyperparameter_tuning: true in the environment that should tune "
                            "it, or remove tuning_ranges")
    for env in environments.values():
        listed = [m for m in env.models if m in models]
        # An entry for a model of the app that this environment does not train is allowed (it may come from
        # defaults, for the environments that do); a name that is no model at all is a typo.
        # ``declared``: every model name the config has, valid or not (an invalid one has its own message).
        unknown = sorted(set(env.training.instance_types) - set(models if declared is None else declared))
        if unknown:
            problems.append(f"environment {env.name!r}: field 'training.instance_types': unknown model(s) {unknown}; "
                            f"models: {', '.join(sorted(models))}")
        for model in (models[m] for m in listed if env.training.hyperparameter_tuning):
            searched = [r for r in model.tuning_ranges_searched() if r[0] in model.hyperparameters]
            for name, _, low, high, _ in searched:
                problems.append(f"environment {env.name!r}: model {model.name!r}: field 'hyperparameters.{name}': the tuning "
                                f"job searches {name} ({low:g} to {high:g}) in this environment, so the "
                                "value set here would not be used; remove it, or set training.hyperparameter_tuning false")
        for model in (models[m] for m in listed if models[m].framework == PYTORCH):
            where = f"environment {env.name!r}: model {model.name!r}"
            if env.training.hyperparameter_tuning:
                problems.append(f"{where}: field 'training.hyperparameter_tuning': the tuning job searches XGBoost's "
                                "hyperparameters and a network (framework 'pytorch') is not tuned; set it false or "
                                f"train {model.name!r} in an environment without tuning")
            if env.training.instance_count > 1:
                problems.append(f"{where}: field 'training.instance_count': a network trains on one instance "
                                f"(train_torch is not distributed), not {env.training.instance_count}; set it to 1")
            instance_type = env.training.instance_type_of(model.name)
            cores_problem = _idle_neuron_cores_problem(instance_type)
            if cores_problem:
                problems.append(f"{where}: field '{env.training.instance_type_field(model.name)}': {cores_problem}")
            if INSTANCE_TYPES[instance_type].accelerator == "trainium" and env.region not in NEURON_IMAGE_REGIONS:
                problems.append(f"{where}: field '{env.training.instance_type_field(model.name)}': {instance_type} needs "
                                f"AWS's Neuron training image, which is not published in {env.region}; regions with it (each must also "
                                f"offer {instance_type}): {', '.join(NEURON_IMAGE_REGIONS)} — train on a CPU type there "
                                "(e.g. ml.m5.xlarge)")
    return problems


def _idle_neuron_cores_problem(instance_type: str) -> Optional[str]:
    """Why a network should not train on ``instance_type``: a Trainium type with more NeuronCores than the smallest
    one, of which train_torch (one process, one XLA device: one NeuronCore) would leave all but one idle; else None."""
    chosen = INSTANCE_TYPES[instance_type]
    trainium = [t for t in INSTANCE_TYPES.values() if t.accelerator == "trainium"]
    if chosen.accelerator != "trainium" or not trainium:
        return None
    smallest = min(trainium, key=lambda t: (t.neuron_cores, t.usd_per_hour))
    if chosen.neuron_cores <= smallest.neuron_cores:
        return None
    return (f"{instance_type} has {chosen.neuron_cores} NeuronCores, but a network trains in one process on one NeuronCore "
            f"(train_torch is not distributed): {chosen.neuron_cores - 1} would be paid for and idle; use {smallest.name} "
            f"({smallest.neuron_cores} NeuronCores), the same training for less")


# The parity check publishes its verdict within its 150-second budget after the first baking event (parity_check
# MAX_CHECK_SECONDS), and its alarm needs up to two minutes more to fire; a shorter bake would let a mismatching
# version through before the alarm could roll it back.
PARITY_MIN_BAKE_MINUTES = 5


def inferentia2_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """How a network served on ml.inf2 does not fit its environment, one message per problem: a mode the compiled
    lane does not serve (async, batch transform; multi-model endpoints refuse accelerators themselves), a region without
    AWS's Neuron inference image, or a rollout whose first bake is too short for the parity check to roll it back."""
    problems = []
    for env in environments.values():
        for model in (models[m] for m in env.models if m in models):
            serving = env.serving.get(model.name, model.serving)
            inf2 = inferentia2_types(serving)
            if not inf2 or model.framework != PYTORCH:
                continue  # an XGBoost model on inf2 is refused by accelerator_problems
            where = serving_where(env, model, serving, inf2[0])
            if not compiled_for_inferentia2(serving):
                why = ("batch transform has no rollout in which the parity check could test the compiled model on the "
                       "device" if serving.mode == "batch" else "its rollouts are parity-checked with synchronous "
                       "InvokeEndpoint calls, which an async endpoint does not take")
                problems.append(f"{where}: {inf2[0]} serves a compiled network on real-time endpoints only, not "
                                f"{serving.mode} ({why}); use mode 'realtime', or a CPU type (e.g. ml.m5.xlarge)")
                continue
            if env.region not in NEURON_IMAGE_REGIONS:
                problems.append(f"{where}: {inf2[0]} needs AWS's Neuron inference image, which is not published in "
                                f"{env.region}; regions with it (each must also offer {inf2[0]}): {', '.join(NEURON_IMAGE_REGIONS)} "
                                "— serve on a CPU type there (e.g. ml.m5.large)")
            rollout = serving.rollout
            if rollout is not None and rollout.wait_minutes < PARITY_MIN_BAKE_MINUTES:
                field = f"serving.{serving.mode}.rollout.wait_minutes"
                overridden = rollout != model.serving.rollout
                problems.append(f"{serving_where(env, model, serving, inf2[0], field, overridden=overridden)}: "
                                f"{rollout.wait_minutes} minutes is too short a bake for the parity check of a compiled model "
                                f"to roll a mismatching version back; at least {PARITY_MIN_BAKE_MINUTES}")
    return problems


def offer_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """Instance types an environment would train, process or host on that its region does not offer for that use,
    one message per field (:mod:`.instance_offers`). Regions the table does not hold are not checked; nor is
    batch transform."""
    offers = load_offers()
    problems: list[str] = []
    for env in environments.values():
        region = offers.get(env.region)
        if region is None:
            continue
        listed = [models[m] for m in env.models if m in models]
        here = f"environment {env.name!r}"
        uses = [(f"{here}: field '{env.training.instance_type_field(m.name)}'", "training", env.training.instance_type_of(m.name))
                for m in listed]
        uses.append((f"{here}: field 'training.processing_instance_type'", "processing", env.training.processing_instance_type))
        for model in listed:
            serving = env.serving.get(model.name, model.serving)
            if serving.mode not in ("realtime", "async"):
                continue
            uses += [(serving_where(env, model, serving, name), "hosting", name) for name in serving.instance_types]
        # Only the shared endpoints a model here is served on are built (see EnvironmentConfig).
        uses += [(f"{here}: field 'multi_model_endpoints.{name}.instance_type'", "hosting",
                  env.multi_model_endpoints[name].instance_type)
                 for name in members_by_endpoint(models, env) if name in env.multi_model_endpoints]
        problems += [f"{where}: {problem}" for where, use, instance_type in dict.fromkeys(uses)
                     if (problem := region.problem(use, instance_type))]
    return problems


def capture_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """A model that expects daily requests (``min_daily_requests``) but captures none (batch aside: its monitor reads
    the transform's files): its monitor would count none and page people every day. (Capturing none at all is a
    warning: :meth:`AppConfig.warnings`.)"""
    problems = []
    for env in environments.values():
        for model in (models[m] for m in env.models if m in models):
            if model.min_daily_requests and captures_nothing_it_monitors(env.serving.get(model.name, model.serving)):
                problems.append(f"{capture_where(env, model)}: 0 captures no request, but model {model.name!r} declares "
                                f"min_daily_requests {model.min_daily_requests}, so its monitor would count none and page "
                                "people every day; capture a sample (e.g. 10) or remove min_daily_requests")
    return problems


def label_delay_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """A model whose labels come later than the environment keeps its drift monitor's prediction records
    (``data_lake.inference_records_expiration_days``, under ``monitor/``): its late labels would find no request."""
    problems = []
    for env in environments.values():
        kept = env.data_lake.inference_records_expiration_days
        for model in (models[m] for m in env.models if m in models):
            label_window = monitor_label_window_hours(model.drift_window_days_in(env.monitoring))
            needed = math.ceil(records_lookback_hours(model.label_delay_days, label_window_hours=label_window) / 24)
            if kept is not None and kept < needed:
                problems.append(f"environment {env.name!r}: field 'data_lake.inference_records_expiration_days': {kept} "
                                f"expires the drift monitor's prediction records before the labels of model {model.name!r} "
                                f"arrive (label_delay_days {model.label_delay_days} + the {label_window / 24:g}-day label window + a day: "
                                f"{needed} days); keep them at least {needed} days (or null: never), or lower "
                                f"models.{model.name}.label_delay_days")
    return problems


def owner_contact_problems(models: dict[str, ModelConfig]) -> list[str]:
    """Two models of one team naming different contacts (``owner.contact``), one line per later model: the contact is
    one tag value on the team's topic (``mlops-loop:contact``), and AWS tag values allow no separator to list two."""
    problems, contacts = [], {}
    for name, model in models.items():
        if model.owner is None or model.owner.contact is None:
            continue
        first = contacts.setdefault(model.owner.team, (name, model.owner.contact))
        if first[1] != model.owner.contact:
            problems.append(f"model {name!r}: field 'owner.contact': team {model.owner.team!r} already has the contact "
                            f"{first[1]!r} (model {first[0]!r}); a team has one contact (a tag value on its topic): "
                            "give its models the same one, or leave it out of all but one")
    return problems


def team_approver_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """``team_approvers`` naming a team none of the environment's models belongs to (a typo would leave the team's
    models with the environment's approver role), one line per team."""
    problems = []
    for env in environments.values():
        teams = sorted({models[m].owner.team for m in env.models if m in models and models[m].owner is not None})
        for team in env.team_approvers:
            if team not in teams:
                problems.append(f"environment {env.name!r}: field 'team_approvers.{team}': no model of this environment "
                                f"belongs to team {team!r} (models.<model>.owner.team); teams here: "
                                f"{', '.join(teams) or '(none)'}")
    return problems


def network_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """A model served serverless in an environment that runs inside a VPC (``network``): SageMaker Serverless
    Inference takes no VpcConfig (one of its documented feature exclusions), so that endpoint would run outside
    the VPC the environment asks for; found here, it fails synth naming the field."""
    problems = []
    for env in (e for e in environments.values() if e.network is not None):
        for model in (models[m] for m in env.models if m in models):
            serving = env.serving.get(model.name, model.serving)
            if serving.mode != "serverless":
                continue
            where = serving_where(env, model, serving, None, "serving.mode", overridden=serving.mode != model.serving.mode)
            problems.append(f"{where}: serverless endpoints cannot run inside a VPC (SageMaker Serverless Inference does "
                            f"not support a model VpcConfig) and this environment sets 'network'; serve {model.name!r} "
                            f"with mode 'realtime' or 'async' here (environment field 'serving.{model.name}.mode'), or "
                            "remove 'network'")
    return problems


def captures_nothing_it_monitors(serving: ServingConfig) -> bool:
    """Whether the monitor would see no traffic: no capture, except in batch mode, whose monitor reads the transform
    job's input and output files."""
    return serving.data_capture_percent == 0 and serving.mode != "batch"


def capture_where(env: EnvironmentConfig, model: ModelConfig) -> str:
    """Where ``model``'s capture percentage in ``env`` is written: the environment's override when it changed it."""
    serving = env.serving.get(model.name, model.serving)
    return serving_where(env, model, serving, None, "serving.data_capture_percent",
                         overridden=serving.data_capture_percent != model.serving.data_capture_percent)


def serving_where(env: EnvironmentConfig, model: ModelConfig, serving: ServingConfig, instance_type: Optional[str],
                  field: Optional[str] = None, *, overridden: Optional[bool] = None) -> str:
    """Where a serving setting of ``model`` in ``env`` is written, as messages name it: the environment's override
    (``environment 'prod': field 'serving.<model>.realtime.instance_type'``) when it set ``instance_type``, or when
    ``overridden`` says so for another ``field``; else the model's own block (``environment 'prod': model 'm':
    field 'serving.realtime.instance_type'``). ``field`` defaults to the active mode's instance type."""
    field = field or serving.instance_type_field()
    if overridden is None:
        overridden = _override_field(model, serving, instance_type) is not None
    if overridden:
        return f"environment {env.name!r}: field 'serving.{model.name}.{field.split('.', 1)[1]}'"
    return f"environment {env.name!r}: model {model.name!r}: field '{field}'"
