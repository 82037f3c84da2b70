"""Config validation: every misconfiguration fails synth with one message naming environment, field and fix."""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import re

import pytest
import yaml

from mlops_loop.config import ConfigError, load_config, parse_config

from tests.support.configs import SAMPLE_CONFIG

from tests.support.paths import REPO_ROOT


@pytest.fixture(scope="module")
def sample():
    return load_config(SAMPLE_CONFIG)


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_sample_config_defines_three_environments_and_two_models(sample):
    config = sample
    assert set(config.environments) == {"dev", "staging", "prod"}
    assert len(config.models) >= 2
    assert {m.dataset for m in config.models.values()} == {"customer_churn", "credit_risk"}
    assert {m.serving.mode for m in config.models.values()} == {"realtime", "serverless"}


def test_defaults_are_merged_under_each_environment_and_overridable(sample):
    config = sample
    assert config.environments["staging"].glue.worker_type == "G.1X"  # from defaults
    assert config.environments["prod"].glue.worker_type == "G.2X"  # overridden
    assert config.environments["prod"].glue.etl_schedule == "cron(0 2 * * ? *)"  # deep merge keeps siblings


def test_missing_account_names_environment_and_field(raw):
    del raw["environments"]["staging"]["account"]
    assert problems_of(raw) == ["environment 'staging': field 'account': required field is missing"]


def test_malformed_account(raw):
    raw["environments"]["prod"]["account"] = "12345"
    assert problems_of(raw) == ["environment 'prod': field 'account': must be a 12-digit AWS account id"]


def test_approvers_must_be_iam_role_or_user_arns_listed_once(raw):
    raw["environments"]["prod"]["approvers"] = ["alice@example.com"]
    assert problems_of(raw) == [
        "environment 'prod': field 'approvers': 'alice@example.com' is not the ARN of an IAM role or user "
        "(arn:aws:iam::<12-digit account>:role/<name> or :user/<name>, * allowed in the name); an SSO user approves "
        "through its permission set's role, e.g. role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_<permission set>_*"]
    arn = "arn:aws:iam::333333333333:role/risk-approvers"
    raw["environments"]["prod"]["approvers"] = [arn, arn]
    assert problems_of(raw) == ["environment 'prod': field 'approvers': lists an approver twice"]
    raw["environments"]["prod"]["approvers"] = [arn]
    assert parse_config(raw).environments["prod"].approvers == (arn,)


def test_malformed_region_lists_allowed_regions(raw):
    raw["environments"]["prod"]["region"] = "eu-west-99"
    (problem,) = problems_of(raw)
    assert problem.startswith("environment 'prod': field 'region': unsupported region 'eu-west-99'; allowed: ")
    assert "eu-west-1" in problem


def test_unknown_instance_type_lists_allowed_types(raw):
    raw["environments"]["dev"]["training"]["instance_type"] = "ml.m99.huge"
    (problem,) = problems_of(raw)
    assert "environment 'dev': field 'training.instance_type': unknown instance type 'ml.m99.huge'" in problem
    assert "ml.m5.xlarge" in problem


def test_data_lake_retention_defaults_and_null_meaning_keep(raw):
    """GIVEN no data_lake block THEN the documented defaults; WHEN noncurrent_version_expiration_days is null THEN
    old versions are kept (a regulator's choice) while rewritten data keeps its own short window; WHEN it is
    shorter than the rewritten window's default THEN that window follows it."""
    raw["environments"]["staging"].pop("data_lake", None)
    raw["environments"]["prod"]["data_lake"] = {"noncurrent_version_expiration_days": None}
    raw["environments"]["dev"]["data_lake"] = {"noncurrent_version_expiration_days": 2}
    lakes = {name: env.data_lake for name, env in parse_config(raw).environments.items()}
    staging = lakes["staging"]
    assert (staging.noncurrent_version_expiration_days, staging.rewritten_noncurrent_days) == (90, 3)
    assert (staging.inference_expiration_days, staging.inference_records_expiration_days) == (400, None)
    assert staging.pipeline_work_expiration_days == 400
    assert (lakes["prod"].noncurrent_version_expiration_days, lakes["prod"].rewritten_noncurrent_days) == (None, 3)
    assert (lakes["dev"].noncurrent_version_expiration_days, lakes["dev"].rewritten_noncurrent_days) == (2, 2)


def test_out_of_range_number_names_the_bound(raw):
    raw["environments"]["prod"]["glue"]["number_of_workers"] = 1000
    (problem,) = problems_of(raw)
    assert problem == (
        "environment 'prod': field 'glue.number_of_workers': Input should be less than or equal to 299 (got 1000)"
    )


def test_unknown_glue_worker_type_lists_allowed_values(raw):
    raw["environments"]["prod"]["glue"]["worker_type"] = "G.16X"
    (problem,) = problems_of(raw)
    assert "field 'glue.worker_type'" in problem and "'G.1X', 'G.2X', 'G.4X' or 'G.8X'" in problem


def test_a_frozen_test_set_is_re_frozen_when_stale_unless_the_environment_says_never(raw):
    """GIVEN no training.test_set_refreeze THEN when_stale (Prepare replaces a stale set); never is accepted; anything
    else is refused, naming the field and the two values."""
    assert parse_config(raw).environments["dev"].training.test_set_refreeze == "when_stale"
    raw["environments"]["dev"].setdefault("training", {})["test_set_refreeze"] = "never"
    assert parse_config(raw).environments["dev"].training.test_set_refreeze == "never"
    raw["environments"]["dev"]["training"]["test_set_refreeze"] = "weekly"
    assert problems_of(raw) == ["environment 'dev': field 'training.test_set_refreeze': Input should be 'when_stale' or "
                                "'never' (got 'weekly')"]


def test_unknown_model_referenced_by_environment(raw):
    raw["environments"]["dev"]["models"] = ["churn", "fraud"]
    assert problems_of(raw) == [
        "environment 'dev': field 'models': unknown model(s) ['fraud']; allowed: churn, credit-risk"
    ]


def test_destroy_is_only_allowed_in_dev(raw):
    raw["environments"]["prod"]["removal_policy"] = "destroy"
    assert problems_of(raw) == [
        "environment 'prod': field 'removal_policy': 'destroy' is only allowed when tier is 'dev'; allowed here: 'retain'"
    ]


def test_prod_must_be_termination_protected(raw):
    raw["environments"]["prod"]["termination_protection"] = False
    assert problems_of(raw) == [
        "environment 'prod': field 'termination_protection': must be true when tier is 'prod'"
    ]


def test_bad_cron_expression_shows_the_expected_form(raw):
    raw["environments"]["dev"]["glue"] = {"etl_schedule": "every day"}
    (problem,) = problems_of(raw)
    assert "field 'glue.etl_schedule'" in problem and "cron(Minutes Hours" in problem


def test_unknown_field_is_rejected_not_ignored(raw):
    raw["environments"]["dev"]["glue"] = {"workers": 4}
    (problem,) = problems_of(raw)
    assert problem.startswith("environment 'dev': field 'glue.workers': unknown field")


