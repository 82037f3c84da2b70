"""The quota preflight: what an environment may run at once, against the account's SageMaker quotas (Stubber)."""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, List

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from mlops_cli import preflight
from mlops_loop.config import parse_config
from tests.support.construct_configs import returns_config
from tests.support.credentials import without_credentials
from tests.support.cli_output import after_target_line

REGION = "eu-west-1"


def _app(**changes: Any):
    """``returns`` (real-time, autoscaling 1-3 on ml.c5.xlarge) in dev, on spot ml.m5.large training; ``changes``
    are dev environment keys."""
    raw = returns_config(model_serving={"mode": "realtime", "realtime": {
        "instance_type": "ml.c5.xlarge", "autoscaling": {"min_instances": 1, "max_instances": 3}}},
        training={"instance_type": "ml.m5.large", "processing_instance_type": "ml.m5.xlarge", "use_spot": True},
        **changes)
    return parse_config(raw, source="preflight test")


def _with_models(raw: dict, **models: dict) -> dict:
    raw = copy.deepcopy(raw)
    for name, serving in models.items():
        raw["models"][name] = {**raw["models"]["returns"], "serving": serving}
        raw["environments"]["dev"]["models"].append(name)
    return raw


def _needs(app) -> Dict[str, tuple]:
    return {n.quota: (n.instances, n.uses) for n in preflight.needs(app, app.environments["dev"])}


def test_a_realtime_model_needs_its_largest_fleet_twice_training_and_processing():
    assert _needs(_app()) == {
        "ml.c5.xlarge for endpoint usage": (6, ["returns endpoint (blue/green) x6"]),
        "ml.m5.large for spot training job usage": (1, ["returns training x1"]),
        "ml.m5.xlarge for processing job usage": (2, ["returns pipeline steps + drift monitor x2"]),
    }


def test_on_demand_training_tuning_and_a_fixed_fleet_change_the_quota_and_the_count():
    raw = returns_config(model_serving={"mode": "realtime", "realtime": {"instance_type": "ml.c5.xlarge", "autoscaling": None,
                                                                          "instance_count": 2}},
                         training={"instance_type": "ml.m5.large", "instance_count": 2, "use_spot": False,
                                   "hyperparameter_tuning": True})
    needs = _needs(parse_config(raw, source="preflight test"))
    assert needs["ml.c5.xlarge for endpoint usage"][0] == 4
    # Two instances per job, three tuning jobs at once, on demand.
    assert needs["ml.m5.large for training job usage"] == (6, ["returns training x6"])
    assert not [q for q in needs if "spot" in q]


def test_tuning_counts_the_environments_parallel_jobs():
    raw = returns_config(training={"instance_type": "ml.m5.large", "instance_count": 2, "use_spot": False,
                                   "hyperparameter_tuning": True, "tuning": {"max_jobs": 20, "max_parallel_jobs": 5}})
    needs = _needs(parse_config(raw, source="preflight test"))
    # Two instances per job, five tuning jobs at once (training.tuning.max_parallel_jobs).
    assert needs["ml.m5.large for training job usage"] == (10, ["returns training x10"])


def test_models_add_up_per_quota_and_each_mode_counts_its_own_way():
    raw = _with_models(
        returns_config(model_serving={"mode": "realtime", "realtime": {"instance_type": "ml.c5.xlarge",
                                                                        "autoscaling": {"min_instances": 1, "max_instances": 2}}}),
        queued={"mode": "async", "async": {"instance_type": "ml.c5.xlarge", "max_instances": 3}},
        nightly={"mode": "batch", "batch": {"instance_type": "ml.m5.xlarge", "instance_count": 4}},
        quiet={"mode": "serverless"},
    )
    needs = _needs(parse_config(raw, source="preflight test"))
    assert needs["ml.c5.xlarge for endpoint usage"] == (10, ["returns endpoint (blue/green) x4", "queued endpoint (blue/green) x6"])
    assert needs["ml.m5.xlarge for transform job usage"] == (4, ["nightly batch transform x4"])
    # Four models may train and be monitored at once; the serverless one needs no instance quota.
    assert needs["ml.m5.xlarge for spot training job usage"][0] == 4
    assert needs["ml.m5.xlarge for processing job usage"][0] == 8
    assert not [uses for _, uses in needs.values() if any(u.startswith("quiet endpoint") for u in uses)]


