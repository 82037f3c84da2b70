"""Which deployed environment rollback and the audit act on: read from the config, refused when it lacks it."""

from __future__ import annotations

import argparse

import pytest

from mlops_cli import target
from tests.support.configs import SAMPLE_CONFIG
from tests.support.paths import REPO_ROOT


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", required=True)
    target.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_environments_region_and_the_configs_project_unless_given():
    # GIVEN the frozen sample config (prod in eu-west-1, project mlops-loop)
    assert target.resolve(_args("--env", "prod", "--config", str(SAMPLE_CONFIG))) == target.Target(
        "prod", "eu-west-1", "mlops-loop")
    # WHEN one is given THEN it wins, the other still comes from the config
    assert target.resolve(_args("--env", "prod", "--config", str(SAMPLE_CONFIG), "--region", "us-east-1")) == \
        target.Target("prod", "us-east-1", "mlops-loop")


def test_with_both_given_a_broken_config_does_not_block(tmp_path):
    broken = tmp_path / "half-edited.yaml"
    broken.write_text("environments: [\n")
    assert target.resolve(_args("--env", "prod", "--config", str(broken), "--region", "us-east-1",
                                "--project", "shop")) == target.Target("prod", "us-east-1", "shop")


def test_a_broken_config_is_one_line_naming_the_fixes(tmp_path):
    broken = tmp_path / "half-edited.yaml"
    broken.write_text("project: Bad_Name\n")
    with pytest.raises(target.TargetError) as refused:
        target.resolve(_args("--env", "prod", "--config", str(broken)))
    message = str(refused.value)
    assert message.startswith(f"--config {broken}: ") and "\n" not in message
    assert message.endswith("; fix it, pass --config <file>, or pass both --region and --project")


def test_a_project_name_aws_resources_cannot_carry_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        _args("--env", "prod", "--project", "Bad_Name!")
    assert ("'Bad_Name!' is not a project name (2-20 lower-case letters, digits and '-', starting with a letter)"
            in capsys.readouterr().err)


def test_the_default_config_is_the_one_cdk_json_names():
    assert target.default_config() == REPO_ROOT / "config" / "mlops-loop.yaml"