def test_several_problems_are_reported_together(raw):
    raw["environments"]["dev"]["region"] = "mars-1"
    raw["environments"]["prod"]["log_retention_days"] = 42
    problems = problems_of(raw)
    assert len(problems) == 2
    assert problems[0].startswith("environment 'dev': field 'region'")
    assert problems[1].startswith("environment 'prod': field 'log_retention_days'")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"features": ["tenure_months", "not_a_feature"]},
            "model 'churn': field 'features': ['not_a_feature'] are not defined for dataset 'customer_churn'",
        ),
        ({"target": "tenure_months"}, "model 'churn': field 'target': 'tenure_months' is not a label"),
        ({"dataset": "weather"}, "model 'churn': field 'dataset': unknown dataset 'weather'; allowed: credit_risk, customer_churn"),
        (
            {"features": ["tenure_months", "gender"]},
            "model 'churn': field 'sensitive_attribute': 'gender' must not be a model input",
        ),
        ({"sensitive_attribute": "tenure_months"}, "model 'churn': field 'sensitive_attribute': 'tenure_months' must be a categorical"),
        ({"slices": ["monthly_charges"]}, "model 'churn': field 'slices': ['monthly_charges'] must be categorical"),
        ({"serving": {"mode": "streaming"}}, "model 'churn': field 'serving.mode': Input should be 'realtime', 'serverless', 'async', 'batch' or 'multi_model'"),
    ],
)
def test_model_errors_name_model_field_and_allowed_values(raw, change, expected):
    raw["models"]["churn"].update(change)
    (problem,) = problems_of(raw)
    assert problem.startswith(expected), problem


def _card_clash(model: str, other: str) -> str:
    return (f"model {other!r}: its name is the name of model {model!r} followed by '-v', so the roles of {model!r} could create "
            f"and update the model cards of {other!r} (a version's card is named <project>-<env>-{model}-v<version>-<time>, "
            f"granted as <project>-<env>-{model}-v*: IAM cannot match only digits after the 'v'); rename model {other!r} so "
            f"that it does not start with '{model}-v'")


@pytest.mark.parametrize("other", ["churn-vip", "churn-v2", "churn-v"])
def test_a_model_named_after_another_followed_by_v_is_refused_naming_both_and_the_rename(raw, other):
    """GIVEN model churn and a second model named churn-v... (deployed beside it or not: any environment may deploy
    both) WHEN the config is read THEN it is refused in one line naming both models and the fix: churn's card grant
    (<group>-v*) would cover the other's cards (trialM finding 2)."""
    raw["models"][other] = copy.deepcopy(raw["models"]["churn"])
    assert problems_of(raw) == [_card_clash("churn", other)]


@pytest.mark.parametrize("other", ["churn-retrain", "churn-retrain-eu"])
def test_a_model_named_after_another_followed_by_retrain_is_refused_naming_both_and_the_rename(raw, other):
    """GIVEN model churn and a second model named churn-retrain[-...] WHEN the config is read THEN it is refused in one
    line naming both models and the fix: the second's alarms (<prefix>-churn-retrain-...-...) start with churn's retrain
    alarm prefix, so they would start churn's retraining."""
    raw["models"][other] = copy.deepcopy(raw["models"]["churn"])
    assert problems_of(raw) == [
        f"model {other!r}: its name is the name of model 'churn' followed by '-retrain', so the alarms of {other!r} "
        f"(<project>-<env>-{other}-...) would start the retraining of model 'churn' when they fire (a model's retrain alarms are "
        "found by their name's start, <project>-<env>-churn-retrain-); rename model "
        f"{other!r} so that it does not start with 'churn-retrain'"]


@pytest.mark.parametrize("other", ["churnv2", "churn2", "churn-x", "churn-risk", "vip-churn", "churn-retrainer"])
def test_a_model_whose_name_only_starts_like_another_is_accepted(raw, other):
    raw["models"][other] = copy.deepcopy(raw["models"]["churn"])
    assert other in parse_config(raw).models


def _environment_clash(shorter: str, longer: str, kind: str, name: str, account: str, region: str) -> str:
    rest = longer[len(shorter) + 1:]
    return (f"environments {shorter!r} and {longer!r}: both deploy to account {account} in {region}, and {longer!r} is "
            f"{shorter!r} followed by '-', so the names {shorter!r} gives {kind} {name!r} "
            f"(mlops-loop-{shorter}-{name.replace('_', '-')}-...) are names of the resources of {longer!r} "
            f"(mlops-loop-{longer}-...; CloudFormation refuses the second at deploy); rename {kind} {name!r} so that it "
            f"does not start with {rest + ('_' if kind == 'dataset' else '-')!r}, or rename one environment so that "
            f"neither name is the other's followed by '-' (e.g. {longer!r} to {longer.replace('-', '')!r}), or deploy "
            "them to another account or region")


def _environment_overlap(shorter: str, longer: str, account: str, region: str) -> str:
    rest = longer[len(shorter) + 1:]
    return (f"environments {shorter!r} and {longer!r}: both deploy to account {account} in {region}, and {longer!r} is "
            f"{shorter!r} followed by '-', so what {shorter!r} grants by name (mlops-loop-{shorter}-*) reaches the "
            f"resources of {longer!r}, and a dataset, model or team of {shorter!r} whose name starts with {rest!r} and '_' or "
            f"'-' would take names of {longer!r} (refused then); no name is shared today, so a deployment of both "
            f"keeps working. To part them, rename one (e.g. {longer!r} to {longer.replace('-', '')!r}): a renamed "
            "environment is a new, empty stack beside the old one, which is left running with its data (the template "
            "diff calls it MOVED); or deploy them to another account or region")


def _real_accounts(raw: dict) -> None:
    """Real, separate accounts for dev, staging and prod, and prod's approvers named (what a deployment goes out with:
    no warning of its own)."""
    for env, account in zip(("dev", "staging", "prod"), ("104937262811", "270418365510", "598812047733")):
        raw["environments"][env]["account"] = account
    raw["environments"]["prod"]["approvers"] = ["arn:aws:iam::598812047733:role/model-approvers"]


@pytest.mark.parametrize("longer", ["dev-eu", "dev-eu-2"])
def test_an_environment_named_after_another_followed_by_a_dash_in_its_account_and_region_is_accepted_with_a_warning(
        raw, longer):
    """GIVEN environment dev and a second one named dev-... in the same account and region, as a deployment made before
    the name check may run, and no dataset or model of dev whose name takes one of the second's WHEN the config is read
    THEN it is accepted (refusing it would leave that deployment no way forward but a renamed environment, i.e. new
    empty stacks) with one warning naming both, what dev's grants reach, what would be refused and how to part them."""
    _real_accounts(raw)
    raw["environments"][longer] = copy.deepcopy(raw["environments"]["dev"])
    env = raw["environments"]["dev"]
    config = parse_config(raw)
    assert longer in config.environments
    assert config.warnings() == [_environment_overlap("dev", longer, env["account"], env["region"])]