def test_a_used_multi_model_endpoint_needs_its_fleet_twice_and_an_unused_one_nothing():
    raw = returns_config(model_serving={"mode": "multi_model", "multi_model": {"endpoint": "shared"}},
                         multi_model_endpoints={"shared": {"instance_type": "ml.c5.xlarge",
                                                           "autoscaling": {"min_instances": 1, "max_instances": 2}},
                                                "spare": {"instance_type": "ml.c5.2xlarge"}})
    needs = _needs(parse_config(raw, source="preflight test"))
    assert needs["ml.c5.xlarge for endpoint usage"] == (4, ["multi-model endpoint shared (blue/green) x4"])
    assert "ml.c5.2xlarge for endpoint usage" not in needs


# ---- against the account's quotas ----------------------------------------------------------------


@pytest.fixture()
def quotas(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with Stubber(boto3.client("service-quotas", region_name=REGION)) as stubber:
        yield stubber


@pytest.fixture()
def caller(quotas):
    """STS answering for the dev environment's account (``caller.account``; set it before the call)."""

    class Caller:
        account = "123456789012"

        def get_caller_identity(self) -> Dict[str, str]:
            return {"Account": self.account, "Arn": f"arn:aws:iam::{self.account}:role/deployer", "UserId": "AROA"}

    return Caller()


def _quota(name: str, value: float) -> Dict[str, Any]:
    return {"ServiceCode": "sagemaker", "QuotaName": name, "Value": value}


def _enough_for_dev() -> List[Dict[str, Any]]:
    """Applied quotas that cover dev's endpoints, spot training and processing (the --also checks' common GIVEN)."""
    return [_quota("ml.c5.xlarge for endpoint usage", 12), _quota("ml.m5.large for spot training job usage", 2),
            _quota("ml.m5.xlarge for processing job usage", 4)]


def _applied(stubber: Stubber, *pages: List[Dict[str, Any]]) -> None:
    for i, page in enumerate(pages):
        response: Dict[str, Any] = {"Quotas": page}
        params: Dict[str, Any] = {"ServiceCode": "sagemaker"}
        if i + 1 < len(pages):
            response["NextToken"] = f"t{i + 1}"
        if i:
            params["NextToken"] = f"t{i}"
        stubber.add_response("list_service_quotas", response, params)


def test_each_need_is_judged_on_the_applied_quota_else_the_default_and_a_missing_one_is_named(quotas):
    # GIVEN the endpoint quota raised to 8 (on the second page), no applied training quota, none for processing
    _applied(quotas, [_quota("ml.t3.medium for endpoint usage", 2)], [_quota("ml.c5.xlarge for endpoint usage", 8)])
    quotas.add_response("list_aws_default_service_quotas",
                        {"Quotas": [_quota("ml.m5.large for spot training job usage", 0)]}, {"ServiceCode": "sagemaker"})
    app = _app()
    # WHEN the needs are checked
    verdicts = {v.need.quota: v for v in preflight.check(preflight.needs(app, app.environments["dev"]), quotas.client)}
    quotas.assert_no_pending_responses()
    # THEN each is judged on what the account has
    endpoint = verdicts["ml.c5.xlarge for endpoint usage"]
    assert (endpoint.quota, endpoint.source, endpoint.ok) == (8.0, "applied", True)
    training = verdicts["ml.m5.large for spot training job usage"]
    assert (training.quota, training.source, training.ok) == (0.0, "default", False)
    processing = verdicts["ml.m5.xlarge for processing job usage"]
    assert (processing.quota, processing.source, processing.ok) == (None, "absent", False)


def test_no_default_lookup_when_every_quota_was_applied(quotas):
    _applied(quotas, [_quota("ml.c5.xlarge for endpoint usage", 6), _quota("ml.m5.large for spot training job usage", 1),
                      _quota("ml.m5.xlarge for processing job usage", 2)])
    app = _app()
    assert all(v.ok for v in preflight.check(preflight.needs(app, app.environments["dev"]), quotas.client))
    quotas.assert_no_pending_responses()  # list_aws_default_service_quotas was never called


def _write(tmp_path, app_raw: dict) -> str:
    path = tmp_path / "mlops-loop.yaml"
    path.write_text(yaml.safe_dump(app_raw))
    return str(path)


def _raw() -> dict:
    return returns_config(model_serving={"mode": "realtime", "realtime": {
        "instance_type": "ml.c5.xlarge", "autoscaling": {"min_instances": 1, "max_instances": 3}}},
        training={"instance_type": "ml.m5.large", "processing_instance_type": "ml.m5.xlarge", "use_spot": True})


def test_the_command_exits_1_and_says_what_is_short_and_for_whom(quotas, caller, tmp_path, capsys):
    _applied(quotas, [_quota("ml.c5.xlarge for endpoint usage", 4), _quota("ml.m5.large for spot training job usage", 1),
                      _quota("ml.m5.xlarge for processing job usage", 2)])
    assert preflight.main(["--env", "dev", "--config", _write(tmp_path, _raw())], client=quotas.client, sts=caller) == 1
    captured = capsys.readouterr()
    assert captured.err == (f"project=shop environment=dev account=123456789012 region=eu-west-1 "
                            f"(config {tmp_path / 'mlops-loop.yaml'})\n")
    out = captured.out.splitlines()
    assert out[0] == ("SageMaker quotas for environment 'dev' (account 123456789012, eu-west-1): 2 of 3 cover what it "
                      "may run at once")
    short = out.index(next(line for line in out if line.strip().startswith("ml.c5.xlarge for endpoint usage")))
    assert out[short].split()[-14:] == ["need", "6", "SHORT", "by", "2:", "quota", "4", "(applied);", "request", "an",
                                        "increase", "in", "Service", "Quotas"]
    assert out[short + 1].strip() == "for returns endpoint (blue/green) x6"
    assert out[-1] == "note: serverless endpoints use no instance quota"


def test_the_command_exits_0_with_json_when_every_quota_covers_its_need(quotas, caller, tmp_path, capsys):
    _applied(quotas, [_quota("ml.c5.xlarge for endpoint usage", 6), _quota("ml.m5.large for spot training job usage", 1),
                      _quota("ml.m5.xlarge for processing job usage", 5)])
    assert preflight.main(["--env", "dev", "--config", _write(tmp_path, _raw()), "--format", "json"], client=quotas.client,
                          sts=caller) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["quota"], r["need"], r["quota_value"], r["source"], r["ok"]) for r in rows] == [
        ("ml.c5.xlarge for endpoint usage", 6, 6.0, "applied", True),
        ("ml.m5.large for spot training job usage", 1, 1.0, "applied", True),
        ("ml.m5.xlarge for processing job usage", 2, 5.0, "applied", True),
    ]


