"""Before ``cdk deploy``: does the target account's SageMaker quota cover every instance the environment may run?

    python -m mlops_cli.preflight --env prod [--config config/mlops-loop.yaml] [--also other.yaml ...] [--format text|json]

Default quotas for many SageMaker instance types are 0 in a new account, and the first job or endpoint that
needs one fails with ``ResourceLimitExceeded`` long after the deploy. This reads, with the caller's
credentials in the environment's region (refused unless they are of the environment's account:
:func:`mlops_cli.target.check_account`), the account's
Service Quotas of SageMaker (``ListServiceQuotas``,
falling back to ``ListAWSDefaultServiceQuotas`` for a quota never changed) and compares each with the
instances the environment's config may run **at the same time** (:func:`needs`):

* training: ``training.instance_count`` per model (all models may retrain at once: one schedule, drift alarms),
  times the tuning's parallel jobs (``training.tuning.max_parallel_jobs``) when ``hyperparameter_tuning`` is on; ``<type> for spot training job usage``
  when ``use_spot``, else ``<type> for training job usage``;
* processing: one instance per model for its pipeline's processing steps plus one for its daily drift monitor
  (every monitor runs on the same schedule), and four more for a model with ``native_model_monitor``:
  ``<type> for processing job usage``;
* hosting: per real-time or async endpoint (and shared multi-model endpoint) its largest fleet twice, since a
  blue/green rollout runs the old and the new fleet side by side: ``<type> for endpoint usage``;
* batch transform: ``instance_count`` per batch model: ``<type> for transform job usage``.

Quotas are per account and region, and environments may share both: the needs of every environment of the config
in the checked environment's account and region add up (one line says each one's share), and ``--also <config>``
(repeatable) adds those of other projects' configs deployed there (:func:`shares`). Environments there whose drift
monitors share one ``monitoring.schedule`` (the default ``cron(0 3 * * ? *)``) start them all at the same minute
every day: a warning on stderr names them and the field that staggers them.

Serverless endpoints use no instance quota (their concurrency quota is per account and region and
the app's defaults stay far below it). Exit 0 when every quota covers its need, 1 when one does not (each
line says by how much and which models need it), 2 when the quotas cannot be read (no usable credentials, another
account's, no access, an unknown environment) - with one line saying why.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mlops_cli import target as deploy_target

SERVICE_CODE = "sagemaker"


@dataclass
class Need:
    """Instances of one quota the environment may use at once, and which models and uses need them."""

    quota: str
    instances: int = 0
    uses: List[str] = field(default_factory=list)

    def add(self, instances: int, use: str) -> None:
        self.instances += instances
        self.uses.append(f"{use} x{instances}")


def needs(app: Any, environment: Any) -> List[Need]:
    """Every quota ``environment`` of ``app`` (a loaded AppConfig) relies on, with the instances it needs at once."""
    found: Dict[str, Need] = {}

    def need(instance_type: str, usage: str, instances: int, use: str) -> None:
        quota = f"{instance_type} for {usage} usage"
        found.setdefault(quota, Need(quota)).add(instances, use)

    training = environment.training
    usage = "spot training job" if training.use_spot else "training job"
    parallel = training.tuning.max_parallel_jobs if training.hyperparameter_tuning else 1
    for model in app.models_of(environment):
        need(training.instance_type_of(model.name), usage, training.instance_count * parallel, f"{model.name} training")
        need(training.processing_instance_type, "processing job", 2, f"{model.name} pipeline steps + drift monitor")
        serving = app.serving_of(environment, model)
        if serving.native_model_monitor:
            # Its four Model Monitor schedules (data quality, model quality, bias, explainability) share one cron.
            need(training.processing_instance_type, "processing job", 4, f"{model.name} native Model Monitor")
        if serving.mode == "realtime":
            realtime = serving.realtime
            largest = realtime.autoscaling.max_instances if realtime.autoscaling else realtime.instance_count
            need(realtime.instance_type, "endpoint", 2 * largest, f"{model.name} endpoint (blue/green)")
        elif serving.mode == "async":
            need(serving.async_.instance_type, "endpoint", 2 * serving.async_.max_instances, f"{model.name} endpoint (blue/green)")
        elif serving.mode == "batch":
            need(serving.batch.instance_type, "transform job", serving.batch.instance_count, f"{model.name} batch transform")
    for name, endpoint in environment.multi_model_endpoints.items():
        members = [m.name for m in app.models_of(environment)
                   if app.serving_of(environment, m).mode == "multi_model" and app.serving_of(environment, m).multi_model.endpoint == name]
        if not members:
            continue  # declared but unused: not deployed
        largest = endpoint.autoscaling.max_instances if endpoint.autoscaling else endpoint.instance_count
        need(endpoint.instance_type, "endpoint", 2 * largest, f"multi-model endpoint {name} (blue/green)")
    return sorted(found.values(), key=lambda n: n.quota)


@dataclass(frozen=True)
class Share:
    """What one environment of the checked account and region needs: ``project/environment`` (its ``label``), the
    config it was read from, its drift monitors' schedule and its :func:`needs`."""

    project: str
    environment: str
    config: str
    schedule: str
    needs: List[Need]

    @property
    def label(self) -> str:
        return f"{self.project}/{self.environment}"