@pytest.mark.parametrize("kind", ["model", "dataset", "team"])
def test_an_environment_named_after_another_followed_by_a_dash_whose_names_collide_is_refused(raw, kind):
    """GIVEN environments dev and dev-eu in one account and region, and dev deploying a model eu-churn (its endpoint
    mlops-loop-dev-eu-churn-...), a dataset eu_churn (its feature group mlops-loop-dev-eu-churn) or a model of team
    eu-fraud (its topic mlops-loop-dev-eu-fraud-notifications, dev-eu's team fraud's) WHEN the config is read
    THEN it is refused in one line naming both environments, the model, dataset or team that takes the other's names
    and the fixes."""
    raw["environments"]["dev-eu"] = copy.deepcopy(raw["environments"]["dev"])
    env = raw["environments"]["dev"]
    model = env["models"][0]
    if kind == "model":
        raw["models"]["eu-churn"] = copy.deepcopy(raw["models"][model])
        env["models"].append("eu-churn")
        name = "eu-churn"
    elif kind == "dataset":
        dataset = raw["models"][model]["dataset"]
        raw["datasets"]["eu_churn"] = copy.deepcopy(raw["datasets"][dataset])
        raw["models"]["churn-eu-data"] = {**copy.deepcopy(raw["models"][model]), "dataset": "eu_churn"}
        env["models"].append("churn-eu-data")
        name = "eu_churn"
    else:
        raw["models"][model]["owner"] = {"team": "eu-fraud"}
        name = "eu-fraud"
    assert problems_of(raw) == [_environment_clash("dev", "dev-eu", kind, name, env["account"], env["region"])]


@pytest.mark.parametrize("where", [{"region": "eu-central-1"}, {"account": "444444444444"}])
def test_an_environment_named_after_another_followed_by_a_dash_elsewhere_is_accepted(raw, where):
    raw["environments"]["dev-eu"] = {**copy.deepcopy(raw["environments"]["dev"]), **where}
    assert "dev-eu" in parse_config(raw).environments


@pytest.mark.parametrize("other", ["deveu", "dev2", "devops"])
def test_an_environment_whose_name_only_starts_like_another_is_accepted(raw, other):
    raw["environments"][other] = copy.deepcopy(raw["environments"]["dev"])
    assert other in parse_config(raw).environments


def test_the_environment_name_check_guards_an_app_config_built_directly(sample):
    from pydantic import ValidationError

    from mlops_loop.config import app_config

    dev = sample.environments["dev"]
    model = sample.models[dev.models[0]]
    models = {**sample.models, "eu-churn": model.model_copy(update={"name": "eu-churn"})}
    environments = {**sample.environments, "dev": dev.model_copy(update={"models": (*dev.models, "eu-churn")}),
                    "dev-eu": dev.model_copy(update={"name": "dev-eu"})}
    with pytest.raises(ValidationError, match=re.escape(
            _environment_clash("dev", "dev-eu", "model", "eu-churn", dev.account, dev.region))):
        app_config.AppConfig.model_validate({"project": sample.project, "datasets": sample.datasets, "models": models,
                                             "environments": environments}, context={"datasets": sample.datasets})


