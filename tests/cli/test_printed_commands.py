"""The workstation commands the loop prints for on-call (notices, alarm descriptions, monitor reports) run as
printed: each is parsed by its tool's own argparse parser, with the environment and model it is about."""

from __future__ import annotations

import pytest

from mlops_loop.constructs.loop_alarms import retrain_request
from pipeline_code.core.commands import cli_command
from pipeline_code.handlers import retrain_trigger as rt
from pipeline_code.handlers.deploy.notices import rollback_command
from pipeline_code.monitoring import serving_truth
from tests.support.printed_commands import parse_printed, quoted_commands


@pytest.mark.parametrize("tool, command, expected", [
    ("rollback", "versions", {"command": "versions"}),
    ("rollback", 'rollback --to-version 3 --reason "INC-42: v4 answers 5xx"',
     {"command": "rollback", "to_version": 3, "reason": "INC-42: v4 answers 5xx"}),
    ("retraining", "resume", {"command": "resume"}),
    ("retraining", "pause --reason INC-ID", {"command": "pause", "reason": "INC-ID"}),
    ("audit", "--version 7", {"version": 7}),
])
def test_each_tools_command_parses_with_the_environment_and_model(tool, command, expected):
    """GIVEN a command of the rollback, retraining or audit tool for model churn of prod WHEN parsed by the tool's own
    parser THEN it names that environment and model and the subcommand's options as given."""
    parsed = parse_printed(cli_command(tool, command, environment="prod", model="churn"))
    assert (parsed.env, parsed.model) == ("prod", "churn")
    assert {key: getattr(parsed, key) for key in expected} == expected


def test_a_command_about_every_model_names_none_and_unknown_values_are_placeholders():
    assert cli_command("retraining", "status", environment="prod", model_option=False) == (
        "python -m mlops_cli.retraining --env prod status")
    assert parse_printed(cli_command("retraining", "status", environment="prod", model_option=False)).model is None
    assert cli_command("rollback", "versions", environment=" ", model=None) == (
        "python -m mlops_cli.rollback --env <env> --model <model> versions")


def test_the_monitors_mismatch_fix_gives_both_rollback_commands_complete():
    """GIVEN the monitor of model risk in staging WHEN its serving_mismatch fix is written THEN it gives the versions
    command and the rollback to a version N to choose, each parsed by the rollback CLI (the monitor printed
    ``python -m mlops_cli.rollback ... rollback``, which cannot be pasted)."""
    versions, back = quoted_commands(serving_truth.fix("staging", "risk"))
    assert (parse_printed(versions).env, parse_printed(versions).model, parse_printed(versions).command) == (
        "staging", "risk", "versions")
    parsed = parse_printed(back, fill={"N": "2"})
    assert (parsed.env, parsed.model, parsed.command, parsed.to_version, parsed.reason) == (
        "staging", "risk", "rollback", 2, "<why>")


def test_the_deploy_notices_rollback_command_names_the_functions_environment(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    parsed = parse_printed(rollback_command("churn", "versions"))
    assert (parsed.env, parsed.model, parsed.command) == ("prod", "churn", "versions")


def test_the_circuit_breakers_resume_command_parses():
    breaker = rt.Breaker(None, None, "", 2, "prod", {"p": "churn"}, {"p": "x"}, {})
    parsed = parse_printed(breaker.resume_command("churn"))
    assert (parsed.env, parsed.model, parsed.command) == ("prod", "churn", "resume")


def test_the_retrain_alarms_status_command_is_in_its_description_and_parses():
    command = cli_command("retraining", "status", environment="prod", model_option=False)
    assert f"Paused? {command}." in retrain_request("mlops-loop-prod", "prod", "churn", "eu-west-1")
    assert parse_printed(command).command == "status"


# ---------------------------------------------------------------- the config the app was synthesized from
OTHER = "teams/risk ml.yaml"  # another project's config, with a space a shell must not split


def test_a_command_of_an_app_synthesized_from_another_config_names_it():
    """GIVEN the app synthesized from another config than the default WHEN a command names it THEN each tool's parser
    reads that file as its --config (run as printed, the tool's default would read another project's environments);
    the default config is named by none, so a default app's commands stay as they were."""
    for tool, command in (("rollback", "versions"), ("retraining", "resume"), ("audit", "--serving")):
        printed = cli_command(tool, command, environment="prod", model="churn", config=OTHER)
        parsed = parse_printed(printed)
        assert (parsed.env, parsed.model, parsed.config) == ("prod", "churn", OTHER)
        assert cli_command(tool, command, environment="prod", model="churn", config=None) == (
            cli_command(tool, command, environment="prod", model="churn"))
        assert "--config" not in cli_command(tool, command, environment="prod", model="churn")


def test_the_monitors_fix_names_the_config_it_was_deployed_from():
    for command in quoted_commands(serving_truth.fix("prod", "risk", OTHER)):
        assert parse_printed(command, fill={"N": "7"}).config == OTHER


def test_the_deploy_notices_name_the_functions_config(monkeypatch):
    """The deploy function's CLI_CONFIG (set by its construct for an app of another config) is named; unset, none."""
    monkeypatch.setenv("ENVIRONMENT", "prod")
    assert "--config" not in rollback_command("churn", "versions")
    monkeypatch.setenv("CLI_CONFIG", OTHER)
    assert parse_printed(rollback_command("churn", "versions")).config == OTHER


def test_the_circuit_breakers_resume_names_the_functions_config():
    environ = {"NAME_PREFIX": "mlops-loop-prod", "ENVIRONMENT": "prod", "MODEL_PIPELINES": '{"churn": "p"}'}
    assert rt.settings_of(environ)["config"] is None
    settings = rt.settings_of({**environ, "CLI_CONFIG": OTHER})
    breaker = rt.Breaker(None, None, "", 2, settings["environment"], settings["models"], {"p": "x"}, {},
                         config=settings["config"])
    assert parse_printed(breaker.resume_command("churn")).config == OTHER


def test_the_retrain_alarms_status_command_names_the_config():
    command = cli_command("retraining", "status", environment="prod", model_option=False, config=OTHER)
    assert f"Paused? {command}." in retrain_request("mlops-loop-prod", "prod", "churn", "eu-west-1", config=OTHER)
    assert parse_printed(command).config == OTHER