def shares(configs: Sequence[Tuple[str, Any]], account: str, region: str) -> List[Share]:
    """Every environment of ``configs`` (each a config file and its loaded AppConfig) deployed to ``account`` in
    ``region``, in the order given: all of them draw on the same quotas."""
    found = []
    for path, app in configs:
        for name, environment in app.environments.items():
            if environment.account == account and environment.region == region:
                found.append(Share(app.project, name, path, environment.monitoring.schedule, needs(app, environment)))
    return found


def combined(shares_: Sequence[Share]) -> List[Need]:
    """The needs of ``shares_`` summed per quota; each use names its environment when there is more than one."""
    if len(shares_) == 1:
        return list(shares_[0].needs)
    total: Dict[str, Need] = {}
    for share in shares_:
        for n in share.needs:
            summed = total.setdefault(n.quota, Need(n.quota))
            summed.instances += n.instances
            summed.uses += [f"{share.label} {use}" for use in n.uses]
    return sorted(total.values(), key=lambda n: n.quota)


def schedule_warnings(shares_: Sequence[Share], *, account: str, region: str) -> List[str]:
    """One line per drift-monitor schedule two or more environments of ``shares_`` (those with models) share."""
    together: Dict[str, List[Share]] = {}
    for share in shares_:
        if share.needs:
            together.setdefault(share.schedule, []).append(share)
    return [f"warning: environments {', '.join(s.label for s in group)} of account {account} in {region} start their drift "
            f"monitors at the same minute ({schedule}, field 'monitoring.schedule'): every day their processing "
            "instances all run at once; stagger them by giving each environment its own 'monitoring.schedule' (e.g. "
            "'cron(0 4 * * ? *)' for the next), or make sure the processing quota covers them together"
            for schedule, group in together.items() if len(group) > 1]


def _quota_values(client: Any, operation: str) -> Dict[str, float]:
    values: Dict[str, float] = {}
    for page in client.get_paginator(operation).paginate(ServiceCode=SERVICE_CODE):
        for quota in page.get("Quotas", []):
            values[quota["QuotaName"]] = float(quota["Value"])
    return values


@dataclass
class Verdict:
    need: Need
    quota: Optional[float]  # None: no such quota in this region (the type is not offered here)
    source: str  # "applied" | "default" | "absent"

    @property
    def ok(self) -> bool:
        return self.quota is not None and self.quota >= self.need.instances


def check(needs_: Sequence[Need], client: Any) -> List[Verdict]:
    """Each need against the account's quota (applied value, else the default)."""
    applied = _quota_values(client, "list_service_quotas")
    defaults = _quota_values(client, "list_aws_default_service_quotas") if any(n.quota not in applied for n in needs_) else {}
    out = []
    for n in needs_:
        if n.quota in applied:
            out.append(Verdict(n, applied[n.quota], "applied"))
        elif n.quota in defaults:
            out.append(Verdict(n, defaults[n.quota], "default"))
        else:
            out.append(Verdict(n, None, "absent"))
    return out