def test_an_unknown_environment_exits_2_naming_the_choices(tmp_path, capsys):
    path = _write(tmp_path, _raw())
    assert preflight.main(["--env", "prod", "--config", path], client=object()) == 2
    assert capsys.readouterr().err == f"ERROR: --env prod: not an environment of {path}; choose from dev\n"


def test_credentials_of_another_account_exit_2_before_any_quota_is_read(quotas, caller, tmp_path, capsys):
    # GIVEN credentials of another account than dev's (a profile left on another environment)
    caller.account = "210987654321"
    # WHEN the preflight runs THEN it refuses, naming both accounts, and reads no quota (none is stubbed)
    assert preflight.main(["--env", "dev", "--config", _write(tmp_path, _raw())], client=quotas.client, sts=caller) == 2
    assert after_target_line(capsys.readouterr().err) == (
        "ERROR: the credentials are of account 210987654321, environment 'dev' is account 123456789012; use that "
        "account's credentials (e.g. AWS_PROFILE) and run again\n")


def test_credentials_sts_cannot_read_exit_2_saying_which_account_to_log_in_to(quotas, tmp_path, capsys):
    from botocore.exceptions import NoCredentialsError

    class Expired:
        def get_caller_identity(self):
            raise NoCredentialsError()

    assert preflight.main(["--env", "dev", "--config", _write(tmp_path, _raw())], client=quotas.client,
                          sts=Expired()) == 2
    assert after_target_line(capsys.readouterr().err) == ("ERROR: no usable AWS credentials (NoCredentialsError: Unable to locate "
                                       "credentials): log in to account 123456789012 of environment 'dev' (e.g. aws sso "
                                       "login, AWS_PROFILE) and run again\n")


def test_a_profile_that_does_not_exist_exits_2_with_the_same_line(monkeypatch, tmp_path, capsys):
    # GIVEN AWS_PROFILE naming no profile: botocore fails as the session is made, before STS is asked
    without_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_PROFILE", "nope")
    assert preflight.main(["--env", "dev", "--config", _write(tmp_path, _raw())]) == 2
    assert after_target_line(capsys.readouterr().err) == ("ERROR: no usable AWS credentials (ProfileNotFound: The config profile (nope) could "
                                       "not be found): log in to account 123456789012 of environment 'dev' (e.g. aws sso "
                                       "login, AWS_PROFILE) and run again\n")