def test_the_model_name_check_guards_an_app_config_built_directly(sample):
    from pydantic import ValidationError

    from mlops_loop.config import app_config

    models = {**sample.models, "churn-vip": sample.models["churn"].model_copy(update={"name": "churn-vip"})}
    with pytest.raises(ValidationError, match=re.escape(_card_clash("churn", "churn-vip"))):
        app_config.AppConfig.model_validate({"project": sample.project, "datasets": sample.datasets, "models": models,
                                             "environments": sample.environments}, context={"datasets": sample.datasets})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("environments: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_config_objects_are_frozen(config):
    with pytest.raises(Exception):
        config.environments["dev"].region = "us-east-1"  # type: ignore[misc]


def test_app_exits_with_one_clear_message_on_bad_config(raw, tmp_path, app_entry, monkeypatch, capsys):
    """GIVEN a config with an unknown instance type WHEN app.py's main runs (as `cdk synth` would)
    THEN it exits 2 and prints the problem, not a stack trace (an exception other than the exit would fail here).

    In this process, as the tests below: that the real entry point, ``python app.py`` with the config named by
    ``cdk synth``'s context, turns such a config into exit status 2 and this line on stderr, with no traceback, is
    shown by tests/infra/test_config_location.py's run of it (the same mistake)."""
    broken = copy.deepcopy(raw)
    broken["environments"]["prod"]["training"]["instance_type"] = "ml.nope"
    printed = _app_exit_err(broken, tmp_path, app_entry, monkeypatch, capsys, {})
    assert "environment 'prod': field 'training.instance_type': unknown instance type 'ml.nope'" in printed
    assert "Traceback" not in printed


@pytest.fixture(scope="module")
def app_entry():
    """app.py loaded as a module (its ``__main__`` block does not run): ``main`` and its helpers, in this process."""
    spec = importlib.util.spec_from_file_location("app_entry", REPO_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _app_exit_line(raw, tmp_path, app_entry, monkeypatch, capsys, context: dict) -> str:
    """:func:`_app_exit_err`'s last line."""
    return _app_exit_err(raw, tmp_path, app_entry, monkeypatch, capsys, context).splitlines()[-1]


def _app_exit_err(raw, tmp_path, app_entry, monkeypatch, capsys, context: dict) -> str:
    """WHEN app.py's main runs on ``raw`` (written to a file the ``mlops-loop:config`` context names) with ``context``
    set on its App as ``cdk synth -c`` passes it (strings) THEN it exits 2: what it printed on stderr."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    new_app = app_entry.new_app

    def app_with_context():
        app = new_app(str(tmp_path / "out"))
        for key, value in {"mlops-loop:config": str(path), **context}.items():
            app.node.set_context(key, value)
        return app

    monkeypatch.setattr(app_entry, "new_app", app_with_context)
    with pytest.raises(SystemExit) as exited:
        app_entry.main()
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(("selection", "problem"), [
    ("dev,qa", "unknown environment(s) qa"),
    ("dev,", "an empty environment name"),
    ([], "no environment"),
])
def test_app_exits_with_one_clear_message_on_a_bad_environment_selection(raw, tmp_path, selection, problem, app_entry,
                                                                          monkeypatch, capsys):
    """GIVEN ``-c mlops-loop:environments=...`` naming an environment the config lacks (or an empty name)
    WHEN app.py's main runs THEN it exits 2 with one line naming the context, the problem and what the config has.

    In this process: the App is app.py's own (``new_app``) with the context ``cdk synth -c`` would pass it set on
    it; that the real entry point turns such a message into exit status 2 and stderr is shown by the ``python
    app.py`` runs of tests/infra/test_config_location.py."""
    assert _app_exit_line(raw, tmp_path, app_entry, monkeypatch, capsys, {"mlops-loop:environments": selection}) == (
        f"mlops-loop: context 'mlops-loop:environments': {selection!r} names {problem}; give a comma-separated "
        f"list of {', '.join(raw['environments'])} (or leave it out for all)")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_app_exits_with_one_clear_message_on_a_bootstrap_qualifier_no_bootstrap_can_have(raw, tmp_path, app_entry,
                                                                                     monkeypatch, capsys):
    """GIVEN ``@aws-cdk/core:bootstrapQualifier`` set to a value no bootstrap the app deploys through can have (as
    ``cdk synth -c`` passes it, a string) WHEN app.py's main runs THEN it exits 2 with one line naming the key and the
    fix, before any stack is built."""
    context = {"@aws-cdk/core:bootstrapQualifier": "Central_Team"}
    assert _app_exit_line(raw, tmp_path, app_entry, monkeypatch, capsys, context) == (
        "mlops-loop: context '@aws-cdk/core:bootstrapQualifier': 'Central_Team' is not a CDK bootstrap qualifier: give "
        "1-10 lowercase letters, digits or '-' (the bootstrap template takes at most 10 characters, and the qualifier names "
        "the bootstrap bucket, which takes no capitals or '_'), the one the account was bootstrapped with (cdk bootstrap "
        "--qualifier)")
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize("days_after", [0, 1])
def test_synth_warns_once_on_stderr_when_the_xgboost_image_is_past_its_end_of_patch(raw, tmp_path, app_entry, monkeypatch,
                                                                                   capsys, days_after):
    """GIVEN the app's XGBoost image on (or after) its end of patch by synth's clock (UTC) WHEN app.py's main runs THEN
    it says so once, as a warning line with the config's, before any stack is built, and goes on (the build here is
    stopped right after, to keep the test quick)."""
    from pipeline_code.core import images

    eop = images.END_OF_PATCH[images.XGBOOST_IMAGE_VERSION] + dt.timedelta(days=days_after)

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            assert tz is dt.timezone.utc, "synth's date is the UTC one"
            return cls(eop.year, eop.month, eop.day, 0, 30, tzinfo=tz)

    class Built(Exception):
        pass

    def build_app(*args, **kwargs):
        raise Built

    monkeypatch.setattr(app_entry, "datetime", type("datetime_module", (), {"datetime": Clock, "timezone": dt.timezone}))
    monkeypatch.setattr(app_entry, "build_app", build_app)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    new_app = app_entry.new_app

    def app_with_config():
        app = new_app(str(tmp_path / "out"))
        app.node.set_context("mlops-loop:config", str(path))
        return app

    monkeypatch.setattr(app_entry, "new_app", app_with_config)
    with pytest.raises(Built):
        app_entry.main()
    expected = f"mlops-loop: warning: {images.end_of_patch_warning(eop)}"
    assert "passed its end of patch" in expected
    assert capsys.readouterr().err.splitlines().count(expected) == 1


@pytest.mark.parametrize("named", [False, True])
def test_synth_hands_the_apps_printed_commands_the_config_it_reads_unless_it_is_the_default(raw, tmp_path, app_entry,
                                                                                          monkeypatch, named):
    """GIVEN app.py given another config than the default (the context) WHEN main builds the app THEN build_app is told
    to name that file in the commands it prints (--config); with the default config, none."""
    seen = {}

    class Built(Exception):
        pass

    def build_app(*args, **kwargs):
        seen.update(kwargs)
        raise Built

    monkeypatch.setattr(app_entry, "build_app", build_app)
    monkeypatch.delenv("MLOPS_LOOP_CONFIG", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    new_app = app_entry.new_app

    def app_with_config():
        app = new_app(str(tmp_path / "out"))
        if named:
            app.node.set_context("mlops-loop:config", str(path))
        return app

    monkeypatch.setattr(app_entry, "new_app", app_with_config)
    with pytest.raises(Built):
        app_entry.main()
    assert seen["cli_config"] == (str(path) if named else None)


def test_a_selection_is_synthesized_in_the_configs_order_and_naming_every_environment_is_the_whole_app(sample, app_entry):
    """GIVEN the frozen sample (dev, staging, prod) WHEN app.py reads a selection THEN it keeps the config's
    order, drops repeats, and a selection of every environment is no selection (an assembly stamped whole)."""
    select = app_entry._selected_environments
    assert select(None, sample) is None
    assert select("prod, dev,prod", sample) == ["dev", "prod"]
    assert select(["staging"], sample) == ["staging"]
    assert select("prod,staging,dev", sample) is None


def test_environment_and_model_names_must_fit_aws_resource_names(raw):
    raw["environments"]["Prod_1"] = raw["environments"].pop("prod")
    raw["models"]["Churn Model"] = raw["models"].pop("churn")
    for env in raw["environments"].values():
        env["models"] = ["credit-risk"]
    problems = problems_of(raw)
    assert "model 'Churn Model': field 'name': must be 2-20 characters of lowercase letters, digits and '-', starting with a letter" in problems
    assert any(p.startswith("environment 'Prod_1': field 'name': must be 2-20 characters") for p in problems)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("cron(99 2 * * ? *)", "minutes '99' is out of range: 99 is not within 0-59"),
        ("cron(0 25 * * ? *)", "hours '25' is out of range: 25 is not within 0-23"),
        ("cron(0 2 32 * ? *)", "day-of-month '32' is out of range: 32 is not within 1-31"),
        ("cron(0 2 * 13 ? *)", "month '13' is out of range: 13 is not within 1-12 or JAN-DEC"),
        ("cron(0 2 ? * FUNDAY *)",
         "day-of-week 'FUNDAY' is not valid: 'FUNDAY' is not a value; allowed: 1-7 or SUN-SAT, '*', ranges, '?', "
         "'nL' and 'n#k'"),
        ("cron(0 2 * * ? 1969)", "year '1969' is out of range: 1969 is not within 1970-2199"),
        ("cron(0/0 2 * * ? *)", "minutes '0/0' has step '0'; a step is a positive whole number"),
        ("cron(5-1 2 * * ? *)", "minutes '5-1' has range '5-1' that ends before it starts"),
        ("cron(? 2 * * ? *)", "minutes '?' cannot be '?' (only day-of-month or day-of-week can)"),
        ("cron(0 2 ? * 2#6 *)", "day-of-week '2#6' uses '2#6'; '#' takes a weekday and an occurrence 1-5, e.g. '2#1'"),
        ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        # valid field by field, but it never runs (AWS accepts it: the job would silently never start)
        ("cron(0 2 30,31 FEB ? *)", "day-of-month '30,31' falls in none of the months 'FEB', so the schedule never "
                                    "runs; pick days those months have"),
        ("cron(0 2 * * ? 2020-2022)", f"year '2020-2022' is past, so the schedule never runs again; use '*' or years "
                                      f"from {dt.datetime.now(dt.timezone.utc).year} on"),
    ],
)
def test_a_cron_value_aws_would_reject_fails_naming_the_field(raw, schedule, expected):
    """GIVEN a schedule whose shape is right but whose values AWS rejects at deploy time (issue #13)
    WHEN the config is validated THEN one line names the environment, the YAML field and the bad part."""
    raw["environments"]["dev"]["glue"] = {"etl_schedule": schedule}
    assert problems_of(raw) == [f"environment 'dev': field 'glue.etl_schedule': '{schedule}': {expected}"]


_THIS_YEAR = dt.datetime.now(dt.timezone.utc).year


@pytest.mark.parametrize("schedule", ["cron(0 4 ? * SUN *)", "cron(0/15 * * * ? *)",
                                      f"cron(0 8 1,15 * ? {_THIS_YEAR}-{_THIS_YEAR + 3})",
                                      "cron(0 8 29 2 ? *)", "cron(0 8 31 1-2 ? *)", "cron(0 8 30 */2 ? *)",
                                      "cron(0 18 ? * MON-FRI *)", "cron(0 10 L * ? *)", "cron(0 10 15W * ? *)",
                                      "cron(0 10 ? * 6L *)", "cron(0 10 ? * 2#1 *)", "cron(0 2 * JAN-DEC ? *)"])
def test_every_cron_form_aws_accepts_is_accepted(raw, schedule):
    """GIVEN names, ranges, lists, steps, L, W and # WHEN validated THEN accepted (no false refusal)."""
    raw["environments"]["dev"]["glue"] = {"etl_schedule": schedule}
    assert parse_config(raw).environments["dev"].glue.etl_schedule == schedule


@pytest.mark.parametrize("schedule", ["rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(6 hours)", "rate(1 day)",
                                      "rate(7 days)", "cron(0 4 ? * SUN *)"])
def test_scheduler_fields_take_rate_and_cron_and_glue_takes_cron_only(raw, schedule):
    """GIVEN a rate or cron expression EventBridge Scheduler accepts WHEN set as the retraining schedule THEN it is
    accepted as written; the Glue trigger's etl_schedule takes cron only (the monitoring schedule: see below)."""
    raw["environments"]["dev"]["training"] = {"retraining_schedule": schedule}
    env = parse_config(raw).environments["dev"]
    assert env.training.retraining_schedule == schedule
    raw["environments"]["dev"]["glue"] = {"etl_schedule": schedule}
    if schedule.startswith("cron("):
        assert parse_config(raw).environments["dev"].glue.etl_schedule == schedule
    else:
        assert problems_of(raw) == [
            f"environment 'dev': field 'glue.etl_schedule': '{schedule}' is not a cron expression; use cron(Minutes "
            "Hours Day-of-month Month Day-of-week Year), e.g. 'cron(0 2 * * ? *)'"]


def test_a_dataset_whose_feature_group_name_feature_store_refuses_is_named_once(raw):
    """GIVEN a 59-character dataset name WHEN validated THEN one line names the dataset's field, the longest
    feature group name it would make (over Feature Store's 64 characters), every environment and the fix -
    before synth, where it would have been a traceback from the Feature Store construct."""
    long = "customer_churn_events_from_the_web_shop_and_the_app_v2_2026"
    first = next(iter(raw["models"].values()))
    raw["datasets"][long] = raw["datasets"].pop(first["dataset"])
    for model in raw["models"].values():
        if model.get("dataset") not in raw["datasets"]:
            model["dataset"] = long
    envs = [name for name, env in raw["environments"].items() if any(raw["models"][m]["dataset"] == long for m in env["models"])]
    longest = max(envs, key=len)
    name = f"{raw.get('project', 'mlops-loop')}-{longest}-{long.replace('_', '-')}"
    assert problems_of(raw) == [
        f"field 'datasets.{long}': feature group name {name!r} (project + environment + dataset) is {len(name)} "
        f"characters; Feature Store allows at most 64 (environments: {', '.join(envs)}); shorten the dataset name "
        "(59 characters) or the project or environment name"
    ]


def test_a_duplicated_model_block_is_refused_with_both_lines(tmp_path):
    """GIVEN the sample config with its first model's block pasted a second time under ``models``
    WHEN loaded THEN one line names the key's path and both line numbers (YAML would keep only the last
    block, silently: another dataset, a lost feature group)."""
    lines = SAMPLE_CONFIG.read_text().splitlines()
    first = next(i for i in range(lines.index("models:") + 1, len(lines)) if re.match(r"^  [a-z][a-z0-9-]*:", lines[i]))
    end = next(i for i in range(first + 1, len(lines)) if re.match(r"^ {0,2}\S", lines[i]))
    name = lines[first].strip().rstrip(":")
    path = tmp_path / "dup.yaml"
    path.write_text("\n".join(lines[:end] + lines[first:end] + lines[end:]) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"field 'models.{name}': duplicate key at line {end + 1} (first at line {first + 1}); YAML keeps only the "
        "last one, so merge the two or rename one"
    ]


def test_a_duplicated_environment_is_refused(tmp_path):
    """GIVEN two ``dev:`` environments WHEN loaded THEN refused naming environments.dev and both lines."""
    path = tmp_path / "dup.yaml"
    path.write_text("project: p\nenvironments:\n  dev:\n    tier: dev\n  dev:\n    tier: prod\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        "field 'environments.dev': duplicate key at line 5 (first at line 3); YAML keeps only the last one, so merge "
        "the two or rename one"
    ]


def test_an_unquoted_account_id_says_to_quote_it(raw):
    """GIVEN an account id written without quotes (YAML makes a number of it; with a leading 0, an octal one)
    WHEN validated THEN the line says to quote it and shows the number YAML produced."""
    raw["environments"]["dev"]["account"] = yaml.safe_load("account: 012345670123")["account"]
    assert problems_of(raw) == [
        "environment 'dev': field 'account': must be a quoted string, e.g. account: \"123456789012\"; YAML read the "
        f"unquoted value as the number {int('12345670123', 8)}"
    ]


def test_a_bucket_name_longer_than_s3_allows_fails_at_load_naming_what_to_shorten(raw):
    """GIVEN a 20-character project (the longest the config allows), environment 'staging' in eu-central-1
    WHEN validated THEN one line names the environment, the longest bucket name, its length and what to shorten,
    instead of a traceback from the data-lake construct at synth."""
    raw["project"] = "abcdefghijklmnopqrst"
    raw["environments"]["staging"]["region"] = "eu-central-1"
    account = raw["environments"]["staging"]["account"]
    name = f"abcdefghijklmnopqrst-staging-access-logs-{account}-eu-central-1"
    problems = problems_of(raw)
    assert f"environment 'staging': bucket name '{name}' is {len(name)} characters; S3 allows at most 63; shorten " \
           "the project name ('abcdefghijklmnopqrst', 20 characters) or the environment name ('staging')" in problems


@pytest.mark.parametrize("project", ["xn--shop", "sthree-ml"])
def test_a_project_name_s3_reserves_as_a_bucket_prefix_is_refused(raw, project):
    """GIVEN a project name starting with a prefix S3 reserves WHEN validated THEN one line for 'project'."""
    raw["project"] = project
    reserved = "xn--" if project.startswith("xn--") else "sthree-"
    assert problems_of(raw) == [
        f"field 'project': '{project}' starts with '{reserved}', which S3 reserves for bucket names (every bucket name "
        "starts with the project); choose another project name"
    ]


def test_a_mistake_under_defaults_is_reported_once_as_defaults(raw):
    """GIVEN a bad value under ``defaults`` that every environment inherits
    WHEN validated THEN it is one line naming ``defaults`` and the field, not one per environment."""
    raw["defaults"].setdefault("monitoring", {})["psi_threshold"] = "high"
    assert problems_of(raw) == [
        "defaults: field 'monitoring.psi_threshold': must be a number, not the string 'high'"
    ]


def test_an_environment_that_overrides_the_bad_default_is_not_blamed_for_it(raw):
    """GIVEN the same bad default, overridden with a valid value in one environment
    WHEN validated THEN still one ``defaults`` line, and nothing for the environment that overrides it."""
    raw["defaults"].setdefault("monitoring", {})["psi_threshold"] = "high"
    raw["environments"]["prod"].setdefault("monitoring", {})["psi_threshold"] = 0.25
    problems = problems_of(raw)
    assert len(problems) == 1 and problems[0].startswith("defaults: field 'monitoring.psi_threshold'")


def test_an_environment_block_beside_the_bad_default_does_not_take_the_blame(raw):
    """GIVEN a bad default, and an environment that sets another field of the same block
    WHEN validated THEN the line still names defaults (the environment never wrote that field)."""
    raw["defaults"].setdefault("monitoring", {})["psi_threshold"] = True
    raw["environments"]["prod"].setdefault("monitoring", {})["ks_p_value"] = 0.01
    assert problems_of(raw) == ["defaults: field 'monitoring.psi_threshold': must be a number, not the boolean true"]


@pytest.mark.parametrize(
    ("block", "field", "value", "expected"),
    [
        ("monitoring", "psi_threshold", True, "must be a number, not the boolean true"),
        ("monitoring", "psi_threshold", "0.2", "must be a number, not the string '0.2'; write it without quotes"),
        (None, "termination_protection", "yes", "must be a boolean (true/false), not the string 'yes'"),
        (None, "termination_protection", "true", "must be a boolean (true/false), not the string 'true'; write it "
                                                  "without quotes"),
        (None, "termination_protection", 1, "must be true or false, not the number 1"),
        (None, "log_retention_days", "90", "must be a number, not the string '90'; write it without quotes"),
    ],
)
def test_values_of_the_wrong_kind_are_refused_not_coerced(raw, block, field, value, expected):
    """GIVEN a boolean for a number, a quoted number or boolean, or a number for a boolean (issue #13: YAML makes
    these easy to write and pydantic would coerce them) WHEN validated THEN one line names the field and the fix."""
    env = raw["environments"]["prod"]
    (env.setdefault(block, {}) if block else env)[field] = value
    path = f"{block}.{field}" if block else field
    assert problems_of(raw) == [f"environment 'prod': field '{path}': {expected}"]


def test_a_schedule_native_model_monitor_cannot_run_is_refused_at_load_naming_the_field(raw):
    """Was a traceback from the NativeModelMonitor construct naming its prop ``native_schedule``."""
    raw["environments"]["prod"]["serving"]["churn"]["native_model_monitor"] = True
    raw["environments"]["prod"]["monitoring"] = {"schedule": "cron(30 3 * * ? *)"}
    assert problems_of(raw) == [
        "environment 'prod': field 'monitoring.schedule': 'cron(30 3 * * ? *)' cannot run as a Model Monitor schedule; "
        "allowed: an EventBridge cron at minute 0, every day of every month, with hours '*' (hourly), 'H' (daily at H "
        "UTC) or 'H/N' (every N hours from H), e.g. 'cron(0 3 * * ? *)' (model 'churn' sets "
        "serving.native_model_monitor, and Model Monitor runs no other schedule)"
    ]


def test_a_schedule_native_model_monitor_can_run_passes(raw):
    raw["environments"]["prod"]["serving"]["churn"]["native_model_monitor"] = True
    raw["environments"]["prod"]["monitoring"] = {"schedule": "cron(0 2 ? * * *)"}
    config = parse_config(raw)
    assert config.serving_of(config.environments["prod"], config.models["churn"]).native_model_monitor


def test_placeholder_accounts_and_a_prod_sharing_its_account_are_warned_about():
    # GIVEN the frozen sample (placeholder accounts 111..., 222..., 333...) with prod moved into staging's account
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["environments"]["prod"]["account"] = raw["environments"]["staging"]["account"]
    raw["environments"]["prod"]["approvers"] = ["arn:aws:iam::222222222222:role/model-approvers"]
    warnings = parse_config(raw).warnings()
    # THEN one line per placeholder and one for the shared prod account, each naming the field and the fix
    assert warnings == [
        "environment 'dev': field 'account': '111111111111' looks like a placeholder; put the AWS account id of this "
        "environment there before `cdk deploy`",
        "environment 'staging': field 'account': '222222222222' looks like a placeholder; put the AWS account id of this "
        "environment there before `cdk deploy`",
        "environment 'prod': field 'account': '222222222222' looks like a placeholder; put the AWS account id of this "
        "environment there before `cdk deploy`",
        "environment 'prod': field 'account': '222222222222' is also the account of 'staging'; give prod an account of its own",
    ]
    # AND real, separate accounts warn about nothing
    _real_accounts(raw)
    assert parse_config(raw).warnings() == []
    # AND a second prod environment in another region of prod's account is no shared-account mistake
    raw["environments"]["prod-apac"] = {**raw["environments"]["prod"], "region": "ap-southeast-2"}
    assert parse_config(raw).warnings() == []


def test_an_environment_named_like_production_but_not_of_tier_prod_is_warned_about():
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    for env, account in zip(("dev", "staging", "prod"), ("104937262811", "270418365510", "598812047733")):
        raw["environments"][env]["account"] = account
    raw["environments"]["prod"].update(tier="staging", log_retention_days=90)
    assert parse_config(raw).warnings() == [
        "environment 'prod': field 'tier': 'staging', so prod's guards are not enforced (human approval, retained and "
        "termination-protected stacks are required for tier prod only); set tier: prod if it serves production"]


def test_the_cross_checks_run_once_per_load_and_still_guard_an_app_config_built_directly(monkeypatch):
    """The checks across models and environments run in the loader (one line per problem among all the
    config's problems) and not again inside AppConfig; an AppConfig built without the loader runs them itself."""
    from pydantic import ValidationError

    from mlops_loop.config import app_config, loader

    calls = []
    for module in (loader, app_config):
        original = module.accelerator_problems
        monkeypatch.setattr(module, "accelerator_problems",
                            lambda models, envs, _original=original, _where=module.__name__: calls.append(_where) or _original(models, envs))
    config = load_config(SAMPLE_CONFIG)
    assert calls == ["mlops_loop.config.loader"]

    # GIVEN the loaded parts WHEN an environment trains on Inferentia2 and AppConfig is built directly THEN it is refused.
    prod = config.environments["prod"]
    on_inferentia = prod.model_copy(update={"training": prod.training.model_copy(update={"instance_type": "ml.inf2.xlarge"})})
    with pytest.raises(ValidationError, match=r"field 'training.instance_type': ml.inf2.xlarge is an"):
        app_config.AppConfig.model_validate(
            {"project": config.project, "datasets": config.datasets, "models": config.models,
             "environments": {**config.environments, "prod": on_inferentia}},
            context={"datasets": config.datasets},
        )
    assert calls[-1] == "mlops_loop.config.app_config"


@pytest.mark.parametrize("schedule", ["cron(0 3 * * ? *)", "cron(45 22 ? * * *)", "rate(1 day)", "rate(24 hours)",
                                      "rate(1440 minutes)"])
def test_the_monitor_runs_once_a_day(raw, schedule):
    raw["environments"]["dev"]["monitoring"] = {"schedule": schedule}
    assert parse_config(raw).environments["dev"].monitoring.schedule == schedule


@pytest.mark.parametrize("schedule", ["rate(6 hours)", "rate(2 days)", "rate(25 hours)", "cron(0 */6 * * ? *)", "cron(0 2/6 * * ? *)",
                                      "cron(0 3 ? * MON *)", "cron(0 3 1 * ? *)", "cron(*/30 3 * * ? *)"])
def test_a_monitoring_schedule_that_does_not_run_once_a_day_is_refused(raw, schedule):
    """The monitor judges the last 24 hours each run, and its calibrated thresholds, slow-drift sum and alarms count
    one run a day: more runs judge overlapping windows and multiply false alarms, fewer leave days unjudged."""
    raw["environments"]["dev"]["monitoring"] = {"schedule": schedule}
    assert problems_of(raw) == [
        f"environment 'dev': field 'monitoring.schedule': '{schedule}' does not run once a day; the drift monitor judges "
        "the last 24 hours per run and its thresholds and alarms count one run a day; use a daily cron such as "
        "'cron(0 3 * * ? *)' or 'rate(1 day)'"]


def test_a_models_own_gate_looser_than_what_prod_sets_itself_is_warned_about():
    # GIVEN prod sets a stricter four-fifths bound (0.9) and a model of prod keeps its own 0.6
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    _real_accounts(raw)
    model = raw["environments"]["prod"]["models"][0]
    raw["environments"]["prod"]["gate"] = {"min_disparate_impact": 0.9}
    raw["models"][model]["gate"] = {"min_disparate_impact": 0.6, "min_auc": 0.95}
    # THEN the looser key is named (the stricter min_auc of the model is not)
    assert parse_config(raw).warnings() == [
        f"environment 'prod': field 'gate.min_disparate_impact': 0.9 does not hold for model {model!r}, whose own "
        "gate.min_disparate_impact 0.6 is looser and wins; align the model's value if the environment's is the policy"]


@pytest.mark.parametrize("schedule", ["cron(0 1 * * ? *)", "cron(30 */6 * * ? *)", "cron(5 * * * ? *)", "rate(1 hour)",
                                      "rate(60 minutes)", "rate(1 day)"])
def test_a_batch_schedule_at_most_hourly_is_accepted(raw, schedule):
    """GIVEN a batch transform schedule whose runs are at least an hour apart WHEN validated THEN accepted as written."""
    name = next(iter(raw["models"]))
    raw["models"][name]["serving"] = {"mode": "batch", "batch": {"schedule": schedule}}
    config = parse_config(raw)
    assert config.serving_of(config.environments["dev"], config.models[name]).batch.schedule == schedule


@pytest.mark.parametrize("payload, concurrency", [(6, 0), (7, 0), (50, 2), (100, 1)])
def test_a_batch_payload_up_to_sagemakers_100_mb_is_accepted(raw, payload, concurrency):
    """GIVEN a batch mini-batch size above 6 MB, within SageMaker's 100 MB per instance WHEN validated THEN accepted:
    the serving container sets no request-size limit of its own (the XGBoost image serving one model by
    SAGEMAKER_PROGRAM: nginx client_max_body_size 0, no Flask MAX_CONTENT_LENGTH; its 6 MB default is its algorithm
    mode's and its multi-model server's), so a refusal would only cost a user throughput."""
    name = next(iter(raw["models"]))
    raw["models"][name]["serving"] = {"mode": "batch", "batch": {"max_payload_mb": payload,
                                                                 "max_concurrent_transforms": concurrency}}
    config = parse_config(raw)
    batch = config.serving_of(config.environments["dev"], config.models[name]).batch
    assert (batch.max_payload_mb, batch.max_concurrent_transforms) == (payload, concurrency)


@pytest.mark.parametrize("schedule, minutes", [("rate(1 minute)", ""), ("rate(59 minutes)", ""),
                                               ("cron(* 2 * * ? *)", " (minutes '*')"),
                                               ("cron(0,30 * * * ? *)", " (minutes '0,30')"),
                                               ("cron(0-1 3 * * ? *)", " (minutes '0-1')")])
def test_a_batch_schedule_more_often_than_hourly_is_refused_naming_the_field_and_the_fix(raw, schedule, minutes):
    """GIVEN a batch transform schedule with runs less than an hour apart (each scores every input file, with no time
    limit, started whether or not the previous run still runs) WHEN validated THEN one line names the field and the fix."""
    name = next(iter(raw["models"]))
    raw["models"][name]["serving"] = {"mode": "batch", "batch": {"schedule": schedule}}
    assert problems_of(raw) == [
        f"model '{name}': field 'serving.batch.schedule': '{schedule}' runs more than once an hour{minutes}; each batch "
        "transform run scores every file under input/ and a run starts even while the previous one runs; use one minute "
        "of the hour, e.g. 'cron(0 1 * * ? *)', or a rate of at least an hour, e.g. 'rate(6 hours)'"]


@pytest.mark.parametrize("hours", [0, -1])
def test_a_retraining_cooldown_under_an_hour_is_refused_naming_the_field_and_the_fix(raw, hours):
    """GIVEN a cooldown of 0 (or less), which turns off the cooldown WHEN validated THEN one line names the field and the
    fix; the storm guard's own window (24 hours) would hold anyway, but a cooldown that holds nothing is a mistake."""
    raw["environments"]["dev"]["monitoring"] = {"retraining_cooldown_hours": hours}
    assert problems_of(raw) == [
        f"environment 'dev': field 'monitoring.retraining_cooldown_hours': {hours} turns the cooldown off: every hourly "
        "sweep would start a retrain while a drift alarm stays in ALARM; use at least 1 (hours), e.g. 24 (the default: "
        "the drift monitor judges once a day)"]


def test_the_storm_guards_allowance_defaults_to_three_a_day_and_is_bounded(raw):
    assert parse_config(raw).environments["dev"].monitoring.retraining_max_starts_per_day == 3
    raw["environments"]["dev"]["monitoring"] = {"retraining_max_starts_per_day": 7}
    assert problems_of(raw) == ["environment 'dev': field 'monitoring.retraining_max_starts_per_day': Input should be "
                                "less than or equal to 6 (got 7)"]


@pytest.mark.parametrize("value, bound", [(-0.1, "greater than or equal to 0"), (1.5, "less than or equal to 1")])
def test_refused_requests_have_their_own_limit_five_percent_by_default_and_bounded(raw, value, bound):
    monitoring = parse_config(raw).environments["dev"].monitoring
    assert (monitoring.max_refused_rate, monitoring.max_malformed_rate) == (0.05, 0.01)
    raw["environments"]["dev"]["monitoring"] = {"max_refused_rate": value}
    assert problems_of(raw) == ["environment 'dev': field 'monitoring.max_refused_rate': Input should be "
                                f"{bound} (got {value})"]


@pytest.mark.parametrize("value, bound", [(0, "greater than or equal to 1"), (7, "less than or equal to 6")])
def test_the_circuit_breaker_pauses_after_two_failures_by_default_and_is_bounded(raw, value, bound):
    assert parse_config(raw).environments["dev"].monitoring.retraining_failures_before_pause == 2
    raw["environments"]["dev"]["monitoring"] = {"retraining_failures_before_pause": value}
    assert problems_of(raw) == ["environment 'dev': field 'monitoring.retraining_failures_before_pause': Input should be "
                                f"{bound} (got {value})"]


@pytest.mark.parametrize("value, expected", [
    ("ok", "say why the near-perfect score or the dominant feature is genuine, not a leak of the label, in a sentence a "
           "reviewer can check (at least 20 characters), e.g. \"cancel_reason is recorded when the customer calls, before "
           "the churn date\"; got 'ok'"),
    (True, "Input should be a valid string (got True)"),
])
def test_a_leakage_acknowledgement_must_be_a_reason_a_reviewer_can_read(raw, value, expected):
    model = next(iter(raw["models"]))
    raw["models"][model]["leakage_acknowledged"] = value
    assert problems_of(raw) == [f"model {model!r}: field 'leakage_acknowledged': {expected}"]


def test_a_leakage_acknowledgement_reaches_the_jobs_model_spec(raw):
    # GIVEN a model whose config says why its near-perfect score is genuine WHEN loaded THEN every job's spec carries it
    from pipeline_code.training.spec import parse_model_spec

    model = next(iter(raw["models"]))
    reason = "the label is recorded a month after every input"
    raw["models"][model]["leakage_acknowledged"] = reason
    spec = parse_model_spec(parse_config(raw).models[model].job_spec())
    assert spec.leakage_acknowledged == reason
    assert "leakage_acknowledged" not in parse_config(yaml.safe_load(SAMPLE_CONFIG.read_text())).models[model].job_spec()


def test_the_monitor_window_setting_the_reports_name_is_the_models_field(sample):
    """The monitor's cut-download warnings name the config field to raise (contract.MONITOR_WINDOW_SETTING): it is the
    model's, in GiB, and the job's --max-window-bytes is it in bytes."""
    from pipeline_code.core.contract import GIB, MONITOR_WINDOW_SETTING, monitor_window_fix

    model = next(iter(sample.models.values()))
    assert getattr(model, MONITOR_WINDOW_SETTING) == 2 and model.monitor_max_window_bytes == 2 * GIB
    assert monitor_window_fix("churn") == "raise models.churn.monitor_max_window_gib (the job's --max-window-bytes)"


@pytest.mark.synth
def test_app_exits_with_one_clear_message_per_template_over_cloudformations_size_limit(tmp_path, app_entry, monkeypatch, capsys):
    """GIVEN a three-model environment and (to keep the synth small) a template limit its Operations stack passes
    WHEN app.py synthesizes it THEN it exits 2, its last line naming that stack, the limit and the config field to change."""
    from mlops_loop.tools import stack_quotas
    from tests.support.construct_configs import fleet_config

    monkeypatch.setattr(stack_quotas, "MAX_TEMPLATE_BYTES", 100_000)
    line = _app_exit_line(fleet_config(3), tmp_path, app_entry, monkeypatch, capsys, {})
    assert re.fullmatch(r"mlops-loop: stack dev/\w+: its template is [\d,]+ bytes, over CloudFormation's 100,000-byte "
                        r"limit for a template: the deploy would fail\. Its size grows with the environment's models: "
                        r"serve fewer in environment dev \(environments\.dev\.models lists 3\) and move the others to a "
                        r"second project config \(docs/configuration.md \"A second project \(another config\)\"\)", line)


def test_an_async_model_whose_rollout_latency_is_set_keeps_it_even_below_or_far_above_its_alarm(raw):
    # A rollout latency the config sets is a decision (a rollout may be held to less than the pager's bound), and an
    # async model that takes up to an hour (and says so: inference_timeout_seconds) may bake against an hour: both are
    # accepted as given.
    for rollout_ms, alarm_ms in ((500, 180_000), (3_600_000, 1_800_000)):
        raw["models"]["churn"]["serving"] = {"mode": "async", "alarms": {"max_latency_p99_ms": alarm_ms},
                                             "inference_timeout_seconds": 3600,
                                             "async": {"rollout": {"max_latency_p99_ms": rollout_ms}}}
        raw["environments"]["dev"]["serving"]["churn"] = {"mode": "async"}
        served = parse_config(raw).environments["prod"].serving["churn"]
        assert (served.mode, served.rollout.max_latency_p99_ms) == ("async", rollout_ms)


def test_the_etl_schedule_is_switched_off_by_null(raw):
    """GIVEN glue.etl_schedule: null (an environment that runs the ETL only when started: dev, whose idle nightly
    crawls and jobs cost every month) WHEN loaded THEN it is accepted as no schedule."""
    raw["environments"]["dev"]["glue"] = {"etl_schedule": None}
    assert parse_config(raw).environments["dev"].glue.etl_schedule is None


@pytest.mark.parametrize("value, shown", [(False, "false"), ("off", "'off'"), ("none", "'none'"), ("", "''")])
def test_an_etl_schedule_that_looks_like_off_names_null(raw, value, shown):
    """GIVEN a value a user may write for "no schedule" (YAML reads an unquoted off/no/false as false) WHEN loaded THEN
    one line says null switches the schedule off, and how to start the workflow then."""
    raw["environments"]["dev"]["glue"] = {"etl_schedule": value}
    assert problems_of(raw) == [
        f"environment 'dev': field 'glue.etl_schedule': {shown} is not a schedule; write null to switch the nightly "
        "workflow off (start it with aws glue start-workflow-run --name <workflow>, the DataPipeline stack's "
        "<Dataset>WorkflowName output), or a cron expression such as 'cron(0 2 * * ? *)'"]


def _open_approval(raw: dict) -> list[str]:
    return [w for w in parse_config(raw).warnings() if "field 'approvers'" in w]


def _anyone_approves(models) -> list[str]:
    if not models:
        return []
    return [f"environment 'prod': field 'approvers': empty, so any principal of the account its own policies allow may "
            f"assume the approver role and approve versions of {', '.join(repr(m) for m in models)} (one it trained "
            "itself too); name who may approve (IAM role or user ARNs) or give the models' teams team_approvers before "
            "`cdk deploy` (docs/configuration.md, Every setting)"]


def test_a_prod_environment_whose_models_anyone_may_approve_is_warned_about():
    """GIVEN prod with real accounts WHEN no one is named to approve (approvers: [], no team_approvers) THEN one warning
    names the field, every model of prod, what it allows and the fix; naming approvers, or giving every model's team
    team_approvers, silences it, and a team covering some models leaves the others named."""
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    _real_accounts(raw)
    prod = raw["environments"]["prod"]
    models = list(prod["models"])
    assert _open_approval(raw) == []  # _real_accounts names prod's approvers
    prod["approvers"] = []
    assert _open_approval(raw) == _anyone_approves(models)
    # AND a team with approvers of its own takes its model off the list
    for model in models:
        raw["models"][model]["owner"] = {"team": "other"}
    raw["models"][models[0]]["owner"] = {"team": "risk"}
    prod["team_approvers"] = {"risk": ["arn:aws:iam::598812047733:role/risk-approvers"]}
    assert _open_approval(raw) == _anyone_approves(models[1:])
    prod["team_approvers"]["other"] = ["arn:aws:iam::598812047733:role/other-approvers"]
    assert _open_approval(raw) == []
    # AND a non-prod environment is not judged
    raw["environments"]["staging"]["approvers"] = []
    assert _open_approval(raw) == []
