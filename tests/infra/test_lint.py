"""mlops_loop.tools.lint: findings kept per template in the content cache (a changed template or region is
linted again, a kept answer is what cfn-lint said), templates shared between processes, order kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlops_loop.content_cache import ContentCache
from mlops_loop.tools import lint
from mlops_loop.tools.cloud_assembly import SynthesizedStack
from mlops_loop.tools.lint import LINT_SOURCES, lint_stacks, lint_templates

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


@pytest.fixture
def no_cfn_lint(monkeypatch):
    """cfn-lint cannot start: whatever is answered comes from the cache."""
    def refuse(paths, region):
        raise AssertionError(f"cfn-lint ran for {[p.name for p in paths]}")

    monkeypatch.setattr(lint, "_start", refuse)


def test_a_template_linted_before_gets_what_cfn_lint_found_without_running_it(tmp_path, monkeypatch):
    # GIVEN a template with a defect, linted once with the cache
    broken = _template(tmp_path, "a.template.json", Defect=BAD_RETENTION)
    first = lint_templates([broken], cache=_cache(tmp_path / "c"))
    assert first.errors == 1 and first.lines[0].startswith("Error E3030 a.template.json:")
    # WHEN the same bytes are linted again under another name, in another process, with no cfn-lint
    copy = tmp_path / "b.template.json"
    shutil.copyfile(broken, copy)
    monkeypatch.setattr(lint, "_start", lambda paths, region: pytest.fail("cfn-lint ran"))
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


def test_the_region_is_part_of_the_key(tmp_path):
    template = _template(tmp_path, "a.template.json", Defect=NOT_IN_EU_WEST_1)
    rules = lambda result: {line.split()[1] for line in result.lines}  # noqa: E731
    assert "E3006" not in rules(lint_templates([template], cache=_cache(tmp_path / "c")))  # offered in us-east-1

    found = lint_templates([template], region="eu-west-1", cache=_cache(tmp_path / "c"))

    assert "E3006" in rules(found)


def test_without_a_cache_cfn_lint_runs_every_time(tmp_path, no_cfn_lint):
    template = _template(tmp_path, "a.template.json")
    with pytest.raises(AssertionError, match=r"cfn-lint ran for \['a.template.json'\]"):
        lint_templates([template])


def test_findings_are_listed_template_by_template_in_the_order_given_however_the_work_is_shared(tmp_path, monkeypatch):
    # GIVEN five templates, the second and the fifth with a defect, shared between three processes
    monkeypatch.setattr(lint.os, "cpu_count", lambda: 3)
    names = [f"t{n}.template.json" for n in range(5)]
    paths = [_template(tmp_path, name, **({"Defect": BAD_RETENTION} if n in (1, 4) else {}))
             for n, name in enumerate(names)]
    started = []
    start = lint._start
    monkeypatch.setattr(lint, "_start", lambda share, region: started.append(share) or start(share, region))

    result = lint_templates(paths)

    assert len(started) == 3 and sorted(p for share in started for p in share) == sorted(paths)
    assert [line.split()[2].split(":")[0] for line in result.lines] == ["t1.template.json", "t4.template.json"]


def test_each_region_gets_its_share_of_the_cores_and_at_least_one_process(tmp_path, monkeypatch):
    monkeypatch.setattr(lint.os, "cpu_count", lambda: 2)
    started = []
    monkeypatch.setattr(lint, "_start", lambda share, region: started.append((region, len(share))) or _Clean())
    stack = lambda name, region: SynthesizedStack(  # noqa: E731
        stage="dev", stack_name=name, artifact_id=name, template_path=_template(tmp_path, f"{name}.json"),
        termination_protection=False, region=region)

    lint_stacks([stack("a", "eu-west-1"), stack("b", "eu-west-1"), stack("c", "us-east-1"), stack("d", "ap-south-1")])

    assert sorted(started) == [("ap-south-1", 1), ("eu-west-1", 2), ("us-east-1", 1)]


class _Clean:
    """A finished cfn-lint run that found nothing."""
    returncode = 0

    def poll(self):
        return self.returncode

    def communicate(self):
        return "[]", ""


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
    class Finished:
        returncode = 2

        def communicate(self):
            finding = {"Filename": str(tmp_path / "other.json"), "Level": "Error", "Rule": {"Id": "E0000"},
                       "Location": {"Start": {"LineNumber": 1}}, "Message": "m"}
            return json.dumps([finding]), ""

    with pytest.raises(RuntimeError, match=r"^cfn-lint reported E0000 in .*other\.json, which it was not given$"):
        lint._findings(Finished(), [tmp_path / "a.json"])


def test_a_cfn_lint_that_fails_to_run_is_an_error_and_nothing_is_kept(tmp_path, monkeypatch):
    template = _template(tmp_path, "a.template.json")
    monkeypatch.setattr(lint, "_start", lambda paths, region: lint.subprocess.Popen(
        ["python3", "-c", "import sys; sys.stderr.write('boom'); sys.exit(1)"],
        stdout=lint.subprocess.PIPE, stderr=lint.subprocess.PIPE, text=True))

    with pytest.raises(RuntimeError, match=r"^cfn-lint failed to run: boom$"):
        lint_templates([template], cache=_cache(tmp_path / "c"))

    assert not (tmp_path / "c").exists()