def test_quotas_that_cannot_be_read_exit_2_with_the_reason(quotas, caller, tmp_path, capsys):
    quotas.add_client_error("list_service_quotas", service_error_code="AccessDeniedException",
                            service_message="User is not authorized to perform: servicequotas:ListServiceQuotas")
    assert preflight.main(["--env", "dev", "--config", _write(tmp_path, _raw())], client=quotas.client, sts=caller) == 2
    err = after_target_line(capsys.readouterr().err)
    assert err.startswith("ERROR: cannot read the SageMaker quotas of environment 'dev': An error occurred (AccessDeniedException)")


def test_native_model_monitor_adds_its_four_processing_schedules():
    raw = returns_config(model_serving={"mode": "realtime", "native_model_monitor": True,
                                        "realtime": {"instance_type": "ml.c5.xlarge", "autoscaling": None}})
    needs = _needs(parse_config(raw, source="preflight test"))
    assert needs["ml.m5.xlarge for processing job usage"] == (
        6, ["returns pipeline steps + drift monitor x2", "returns native Model Monitor x4"])


# ------------------------------------------------------------------------------------ environments sharing an account


def _write_as(tmp_path, name: str, app_raw: dict) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(app_raw))
    return str(path)


def _with_environment(raw: dict, name: str, **changes: Any) -> dict:
    """``raw`` with environment ``name``: a copy of dev (same account and region unless ``changes`` say otherwise)."""
    raw = copy.deepcopy(raw)
    raw["environments"][name] = {**copy.deepcopy(raw["environments"]["dev"]), "tier": "prod" if name == "prod" else "dev",
                                 **changes}
    return raw


SHARE = "ml.c5.xlarge for endpoint usage x6, ml.m5.large for spot training job usage x1, ml.m5.xlarge for processing job usage x2"
STAGGER = ("start their drift monitors at the same minute (cron(0 3 * * ? *), field 'monitoring.schedule'): every day their "
           "processing instances all run at once; stagger them by giving each environment its own 'monitoring.schedule' "
           "(e.g. 'cron(0 4 * * ? *)' for the next), or make sure the processing quota covers them together")


def test_the_environments_of_one_account_and_region_add_up_and_each_ones_share_is_a_line(quotas, caller, tmp_path, capsys):
    """GIVEN dev and prod of one config in one account and region (the config allows it), each fitting the quotas alone
    WHEN dev is checked THEN their needs are summed - quotas are per account and region - with one line per
    environment's share, and the exit is 1; their monitors' shared default schedule is a warning naming the field."""
    _applied(quotas, [_quota("ml.c5.xlarge for endpoint usage", 8), _quota("ml.m5.large for spot training job usage", 2),
                      _quota("ml.m5.xlarge for processing job usage", 4)])
    path = _write(tmp_path, _with_environment(_raw(), "prod"))
    assert preflight.main(["--env", "dev", "--config", path], client=quotas.client, sts=caller) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[:4] == [
        "SageMaker quotas for environment 'dev' (account 123456789012, eu-west-1) and the 1 other environment(s) there: "
        "2 of 3 cover what they may run at once together",
        "  quotas are per account and region, so the needs of every environment there add up; each one's share:",
        f"    shop/dev (checked; config {path}): {SHARE}",
        f"    shop/prod (config {path}): {SHARE}"]
    endpoint = out.index(next(line for line in out if line.strip().startswith("ml.c5.xlarge for endpoint usage")))
    assert out[endpoint].split()[-14:-9] == ["need", "12", "SHORT", "by", "4:"]
    assert out[endpoint + 1].strip() == "for shop/dev returns endpoint (blue/green) x6, shop/prod returns endpoint (blue/green) x6"
    assert after_target_line(captured.err) == f"warning: environments shop/dev, shop/prod of account 123456789012 in eu-west-1 {STAGGER}\n"


