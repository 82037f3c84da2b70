"""mlops_loop.tools.lint: findings kept per template in the content cache (a changed template or region is
linted again, a kept answer is what cfn-lint said), what cfn-lint reads besides the template pinned, templates
shared between processes, order kept, failures never kept."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from mlops_loop import content_cache
from mlops_loop.content_cache import CACHE_DIR_ENV, ContentCache
from mlops_loop.tools import lint
from mlops_loop.tools.cloud_assembly import SynthesizedStack
from mlops_loop.tools.lint import LINT_SOURCES, lint_cache, lint_stacks, lint_templates
from tests.support import cfn_lint_in_process

BAD_RETENTION = {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 4}}  # E3030
NOT_IN_EU_WEST_1 = {"Type": "AWS::AppIntegrations::Application", "Properties": {}}  # E3006 there (and E3003)


def _template(directory: Path, name: str, **resources: dict) -> Path:
    """A small template with one valid resource and ``resources`` added."""
    path = directory / name
    handle = {"Type": "AWS::CloudFormation::WaitConditionHandle"}
    path.write_text(json.dumps({"Resources": {"Handle": handle, **resources}}))
    return path


def _cache(directory: Path) -> ContentCache:
    """A fresh process's view of the lint cache in ``directory`` (nothing in memory)."""
    return ContentCache(directory, sources=LINT_SOURCES)


def _cores(monkeypatch, count: int) -> None:
    monkeypatch.setattr(lint, "_cores", lambda: count)


@pytest.fixture()
def cfn_lint_processes(monkeypatch):
    """cfn-lint runs as the processes the product starts, for the tests whose subject is that process: what it reads
    of the user's home and where it runs, and processes running at once (the rest of the suite, and this module's
    tests of what the cache keeps, run it in the test process: tests/conftest.py; that it answers as the process
    does is the first test below). Each process start costs about 1.3 CPU-s."""
    monkeypatch.setattr(lint, "_start", cfn_lint_in_process.PROCESS_START)


def test_cfn_lint_in_the_test_process_finds_what_its_process_finds(tmp_path):
    """The suite's in-process cfn-lint (tests/support/cfn_lint_in_process.py) answers as the product's process:
    the same findings, exit status and output, for each region, and for a template cfn-lint cannot read."""
    broken = _template(tmp_path, "a.template.json", Defect=BAD_RETENTION, Elsewhere=NOT_IN_EU_WEST_1)
    clean = _template(tmp_path, "b.template.json")
    unreadable = tmp_path / "c.template.json"
    unreadable.write_text("{not json")
    paths = [broken, clean, unreadable]
    home = tmp_path / "home"
    home.mkdir()
    for region in ("us-east-1", "eu-west-1"):
        process = cfn_lint_in_process.PROCESS_START(paths, region, str(home))
        stdout, _ = process.communicate()
        in_process = cfn_lint_in_process.start(paths, region, str(home))
        assert in_process.communicate()[0] == stdout and in_process.returncode == process.returncode, region
        found = lint._findings(in_process, paths)
        assert found == lint._findings(_Finished(stdout, process.returncode), paths)
        # E3030 in either region, E3006 in eu-west-1 only, nothing in the clean one, the unreadable one an error
        assert {f["rule"] for f in found[broken]} >= {"E3030"} and not found[clean] and found[unreadable], region
        assert ("E3006" in {f["rule"] for f in found[broken]}) == (region == "eu-west-1")


def test_a_template_linted_before_gets_what_cfn_lint_found_without_running_it(tmp_path, monkeypatch):
    # GIVEN a template with a defect, linted once with the cache
    broken = _template(tmp_path, "a.template.json", Defect=BAD_RETENTION)
    first = lint_templates([broken], cache=_cache(tmp_path / "c"))
    assert first.errors == 1 and first.lines[0].startswith("Error E3030 a.template.json:")
    # WHEN the same bytes are linted again under another name, in another process, with no cfn-lint
    copy = tmp_path / "b.template.json"
    shutil.copyfile(broken, copy)
    monkeypatch.setattr(lint, "_start", lambda paths, region, home: pytest.fail("cfn-lint ran"))
    again = lint_templates([copy], cache=_cache(tmp_path / "c"))
    # THEN the findings are cfn-lint's, naming the file linted now
    assert (again.errors, again.warnings) == (first.errors, first.warnings)
    assert again.lines == [line.replace("a.template.json", "b.template.json") for line in first.lines]


