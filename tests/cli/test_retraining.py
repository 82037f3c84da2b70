"""The retraining pause switch against moto (SSM, STS), and the trigger reading what it wrote.

moto answers as the account MOTO_ACCOUNT_ID names: prod's account in the frozen sample config, unless a test says
otherwise; its caller is ``arn:aws:sts::<account>:user/moto``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shlex

import boto3
import pytest
from moto import mock_aws

from mlops_cli import retraining as cli
from pipeline_code.core.contract import (RETRAINING_BREAKER, pause_value, retraining_pause_parameter,
                                         retraining_reset_parameter)
from pipeline_code.handlers import retrain_trigger as rt
from tests.support.configs import SAMPLE_CONFIG, sample_account, sample_without_model
from tests.support.credentials import without_credentials
from tests.support.cli_output import after_target_line

REGION = "eu-west-1"
ACCOUNT = sample_account("prod")
OTHER_ACCOUNT = sample_account("staging")
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"
CONFIG = ["--config", str(SAMPLE_CONFIG)]
BASE = ["--env", "prod", *CONFIG]
ENVIRONMENT = retraining_pause_parameter("mlops-loop-prod")
CHURN = retraining_pause_parameter("mlops-loop-prod", "churn")
NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone.utc)
REASON = "INC-42: bad labels in the lake"


@pytest.fixture()
def ssm(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)


def run(*argv: str) -> int:
    return cli.main([*BASE, *argv], now=lambda: NOW)


def value(ssm, name):
    return json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])


def test_pause_records_the_reason_the_callers_arn_and_the_time_and_the_trigger_then_starts_nothing(ssm, capsys):
    # WHEN on-call pauses the environment
    assert run("pause", "--reason", REASON) == 0
    # THEN the environment's parameter holds who, when and why, as a plain String (no secret in it)
    parameter = ssm.get_parameter(Name=ENVIRONMENT)["Parameter"]
    assert parameter["Type"] == "String"
    assert json.loads(parameter["Value"]) == {"reason": REASON, "by": CALLER, "at": "2026-11-26T09:30:00Z"}
    assert capsys.readouterr().out == (
        f"retraining of environment 'prod' paused: {ENVIRONMENT} = "
        f'{{"at": "2026-11-26T09:30:00Z", "by": "{CALLER}", "reason": "{REASON}"}}\n'
        "From now on no drift alarm, hourly sweep or retraining schedule starts any of its pipelines. An execution "
        "already running goes on (aws sagemaker stop-pipeline-execution stops it), and a person can still start one by "
        "hand.\n"
        f"Resume: python -m mlops_cli.retraining --env prod --config {SAMPLE_CONFIG} resume\n")
    # AND the trigger reads the pause as the CLI wrote it
    switch = rt.PauseSwitch(ssm, ENVIRONMENT, {"mlops-loop-prod-churn-training": CHURN})
    assert switch("mlops-loop-prod-churn-training") == {"parameter": ENVIRONMENT, "reason": REASON, "by": CALLER,
                                                        "at": "2026-11-26T09:30:00Z"}


def test_it_first_names_the_project_environment_account_and_region_it_acts_on_and_the_config_read(ssm, capsys):
    """In an account several projects share, the line says whose retraining is paused before anything is."""
    assert run("status") == 0
    assert capsys.readouterr().err == (f"project=mlops-loop environment=prod account={ACCOUNT} region={REGION} "
                                       f"(config {SAMPLE_CONFIG})\n")


def test_a_model_is_paused_on_its_own(ssm, capsys):
    assert run("--model", "churn", "pause", "--reason", "INC-43") == 0
    assert value(ssm, CHURN)["reason"] == "INC-43"
    assert ssm.get_parameters(Names=[ENVIRONMENT])["Parameters"] == []
    out = capsys.readouterr().out
    assert out.startswith(f"retraining of model 'churn' of environment 'prod' paused: {CHURN} = ")
    assert "starts its pipeline." in out
    assert out.endswith(f"Resume: python -m mlops_cli.retraining --env prod --model churn --config {SAMPLE_CONFIG} resume\n")


def test_pausing_what_is_paused_keeps_the_first_pause_and_says_so(ssm, capsys):
    assert run("pause", "--reason", REASON) == 0
    capsys.readouterr()
    assert cli.main([*BASE, "pause", "--reason", "another"], now=lambda: NOW + dt.timedelta(hours=1)) == 0
    assert value(ssm, ENVIRONMENT)["reason"] == REASON
    assert capsys.readouterr().out == (
        f"retraining of environment 'prod' is already paused since 2026-11-26T09:30:00Z by {CALLER}: {REASON}; nothing "
        "changed (to record another reason, resume, wait 30 seconds - SSM's delay before a deleted parameter can be "
        "created again - and pause again)\n")


def test_a_pause_ssm_will_not_create_yet_is_never_reported_as_holding(capsys):
    """GIVEN SSM refuses the parameter as existing while it cannot be read (created again within 30 seconds of its
    deletion) WHEN on-call pauses THEN the command fails saying retraining is NOT paused."""
    from botocore.stub import Stubber

    client = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("put_parameter", service_error_code="ParameterAlreadyExists", service_message="exists")
        stub.add_response("get_parameters", {"Parameters": [], "InvalidParameters": [ENVIRONMENT]}, {"Names": [ENVIRONMENT]})
        with pytest.raises(cli.CliError) as error:
            cli.pause(client, cli.Scope("prod", "mlops-loop-prod", None), reason=REASON, caller=CALLER, now=NOW,
                      out=None)
    assert str(error.value) == (
        f"SSM refused to create {ENVIRONMENT} (ParameterAlreadyExists) but it cannot be read: retraining of environment "
        "'prod' is NOT paused; a pause resumed less than 30 seconds ago cannot be created again yet, so wait a minute and run again")


def test_resume_deletes_the_pause_and_says_whose_pause_it_lifted(ssm, capsys):
    assert run("pause", "--reason", REASON) == 0
    capsys.readouterr()
    assert run("resume") == 0
    assert ssm.get_parameters(Names=[ENVIRONMENT])["Parameters"] == []
    assert capsys.readouterr().out == (
        f"retraining of environment 'prod' resumed by {CALLER}: lifted the pause since 2026-11-26T09:30:00Z by {CALLER}: "
        f"{REASON}.\n"
        "A retrain alarm still in ALARM is answered by the next hourly sweep (cooldown and storm guard permitting); a "
        "scheduled retraining that fell in the pause is not replayed.\n")


def test_resume_names_the_pauses_that_still_hold(ssm, capsys):
    # GIVEN the environment and churn both paused
    assert run("pause", "--reason", REASON) == 0
    assert run("--model", "churn", "pause", "--reason", "INC-43") == 0
    capsys.readouterr()
    # WHEN churn's pause is lifted THEN it says the environment's still holds churn
    assert run("--model", "churn", "resume") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"note: the whole environment 'prod' is still paused since 2026-11-26T09:30:00Z by {CALLER}: {REASON}: churn "
        f"does not retrain until python -m mlops_cli.retraining --env prod --config {SAMPLE_CONFIG} resume")
    # WHEN churn is paused again and the environment's pause is lifted THEN it says churn's still holds
    assert run("--model", "churn", "pause", "--reason", "INC-43") == 0
    capsys.readouterr()
    assert run("resume") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"note: model 'churn' is still paused on its own since 2026-11-26T09:30:00Z by {CALLER}: INC-43 "
        f"(python -m mlops_cli.retraining --env prod --model churn --config {SAMPLE_CONFIG} resume)")


def test_resuming_a_model_records_when_so_the_circuit_breaker_counts_failures_anew(ssm, capsys):
    """The trigger's circuit breaker counts only failures after the last resume: the ones that tripped it must not trip
    it again at the next sweep. Resuming what was not paused records nothing."""
    reset = retraining_reset_parameter("mlops-loop-prod", "churn")
    assert run("--model", "churn", "resume") == 0
    assert ssm.get_parameters(Names=[reset])["Parameters"] == []
    assert run("--model", "churn", "pause", "--reason", "INC-43") == 0
    assert run("--model", "churn", "resume") == 0
    assert value(ssm, reset) == {"reason": "resumed", "by": CALLER, "at": "2026-11-26T09:30:00Z"}
    # it pauses nothing
    assert rt.PauseSwitch(ssm, ENVIRONMENT, {"mlops-loop-prod-churn-training": CHURN})("mlops-loop-prod-churn-training") is None


def test_resuming_what_is_not_paused_changes_nothing(ssm, capsys):
    assert run("resume") == 0
    assert capsys.readouterr().out == "retraining of environment 'prod' is not paused; nothing changed\n"


def test_status_shows_the_environments_pause_and_every_models(ssm, capsys):
    assert run("status") == 0
    assert capsys.readouterr().out == ("environment 'prod': retraining not paused\n"
                                       "no model is paused on its own\n")
    assert run("--model", "churn", "pause", "--reason", "INC-43") == 0
    # a model's pause the config no longer lists is shown too (the trigger of an older deploy may still read it)
    ssm.put_parameter(Name=retraining_pause_parameter("mlops-loop-prod", "retired"), Value="by hand", Type="String")
    assert run("pause", "--reason", REASON) == 0
    capsys.readouterr()
    assert run("status") == 0
    assert capsys.readouterr().out == (
        f"environment 'prod': retraining PAUSED for every model ({ENVIRONMENT}) since 2026-11-26T09:30:00Z by {CALLER}: "
        f"{REASON}\n"
        f"model 'churn' of environment 'prod': retraining PAUSED for this model ({CHURN}) since 2026-11-26T09:30:00Z by "
        f"{CALLER}: INC-43\n"
        "model 'retired' of environment 'prod': retraining PAUSED for this model "
        "(/mlops-loop-prod/retraining/paused-models/retired) since unknown by unknown: by hand\n")
    assert run("--model", "credit-risk", "status") == 0
    assert capsys.readouterr().out == (
        f"environment 'prod': retraining PAUSED for every model ({ENVIRONMENT}) since 2026-11-26T09:30:00Z by {CALLER}: "
        f"{REASON}\n"
        "model 'credit-risk' of environment 'prod': retraining not paused\n")


def test_status_says_a_breakers_pause_whose_page_has_not_gone_out_yet(ssm, capsys):
    """GIVEN the circuit breaker paused churn but its page failed (recorded unannounced) WHEN the on-call engineer asks
    for the status THEN it says nobody was paged yet and who will page it; once announced, the line is the usual one."""
    breaker = dict(reason="2 failed runs in a row", by=RETRAINING_BREAKER, at="2026-11-26T08:00:00Z")
    ssm.put_parameter(Name=CHURN, Value=pause_value(announced=False, **breaker), Type="String")
    assert run("--model", "churn", "status") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"model 'churn' of environment 'prod': retraining PAUSED for this model ({CHURN}) since 2026-11-26T08:00:00Z by "
        f"{RETRAINING_BREAKER}: 2 failed runs in a row; NOT PAGED YET: its page failed, the retrain trigger pages it at "
        "its next invocation or hourly sweep")
    ssm.put_parameter(Name=CHURN, Value=pause_value(announced=True, **breaker), Type="String", Overwrite=True)
    assert run("--model", "churn", "status") == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("by retrain-trigger circuit breaker: 2 failed runs in a row")


@pytest.mark.parametrize("reason, message", [
    ("   ", "argument --reason: say why retraining is paused (an incident id, what is wrong)"),
    ("x" * 501, "argument --reason: at most 500 characters (501 given)"),
])
def test_pause_needs_a_reason(ssm, capsys, reason, message):
    with pytest.raises(SystemExit) as exit_:
        run("pause", "--reason", reason)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)
    with pytest.raises(SystemExit):
        run("pause")
    assert "the following arguments are required: --reason" in capsys.readouterr().err


def test_credentials_of_another_account_are_refused_before_anything_is_read_or_changed(ssm, monkeypatch, capsys):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", OTHER_ACCOUNT)
    assert run("pause", "--reason", REASON) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert after_target_line(captured.err) == (f"retraining: error: the credentials are of account {OTHER_ACCOUNT}, environment 'prod' is "
                            f"account {ACCOUNT}; use that account's credentials (e.g. AWS_PROFILE) and run again\n")
    assert boto3.client("ssm", region_name=REGION).get_parameters(Names=[ENVIRONMENT])["Parameters"] == []


def test_a_model_the_environment_does_not_deploy_is_refused_from_the_config(ssm, capsys, tmp_path):
    config = sample_without_model(tmp_path, "prod", "credit-risk")
    assert cli.main(["--env", "prod", "--model", "credit-risk", "--config", str(config), "pause", "--reason", REASON]) == 2
    assert capsys.readouterr().err == (
        f"retraining: error: --model credit-risk: environment 'prod' of {config} does not deploy it; choose from churn (or "
        "pass --region, --project and --account to reach a model the config no longer lists)\n")


def test_an_environment_the_config_lacks_is_one_clear_line(ssm, capsys):
    assert cli.main(["--env", "prdo", *CONFIG, "status"]) == 2
    assert capsys.readouterr().err == (f"retraining: error: --env prdo: not an environment of {SAMPLE_CONFIG}; choose from "
                                       "dev, staging, prod\n")


def test_a_refused_call_names_the_permissions_the_credentials_need(ssm, monkeypatch, capsys):
    from botocore.exceptions import ClientError

    def denied(*_, **__):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "PutParameter")

    monkeypatch.setattr(cli, "pause", denied)
    assert run("pause", "--reason", REASON) == 2
    assert after_target_line(capsys.readouterr().err) == (
        "retraining: error: AWS refused PutParameter: AccessDeniedException: not allowed; the credentials need "
        "ssm:PutParameter, ssm:DeleteParameter, ssm:GetParameters and ssm:GetParametersByPath on "
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/mlops-loop-prod/retraining/*\n")


def test_missing_credentials_are_one_clear_line(monkeypatch, tmp_path, capsys):
    without_credentials(monkeypatch, tmp_path)
    assert run("status") == 2
    assert after_target_line(capsys.readouterr().err) == (
        "retraining: error: no usable AWS credentials (NoCredentialsError: Unable to locate credentials): log in to account "
        f"{ACCOUNT} of environment 'prod' (e.g. aws sso login, AWS_PROFILE) and run again\n")


def test_the_readmes_commands_run_as_written(ssm, capsys):
    """GIVEN the commands of docs/monitoring.md's "Pausing retraining" WHEN each runs, in order, against the sample config's prod
    THEN each succeeds and ends in the state its comment says."""
    import shlex

    from tests.support.walkthrough import block

    lines = [shlex.split(line.split("#")[0]) for line in block("pause-retraining").strip().splitlines()]
    assert all(tokens[:3] == ["python", "-m", "mlops_cli.retraining"] for tokens in lines)
    for tokens in lines:
        assert cli.main([*CONFIG, *tokens[3:]], now=lambda: NOW) == 0
    # the environment's pause was lifted last; churn's own pause still holds
    assert ssm.get_parameters(Names=[ENVIRONMENT])["Parameters"] == []
    assert value(ssm, CHURN)["reason"] == "INC-43"


def test_a_resume_that_cannot_record_when_leaves_the_pause_in_place(ssm, capsys):
    """The circuit breaker counts failures after the last resume: were the pause lifted first and the record then
    refused (credentials allowed to delete the pause but not to write resumed-models/, a throttled call), the next sweep
    would count the failures that tripped the breaker and pause and page again at once. The record comes first: a
    resume that cannot write it changes nothing and says so."""
    from botocore.exceptions import ClientError

    class RefusesTheRecord:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def put_parameter(self, **request):
            if "/resumed-models/" in request["Name"]:
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "PutParameter")
            return self.inner.put_parameter(**request)

    assert run("--model", "churn", "pause", "--reason", "INC-43") == 0
    scope = cli.Scope("prod", "mlops-loop-prod", "churn")
    with pytest.raises(ClientError):
        cli.resume(RefusesTheRecord(ssm), scope, caller=CALLER, out=io.StringIO(), now=NOW)
    assert value(ssm, CHURN)["reason"] == "INC-43"  # still paused


def test_pausing_a_model_the_circuit_breaker_paused_makes_the_pause_a_persons(ssm, capsys):
    """The breaker's pause lifts itself when a run succeeds; a person who pauses the model meanwhile (an incident: do
    not retrain until the data is fixed) must not see their pause lifted by someone's test run. Their pause replaces
    the breaker's, and the trigger then treats it as a person's."""
    from pipeline_code.core.contract import RETRAINING_BREAKER, pause_value

    ssm.put_parameter(Name=CHURN, Type="String", Overwrite=False,
                      Value=pause_value(reason="circuit breaker: ...", by=RETRAINING_BREAKER, at="2026-11-26T08:00:00Z"))
    assert run("--model", "churn", "pause", "--reason", "INC-44") == 0
    assert value(ssm, CHURN) == {"reason": "INC-44", "by": CALLER, "at": "2026-11-26T09:30:00Z"}
    out = capsys.readouterr().out
    assert out.startswith(
        "retraining of model 'churn' of environment 'prod' was paused by the retrain trigger's circuit breaker since "
        "2026-11-26T08:00:00Z (a pause that lifts itself when a run succeeds); yours replaces it and holds until "
        "resumed: ")
    breaker = rt.Breaker(ssm, None, "", 2, "prod", {"mlops-loop-prod-churn-training": "churn"},
                         {"mlops-loop-prod-churn-training": CHURN}, {})
    held = rt.PauseSwitch(ssm, ENVIRONMENT, {"mlops-loop-prod-churn-training": CHURN})("mlops-loop-prod-churn-training")
    assert not breaker.tripped("mlops-loop-prod-churn-training", held)


def test_the_resume_it_prints_acts_on_the_target_this_run_was_given(ssm, capsys, tmp_path):
    # GIVEN a config at a path with a space in it, and the project and region given on the command line
    config = tmp_path / "team configs" / "loop.yaml"
    config.parent.mkdir()
    config.write_text(SAMPLE_CONFIG.read_text())
    given = ["--config", str(config), "--project", "mlops-loop", "--region", REGION]
    # WHEN a model is paused with them
    assert cli.main(["--env", "prod", "--model", "churn", *given, "pause", "--reason", REASON], now=lambda: NOW) == 0
    # THEN the Resume line, split as a shell splits it, is the same target's resume
    resume = capsys.readouterr().out.rsplit("Resume: ", 1)[1].strip()
    assert resume.startswith("python -m mlops_cli.retraining ")
    args = cli.build_parser().parse_args(shlex.split(resume)[3:])
    assert (args.env, args.model, args.config, args.project, args.region, args.command) == (
        "prod", "churn", str(config), "mlops-loop", REGION, "resume")
    # AND run as printed, it resumes what was paused
    assert cli.main(shlex.split(resume)[3:], now=lambda: NOW) == 0
    assert "resumed by" in capsys.readouterr().out


def test_with_the_default_config_the_resume_it_prints_names_no_config(ssm, capsys, monkeypatch):
    # GIVEN the tool's default config is the repository's default file (here the frozen sample stands for it)
    from mlops_loop.config import location

    monkeypatch.setattr(location, "DEFAULT_CONFIG", str(SAMPLE_CONFIG))
    monkeypatch.setattr(cli.deploy_target, "default_config", lambda: SAMPLE_CONFIG)
    # WHEN the environment is paused without --config
    assert cli.main(["--env", "prod", "pause", "--reason", REASON], now=lambda: NOW) == 0
    # THEN its Resume line has no option the run was not given
    assert capsys.readouterr().out.endswith("Resume: python -m mlops_cli.retraining --env prod resume\n")


def test_a_config_the_tool_took_from_mlops_loop_config_is_named_in_the_resume_it_prints(ssm, capsys, monkeypatch,
                                                                                         tmp_path):
    """The variable is a shell's: a Resume line pasted into another shell (an incident's log, a colleague's terminal)
    without it would read the repository's default config, another project's environments."""
    # GIVEN a second project's config (a path with a space) named by MLOPS_LOOP_CONFIG, and no --config given
    config = tmp_path / "team configs" / "loop.yaml"
    config.parent.mkdir()
    config.write_text(SAMPLE_CONFIG.read_text())
    monkeypatch.setenv("MLOPS_LOOP_CONFIG", str(config))
    assert cli.main(["--env", "prod", "--model", "churn", "pause", "--reason", REASON], now=lambda: NOW) == 0
    resume = capsys.readouterr().out.rsplit("Resume: ", 1)[1].strip()
    # WHEN it is run as printed from a shell without the variable
    monkeypatch.delenv("MLOPS_LOOP_CONFIG")
    args = cli.build_parser().parse_args(shlex.split(resume)[3:])
    # THEN it reads the config the pause was made with, and resumes that pause
    assert (args.env, args.model, args.config, args.command) == ("prod", "churn", str(config), "resume")
    assert cli.main(shlex.split(resume)[3:], now=lambda: NOW) == 0
    assert "resumed by" in capsys.readouterr().out