def test_another_account_or_region_is_not_counted_and_staggered_monitors_are_no_warning(quotas, caller, tmp_path, capsys):
    _applied(quotas, _enough_for_dev())
    raw = _with_environment(_raw(), "prod", monitoring={"schedule": "cron(0 5 * * ? *)"})
    raw = _with_environment(raw, "staging", account="210987654321")
    raw = _with_environment(raw, "qa", region="us-east-1")
    path = _write(tmp_path, raw)
    assert preflight.main(["--env", "dev", "--config", path], client=quotas.client, sts=caller) == 0
    captured = capsys.readouterr()
    assert [line.split(" (")[0].strip() for line in captured.out.splitlines()[2:4]] == ["shop/dev", "shop/prod"]
    assert "shop/staging" not in captured.out and "shop/qa" not in captured.out
    assert after_target_line(captured.err) == ""


def test_alone_in_its_account_and_region_the_environment_is_said_to_be(quotas, caller, tmp_path, capsys):
    _applied(quotas, [_quota("ml.c5.xlarge for endpoint usage", 6), _quota("ml.m5.large for spot training job usage", 1),
                      _quota("ml.m5.xlarge for processing job usage", 2)])
    assert preflight.main(["--env", "dev", "--config", _write(tmp_path, _raw())], client=quotas.client, sts=caller) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "  no other environment of the config (nor of an --also config) is in this account and region")


def test_also_adds_other_projects_environments_of_the_account_and_names_a_config_with_none_there(quotas, caller, tmp_path,
                                                                                               capsys):
    """GIVEN a second project's config whose dev shares the account and region (its prod is elsewhere) and a third
    project's with nothing there WHEN dev is checked with --also for both THEN the second's dev adds its share, its
    prod does not, and the third is named as having no environment there."""
    _applied(quotas, _enough_for_dev())
    path = _write(tmp_path, _raw())
    risk = _with_environment({**_raw(), "project": "risk"}, "prod", account="210987654321")
    elsewhere = {**_raw(), "project": "later"}
    elsewhere["environments"]["dev"]["region"] = "us-west-2"
    risk_path, later_path = _write_as(tmp_path, "risk.yaml", risk), _write_as(tmp_path, "later.yaml", elsewhere)
    assert preflight.main(["--env", "dev", "--config", path, "--also", risk_path, "--also", later_path],
                          client=quotas.client, sts=caller) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[:5] == [
        "SageMaker quotas for environment 'dev' (account 123456789012, eu-west-1) and the 1 other environment(s) there: "
        "3 of 3 cover what they may run at once together",
        "  quotas are per account and region, so the needs of every environment there add up; each one's share:",
        f"    shop/dev (checked; config {path}): {SHARE}",
        f"    risk/dev (config {risk_path}): {SHARE}",
        f"  --also {later_path}: no environment in account 123456789012, eu-west-1"]
    assert after_target_line(captured.err) == f"warning: environments shop/dev, risk/dev of account 123456789012 in eu-west-1 {STAGGER}\n"


def test_also_is_refused_for_a_config_it_cannot_read_or_a_project_already_counted(quotas, caller, tmp_path, capsys):
    path = _write(tmp_path, _raw())
    same = _write_as(tmp_path, "copy.yaml", _raw())
    assert preflight.main(["--env", "dev", "--config", path, "--also", same], client=quotas.client, sts=caller) == 2
    assert after_target_line(capsys.readouterr().err) == (
        f"ERROR: --also {same}: project 'shop' is already counted (from {path}); give each other project's config once\n")
    missing = str(tmp_path / "nope.yaml")
    assert preflight.main(["--env", "dev", "--config", path, "--also", missing], client=quotas.client, sts=caller) == 2
    assert after_target_line(capsys.readouterr().err) == (
        f"ERROR: --also {missing}: file not found; name an existing file with MLOPS_LOOP_CONFIG=<file> (or give it: -c "
        "mlops-loop:config=<file> to cdk, --config <file> to a tool)\n")


def test_the_json_rows_give_each_environments_share_of_a_quota(quotas, caller, tmp_path, capsys):
    _applied(quotas, _enough_for_dev())
    path = _write(tmp_path, _with_environment(_raw(), "prod"))
    assert preflight.main(["--env", "prod", "--config", path, "--format", "json"], client=quotas.client, sts=caller) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["quota"], r["need"], r["environments"]) for r in rows] == [
        ("ml.c5.xlarge for endpoint usage", 12, {"shop/dev": 6, "shop/prod": 6}),
        ("ml.m5.large for spot training job usage", 2, {"shop/dev": 1, "shop/prod": 1}),
        ("ml.m5.xlarge for processing job usage", 4, {"shop/dev": 2, "shop/prod": 2}),
    ]


