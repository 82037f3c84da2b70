"""cdk.json read as the CDK CLI reads it: the bootstrap qualifier the app deploys through, from the CLI's context files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_loop.cdk_json import bootstrap_qualifier
from mlops_loop.config.location import bootstrap_qualifier as reexported

KEY = "@aws-cdk/core:bootstrapQualifier"


def _files(tmp_path: Path, *, project=None, lookups=None, user=None) -> tuple[Path, Path]:
    """GIVEN a project directory and a home, each context file written when its context is given."""
    project_dir, home = tmp_path / "project", tmp_path / "home"
    project_dir.mkdir()
    home.mkdir()
    (project_dir / "cdk.json").write_text(json.dumps({"app": "python app.py", "context": project or {}}))
    if lookups is not None:
        (project_dir / "cdk.context.json").write_text(json.dumps(lookups))
    if user is not None:
        (home / ".cdk.json").write_text(json.dumps({"context": user}))
    return project_dir, home


def test_without_a_qualifier_anywhere_it_is_the_cdks_default(tmp_path):
    project, home = _files(tmp_path, lookups={"availability-zones:account=1:region=x": ["a"]}, user={})
    assert bootstrap_qualifier(project, home) == "hnb659fds"


@pytest.mark.parametrize("files, expected", [
    ({"project": {KEY: "corp1"}, "lookups": {KEY: "corp2"}, "user": {KEY: "corp3"}}, "corp1"),
    ({"lookups": {KEY: "corp2"}, "user": {KEY: "corp3"}}, "corp2"),
    ({"user": {KEY: "corp3"}}, "corp3"),
])
def test_the_first_context_file_that_sets_it_wins_in_the_cdk_clis_order(tmp_path, files, expected):
    """cdk.json's context, then cdk.context.json, then ~/.cdk.json's context (the CLI's Configuration.loadConfigFiles)."""
    project, home = _files(tmp_path, **files)
    assert bootstrap_qualifier(project, home) == expected


def test_the_repositorys_own_cdk_json_is_read_by_default_and_the_tools_reach_it_through_the_config_package(tmp_path):
    assert reexported is bootstrap_qualifier
    assert bootstrap_qualifier(home=tmp_path) == json.loads(
        (Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"].get(KEY, "hnb659fds")


def test_a_qualifier_no_bootstrap_can_have_is_refused_naming_its_file(tmp_path):
    project, home = _files(tmp_path, project={KEY: "corp_12345"})
    with pytest.raises(ValueError) as raised:
        bootstrap_qualifier(project, home)
    assert str(raised.value) == (
        f"{project / 'cdk.json'}: context '@aws-cdk/core:bootstrapQualifier': 'corp_12345' is not a CDK bootstrap "
        "qualifier: give 1-10 lowercase letters, digits or '-' (the bootstrap template takes at most 10 characters, and the "
        "qualifier names the bootstrap bucket, which takes no capitals or '_'), the one the account was bootstrapped with "
        "(cdk bootstrap --qualifier)")


def test_the_apps_context_is_cdk_jsons_under_what_the_cli_hands_over_as_the_cdks_app_reads_it(tmp_path):
    """GIVEN cdk.json's context, CDK_CONTEXT_JSON and the overflow file the CLI writes when the JSON is too long for
    the environment WHEN the context an App holds is read without the CDK (app.py does, to check the config before
    importing it) THEN each key is the last source's that sets it, in aws-cdk-lib App.loadContext's order."""
    from mlops_loop.cdk_json import CONTEXT_ENV, CONTEXT_OVERFLOW_LOCATION_ENV, app_context, context

    flag = next(iter(context()))  # a feature flag of the repository's cdk.json
    overflow = tmp_path / "context.json"
    overflow.write_text(json.dumps({"mlops-loop:config": "config/from-the-file.yaml", "only": "file"}))
    handed = json.dumps({flag: "from-the-variable", "mlops-loop:config": "config/from-the-variable.yaml"})
    assert app_context({}) == context() == app_context({CONTEXT_ENV: "", CONTEXT_OVERFLOW_LOCATION_ENV: ""})
    assert app_context({CONTEXT_ENV: handed}) == {**context(), flag: "from-the-variable",
                                                  "mlops-loop:config": "config/from-the-variable.yaml"}
    both = app_context({CONTEXT_ENV: handed, CONTEXT_OVERFLOW_LOCATION_ENV: str(overflow)})
    assert (both[flag], both["mlops-loop:config"], both["only"]) == ("from-the-variable", "config/from-the-file.yaml", "file")
    # What is no JSON object is left to the App to report (app.py then reads the config after it, as before)
    for broken in ("{", "[1]", "null"):
        with pytest.raises(ValueError):
            app_context({CONTEXT_ENV: broken})
    with pytest.raises(OSError):
        app_context({CONTEXT_OVERFLOW_LOCATION_ENV: str(tmp_path / "missing.json")})