def render(verdicts: Sequence[Verdict], *, environment: str, account: str, region: str,
           shares_: Sequence[Share] = (), absent: Sequence[str] = ()) -> str:
    """The report; ``shares_`` (default none: the environment alone) are the environments whose needs were summed,
    ``absent`` the --also configs with no environment in this account and region."""
    checked = next((s for s in shares_ if s.environment == environment and s.config == shares_[0].config), None)
    others = [s for s in shares_ if s is not checked]
    if others:
        lines = [f"SageMaker quotas for environment '{environment}' (account {account}, {region}) and the {len(others)} "
                 f"other environment(s) there: {sum(v.ok for v in verdicts)} of {len(verdicts)} cover what they may run "
                 "at once together",
                 "  quotas are per account and region, so the needs of every environment there add up; each one's share:"]
        for share in shares_:
            mine = ", ".join(f"{n.quota} x{n.instances}" for n in share.needs) or "no instances"
            lines.append(f"    {share.label} ({'checked; ' if share is checked else ''}config {share.config}): {mine}")
    else:
        lines = [f"SageMaker quotas for environment '{environment}' (account {account}, {region}): "
                 f"{sum(v.ok for v in verdicts)} of {len(verdicts)} cover what it may run at once",
                 "  no other environment of the config (nor of an --also config) is in this account and region"]
    lines += [f"  --also {path}: no environment in account {account}, {region}" for path in absent]
    for v in verdicts:
        if v.quota is None:
            status = "MISSING: no such quota in this region (is the instance type offered here?)"
        elif v.ok:
            status = f"ok ({v.quota:g} {v.source})"
        else:
            status = f"SHORT by {v.need.instances - v.quota:g}: quota {v.quota:g} ({v.source}); request an increase in Service Quotas"
        lines.append(f"  {v.need.quota:48} need {v.need.instances:>3}  {status}")
        lines.append(f"      for {', '.join(v.need.uses)}")
    lines.append("note: serverless endpoints use no instance quota")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None, *, client: Any = None, sts: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_cli.preflight", description=__doc__.split("\n\n")[1])
    parser.add_argument("--env", required=True, help="the environment to check (its account's credentials and region)")
    parser.add_argument("--config", default=str(deploy_target.default_config()),
                        help="the app's config (default: MLOPS_LOOP_CONFIG's file, else "
                             "config/mlops-loop.yaml: what cdk synth reads)")
    parser.add_argument("--also", action="append", default=[], metavar="CONFIG",
                        help="another project's config whose environments may share the account and region (repeatable): "
                             "their needs add up with this config's (default: none)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)

    from botocore.exceptions import BotoCoreError, ClientError

    from mlops_loop.config import ConfigError, load_config

    try:
        app = load_config(args.config)
        where = deploy_target.target_of(app, args.env, args.config)
        deploy_target.announce(where)
        environment = app.environments[args.env]
        if client is None or sts is None:
            import boto3

            session = boto3.session.Session(region_name=where.region)
            client = client or session.client("service-quotas")
            sts = sts or session.client("sts")
        configs = [(str(args.config), app), *_also(args.also, app, str(args.config))]
        clashes, overlaps = prefix_clashes(configs)
        if clashes:
            raise ValueError(clashes[0])
        for warning in overlaps:
            print(f"warning: {warning}", file=sys.stderr)
        sharing = shares(configs, environment.account, environment.region)
        absent = [path for path, other in configs[1:] if not shares([(path, other)], environment.account, environment.region)]
        # Another account's quotas would answer for the wrong one.
        deploy_target.check_account(sts, where)
        verdicts = check(combined(sharing), client)
    except (ConfigError, ValueError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        # A profile that does not exist fails as the session is made; a token may expire after the check.
        reason = deploy_target.credentials_problem(exc, where) or f"cannot read the SageMaker quotas of environment '{args.env}': {exc}"
        print(f"ERROR: {reason}", file=sys.stderr)
        return 2
    for warning in schedule_warnings(sharing, account=environment.account, region=environment.region):
        print(warning, file=sys.stderr)
    if args.format == "json":
        print(json.dumps([{"quota": v.need.quota, "need": v.need.instances, "uses": v.need.uses, "quota_value": v.quota,
                           "source": v.source, "ok": v.ok,
                           "environments": {s.label: sum(n.instances for n in s.needs if n.quota == v.need.quota)
                                            for s in sharing if any(n.quota == v.need.quota for n in s.needs)}}
                          for v in verdicts], indent=2))
    else:
        print(render(verdicts, environment=args.env, account=environment.account, region=environment.region,
                     shares_=sharing, absent=absent))
    return 0 if all(v.ok for v in verdicts) else 1


def prefix_clashes(configs: Sequence[Tuple[str, Any]]) -> Tuple[List[str], List[str]]:
    """Environments of different projects (``configs``: (path, config)) in one account and region whose resource name
    prefixes (``<project>-<env>``) meet, one line each: (refusals, warnings). The same prefix is a refusal: their stacks,
    roles, buckets and pipelines have the same names, so deploying one updates the other's stacks. A prefix that is
    the other's followed by ``-`` is a warning: what the shorter one grants by name reaches the longer one's resources
    (the config's own check for two environments of one project: docs/configuration.md, Environment names in one
    account and region). In other regions of one account, a name unique in the account that both would create
    (``cross_checks.account_wide_names``: roles, the dashboard, the budget) is a refusal: the second deploy fails on it.
    Within one config the config itself checks."""
    from pipeline_code.core.contract import environment_prefix

    where = "docs/configuration.md, A second project (another config)"
    from mlops_loop.config.cross_checks import account_wide_names

    named = [(path, app.project, env, app.models) for path, app in configs for env in app.environments.values()]
    refusals: List[str] = []
    warnings: List[str] = []
    for i, (path_a, project_a, env_a, models_a) in enumerate(named):
        for path_b, project_b, env_b, models_b in named[i + 1:]:
            if project_a == project_b or env_a.account != env_b.account:
                continue
            if env_a.region != env_b.region:
                # Other regions of one account: no stack meets, but IAM roles, the dashboard and the budget are unique
                # in the account whatever the region (the config's own check, account_wide_name_problems, for one project).
                theirs = account_wide_names(project_b, env_b, models_b)
                mine = account_wide_names(project_a, env_a, models_a)
                shared = [name for name in mine if name in theirs]
                if shared:
                    kind, what = mine[shared[0]]
                    refusals.append(
                        f"environment '{env_a.name}' of project '{project_a}' ({path_a}, {env_a.region}) and environment "
                        f"'{env_b.name}' of project '{project_b}' ({path_b}, {env_b.region}) both deploy to account "
                        f"{env_a.account} and both would create {kind} '{shared[0]}' ({what}); its name is unique in the "
                        "account whatever the region, so CloudFormation refuses the second deploy ('already exists'); "
                        "rename a project or an environment so that the prefixes differ, or deploy them to different "
                        f"accounts ({where})")
                continue
            prefix_a, prefix_b = environment_prefix(project_a, env_a.name), environment_prefix(project_b, env_b.name)
            if prefix_a == prefix_b:
                refusals.append(
                    f"environment '{env_a.name}' of project '{project_a}' ({path_a}) and environment '{env_b.name}' of "
                    f"project '{project_b}' ({path_b}) both deploy to account {env_a.account} in {env_a.region} under "
                    f"the name prefix '{prefix_a}': their stacks ({prefix_a}-storage, ...), roles, buckets and pipelines "
                    "are the same, so deploying one updates the other's; rename a project or an environment so that "
                    f"the prefixes differ ({where})")
                continue
            for (p_short, pr_short, e_short, x_short), (p_long, pr_long, e_long, x_long) in (
                    ((path_a, project_a, env_a, prefix_a), (path_b, project_b, env_b, prefix_b)),
                    ((path_b, project_b, env_b, prefix_b), (path_a, project_a, env_a, prefix_a))):
                if x_long.startswith(f"{x_short}-"):
                    warnings.append(
                        f"environment '{e_long.name}' of project '{pr_long}' ({p_long}) names its resources {x_long}-..., "
                        f"which is environment '{e_short.name}' of project '{pr_short}' ({p_short})'s prefix {x_short} "
                        f"followed by '-' in account {e_short.account}, {e_short.region}: what {pr_short}/{e_short.name} "
                        f"grants by name ({x_short}-*) reaches {pr_long}/{e_long.name}'s resources; rename one project or "
                        f"environment ({where})")
    return refusals, warnings


def _also(paths: Sequence[str], app: Any, config: str) -> List[Tuple[str, Any]]:
    """The ``--also`` configs, loaded; refused (ValueError, one line): one that cannot be read, or whose project is
    the checked config's or an earlier one's (one project's environments are counted once)."""
    from mlops_loop.config import ConfigError, load_config

    loaded: List[Tuple[str, Any]] = []
    projects = {app.project: config}
    for path in paths:
        try:
            other = load_config(path)
        except ConfigError as error:
            more = f" (and {len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
            raise ValueError(f"--also {path}: {error.problems[0]}{more}") from None
        if other.project in projects:
            raise ValueError(f"--also {path}: project '{other.project}' is already counted (from {projects[other.project]}); "
                             "give each other project's config once")
        projects[other.project] = path
        loaded.append((path, other))
    return loaded


if __name__ == "__main__":
    sys.exit(main())