def test_also_refuses_another_project_whose_environment_has_the_same_name_prefix(quotas, caller, tmp_path, capsys):
    """GIVEN project shop's environment ml-dev and another project, shop-ml, whose dev is in the same account and region
    WHEN ml-dev is checked with --also for it THEN it is refused (exit 2): both name everything shop-ml-dev-..., so the
    second's deploy would update the first's stacks, and its roles, buckets and pipelines are the other's."""
    _applied(quotas, _enough_for_dev())
    path = _write(tmp_path, _with_environment(_raw(), "ml-dev"))
    other = _write_as(tmp_path, "shop-ml.yaml", {**_raw(), "project": "shop-ml"})
    assert preflight.main(["--env", "ml-dev", "--config", path, "--also", other], client=quotas.client, sts=caller) == 2
    assert after_target_line(capsys.readouterr().err) == (
        f"ERROR: environment 'ml-dev' of project 'shop' ({path}) and environment 'dev' of project 'shop-ml' ({other}) "
        "both deploy to account 123456789012 in eu-west-1 under the name prefix 'shop-ml-dev': their stacks "
        "(shop-ml-dev-storage, ...), roles, buckets and pipelines are the same, so deploying one updates the other's; "
        "rename a project or an environment so that the prefixes differ (docs/configuration.md, A second project "
        "(another config))\n")


def test_also_warns_of_another_project_whose_name_prefix_extends_this_ones(quotas, caller, tmp_path, capsys):
    """GIVEN another project, shop-dev, whose environment eu shares the account and region of shop's dev WHEN dev is
    checked with --also for it THEN a warning says that what shop/dev grants by name (shop-dev-*) reaches shop-dev/eu's
    resources; the check goes on."""
    _applied(quotas, _enough_for_dev())
    path = _write(tmp_path, _raw())
    raw = {**_raw(), "project": "shop-dev"}
    raw["environments"] = {"eu": {**raw["environments"]["dev"], "monitoring": {"schedule": "cron(0 5 * * ? *)"}}}
    other = _write_as(tmp_path, "shop-dev.yaml", raw)
    assert preflight.main(["--env", "dev", "--config", path, "--also", other], client=quotas.client, sts=caller) == 0
    assert after_target_line(capsys.readouterr().err) == (
        f"warning: environment 'eu' of project 'shop-dev' ({other}) names its resources shop-dev-eu-..., which is environment "
        f"'dev' of project 'shop' ({path})'s prefix shop-dev followed by '-' in account 123456789012, eu-west-1: what "
        "shop/dev grants by name (shop-dev-*) reaches shop-dev/eu's resources; rename one project or environment "
        "(docs/configuration.md, A second project (another config))\n")


def test_also_refuses_another_project_whose_environment_in_another_region_creates_the_same_account_wide_names(
        quotas, caller, tmp_path, capsys):
    """GIVEN project shop's ml-dev in eu-west-1 and project shop-ml's dev in us-east-1 of the same account (both
    shop-ml-dev-...) WHEN ml-dev is checked with --also for it THEN it is refused (exit 2), naming the role they would
    both create: IAM roles and the dashboard are unique in the account whatever the region, so the second deploy fails
    ('already exists'), as the config refuses for two environments of one project."""
    _applied(quotas, _enough_for_dev())
    path = _write(tmp_path, _with_environment(_raw(), "ml-dev"))
    raw = {**_raw(), "project": "shop-ml"}
    raw["environments"] = {"dev": {**raw["environments"]["dev"], "region": "us-east-1"}}
    other = _write_as(tmp_path, "shop-ml.yaml", raw)
    assert preflight.main(["--env", "ml-dev", "--config", path, "--also", other], client=quotas.client, sts=caller) == 2
    assert after_target_line(capsys.readouterr().err) == (
        f"ERROR: environment 'ml-dev' of project 'shop' ({path}, eu-west-1) and environment 'dev' of project 'shop-ml' "
        f"({other}, us-east-1) both deploy to account 123456789012 and both would create IAM role "
        "'shop-ml-dev-model-approver' (the model approver role); its name is unique in the account whatever the region, "
        "so CloudFormation refuses the second deploy ('already exists'); rename a project or an environment so that "
        "the prefixes differ, or deploy them to different accounts (docs/configuration.md, A second project "
        "(another config))\n")