def test_a_changed_template_is_linted_again(tmp_path):
    clean = _template(tmp_path, "a.template.json")
    assert lint_templates([clean], cache=_cache(tmp_path / "c")).lines == []

    _template(tmp_path, "a.template.json", Defect=BAD_RETENTION)  # the same file, other bytes

    found = lint_templates([clean], cache=_cache(tmp_path / "c"))

    assert [line.split()[:2] for line in found.lines] == [["Error", "E3030"]]


def test_the_region_is_part_of_the_key_and_the_default_is_us_east_1_whatever_the_shell_says(tmp_path, monkeypatch):
    # cfn-lint's own default would follow these; a cached "default region" answer must not.
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    template = _template(tmp_path, "a.template.json", Defect=NOT_IN_EU_WEST_1)
    rules = lambda result: {line.split()[1] for line in result.lines}  # noqa: E731
    assert "E3006" not in rules(lint_templates([template], cache=_cache(tmp_path / "c")))  # offered in us-east-1

    found = lint_templates([template], region="eu-west-1", cache=_cache(tmp_path / "c"))

    assert "E3006" in rules(found)


def test_without_a_cache_cfn_lint_runs_even_for_a_template_the_default_cache_holds(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "c"))
    monkeypatch.setattr(content_cache, "_CACHES", {})
    template = _template(tmp_path, "a.template.json")
    started = []
    monkeypatch.setattr(lint, "_start", lambda paths, region, home: started.append(paths) or _Finished("[]"))
    # GIVEN the default cache holds the template's findings: kept by a lint with it (cfn-lint's answer faked, as
    # below: what cfn-lint finds is not the point here, and a real run only costs a process start), which a second
    # lint with it is answered from
    lint_templates([template], cache=lint_cache())
    lint_templates([template], cache=lint_cache())
    assert started == [[template]]

    lint_templates([template])
    lint_templates([template])

    assert started == [[template], [template], [template]]


