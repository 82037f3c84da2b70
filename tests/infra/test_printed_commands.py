"""The workstation commands an app's templates print for on-call (alarm descriptions, notices, the Lambda functions'
and the monitor's settings for the commands they print) name the config the app was synthesized from when it is not
the default one: run as printed, a tool's default --config would read another project's environments."""

from __future__ import annotations

from mlops_loop.tools.cloud_assembly import stacks
from tests.support.printed_commands import OTHER_PROJECT_CONFIG, printed_commands, template_strings


def _texts(outdir, env):
    return [text for stack in stacks(outdir) if stack.stage == env for text in template_strings(stack.template)]


def _function_variables(outdir, env, name_suffix):
    (variables,) = [r["Properties"]["Environment"]["Variables"] for s in stacks(outdir) if s.stage == env
                    for r in s.template.get("Resources", {}).values() if r["Type"] == "AWS::Lambda::Function"
                    and str(r["Properties"].get("FunctionName", "")).endswith(name_suffix)]
    return variables


def test_an_app_of_another_config_names_it_in_every_command_it_prints(other_project):
    """GIVEN the other project's app, synthesized from its own config file WHEN its templates are read THEN every
    rollback, retraining and audit command they print names that file (--config, before the subcommand), and the
    deploy and retrain-trigger functions and each model's monitor job are given it for the commands they print."""
    texts = _texts(other_project.outdir, other_project.env)
    commands = [words for text in texts for words in printed_commands(text)]
    assert {words[2] for words in commands} >= {"mlops_cli.rollback", "mlops_cli.retraining", "mlops_cli.audit"}
    for words in commands:
        assert "--config" in words and words[words.index("--config") + 1] == OTHER_PROJECT_CONFIG, words
    for suffix in ("-deploy-on-approval", "-retrain-trigger"):
        assert _function_variables(other_project.outdir, other_project.env, suffix)["CLI_CONFIG"] == OTHER_PROJECT_CONFIG
    monitors = [text for text in texts if "pipeline_code.monitoring.monitor" in text]
    assert monitors and all(f'"--cli-config", "{OTHER_PROJECT_CONFIG}"' in text or
                            f'"--cli-config","{OTHER_PROJECT_CONFIG}"' in text for text in monitors), monitors[:1]


def test_an_app_of_the_default_config_names_none(synthesized):
    """GIVEN the user's app, synthesized from the default config WHEN its templates are read THEN no command names a
    config (the tools' default is that file) and no function or job is given one."""
    for env in synthesized.config.environments:
        texts = _texts(synthesized.outdir, env)
        commands = [words for text in texts for words in printed_commands(text)]
        assert commands and not [words for words in commands if "--config" in words]
        assert not [text for text in texts if text == "CLI_CONFIG" or "--cli-config" in text]