@pytest.mark.usefixtures("cfn_lint_processes")
def test_a_user_config_or_schema_cache_in_the_home_directory_is_not_read(tmp_path, monkeypatch):
    # GIVEN a user's ~/.cfnlintrc that ignores the template's defect, and a user schema cache, newer than the
    # bundled schemas, that knows no resource type (cfn-lint would report E3006 for every resource)
    home = tmp_path / "home"
    schemas = home / ".cache" / "aws" / "cfn-lint" / "schemas"
    (schemas / "providers").mkdir(parents=True)
    (schemas / "providers" / "empty.json").write_text("{}")
    (schemas / "version.json").write_text('{"schema_date": "2999-01-01"}')
    (home / ".cfnlintrc").write_text("ignore_checks: [E3030]\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    broken = _template(tmp_path, "a.template.json", Defect=BAD_RETENTION)

    # WHEN linted THEN cfn-lint used .cfnlintrc and its bundled schemas only
    assert [line.split()[1] for line in lint_templates([broken]).lines] == ["E3030"]


@pytest.mark.usefixtures("cfn_lint_processes")
def test_relative_paths_are_linted_where_the_caller_is_by_processes_running_at_once(tmp_path, monkeypatch):
    # GIVEN two templates with a defect, named relative to the caller's directory, and two cores
    _cores(monkeypatch, 2)
    for name in ("a.template.json", "b.template.json"):
        _template(tmp_path, name, Defect=BAD_RETENTION)
    monkeypatch.chdir(tmp_path)
    started = []
    start = lint._start
    monkeypatch.setattr(lint, "_start", lambda share, region, home: started.append(share) or start(share, region, home))

    found = lint_templates([Path("a.template.json"), Path("b.template.json")], cache=_cache(tmp_path / "c"))

    # THEN two cfn-lint processes (run from the repository root) found each file's defect
    assert started == [[Path("a.template.json")], [Path("b.template.json")]]
    assert [line.split()[:3] for line in found.lines] == [["Error", "E3030", "a.template.json:1"],
                                                          ["Error", "E3030", "b.template.json:1"]]


def test_findings_are_listed_template_by_template_in_the_order_given_however_the_work_is_shared(tmp_path, monkeypatch):
    # GIVEN five templates, the first and the last with a finding, the last the largest (so the first process
    # lints it), shared between three processes, each reporting its share's findings in cfn-lint's format
    _cores(monkeypatch, 3)
    paths = [_template(tmp_path, f"t{n}.template.json") for n in range(5)]
    padding = {f"Handle{n}": {"Type": "AWS::CloudFormation::WaitConditionHandle"} for n in range(30)}
    _template(tmp_path, "t4.template.json", **padding)
    flagged = {paths[0], paths[4]}
    started = []

    def start(share, region, home):
        started.append(share)
        return _Finished(json.dumps([_match(path, "E3030") for path in reversed(share) if path in flagged]), 2)

    monkeypatch.setattr(lint, "_start", start)

    result = lint_templates(paths)

    assert len(started) == 3 and sorted(p for share in started for p in share) == sorted(paths)
    assert started[0] == [paths[4]]
    assert [line.split()[2].split(":")[0] for line in result.lines] == ["t0.template.json", "t4.template.json"]


def _match(path: Path, rule: str) -> dict:
    """One finding as cfn-lint's JSON output gives it."""
    return {"Filename": str(path), "Level": "Error", "Rule": {"Id": rule}, "Location": {"Start": {"LineNumber": 1}},
            "Message": "m"}


def test_each_region_gets_its_share_of_the_cores_and_at_least_one_process(tmp_path, monkeypatch):
    _cores(monkeypatch, 2)
    started = []
    monkeypatch.setattr(lint, "_start", lambda share, region, home: started.append((region, len(share))) or _Finished("[]"))
    stack = lambda name, region: SynthesizedStack(  # noqa: E731
        stage="dev", stack_name=name, artifact_id=name, template_path=_template(tmp_path, f"{name}.json"),
        termination_protection=False, region=region)

    lint_stacks([stack("a", "eu-west-1"), stack("b", "eu-west-1"), stack("c", "us-east-1"), stack("d", "ap-south-1")])

    assert sorted(started) == [("ap-south-1", 1), ("eu-west-1", 2), ("us-east-1", 1)]


class _Finished:
    """A cfn-lint run that has ended, with ``stdout``."""

    def __init__(self, stdout: str, returncode: int = 0) -> None:
        self.stdout, self.returncode = stdout, returncode

    def poll(self):
        return self.returncode

    def communicate(self):
        return self.stdout, ""


@pytest.mark.parametrize("count, sizes, expected", [
    (2, [5, 1, 4, 2], [[0, 1], [2, 3]]),  # 5+1 and 4+2: largest first, each to the lighter share
    (4, [3, 1], [[0], [1]]),  # never an empty share
    (1, [1, 2, 3], [[0, 1, 2]]),
])
def test_templates_are_shared_by_size_each_share_in_the_given_order(tmp_path, count, sizes, expected):
    paths = []
    for n, size in enumerate(sizes):
        paths.append(tmp_path / f"{n}.json")
        paths[-1].write_text("x" * size)

    shares = lint._shares(paths, count)

    assert [[paths.index(p) for p in share] for share in shares] == expected


def test_a_finding_for_a_file_cfn_lint_was_not_given_is_an_error_not_dropped(tmp_path):
    finding = _match(tmp_path / "other.json", "E0000")

    with pytest.raises(RuntimeError, match=r"^cfn-lint reported E0000 in .*other\.json, which it was not given$"):
        lint._findings(_Finished(json.dumps([finding]), returncode=2), [tmp_path / "a.json"])


def test_a_cfn_lint_that_fails_to_run_is_an_error_the_others_are_stopped_and_nothing_is_kept(tmp_path, monkeypatch):
    # GIVEN two processes: the first fails, the second would run for a minute
    _cores(monkeypatch, 2)
    paths = [_template(tmp_path, "a.template.json"), _template(tmp_path, "b.template.json")]
    scripts = iter(["import sys; sys.stderr.write('boom'); sys.exit(1)", "import time; time.sleep(60)"])
    started = []

    def start(share, region, home):
        started.append(lint.subprocess.Popen([sys.executable, "-c", next(scripts)], stdout=lint.subprocess.PIPE,
                                             stderr=lint.subprocess.PIPE, text=True))
        return started[-1]

    monkeypatch.setattr(lint, "_start", start)

    with pytest.raises(RuntimeError, match=r"^cfn-lint failed to run: boom$"):
        lint_templates(paths, cache=_cache(tmp_path / "c"))

    assert len(started) == 2 and started[1].returncode is not None  # stopped and reaped, not left running
    assert not (tmp_path / "c").exists()


def test_a_template_rewritten_while_it_is_linted_is_not_kept(tmp_path, monkeypatch):
    template = _template(tmp_path, "a.template.json")

    def rewrite_then_start(share, region, home):
        _template(tmp_path, "a.template.json", Defect=BAD_RETENTION)  # a synth writing the next version
        return _Finished(json.dumps([_match(template.resolve(), "E3030")]), 2)

    monkeypatch.setattr(lint, "_start", rewrite_then_start)
    found = lint_templates([template], cache=_cache(tmp_path / "c"))

    assert [line.split()[1] for line in found.lines] == ["E3030"]  # answered, but not kept under the old bytes
    assert not list((tmp_path / "c").glob("cfn-lint-*.json"))
