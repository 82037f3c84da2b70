"""The content cache (mlops_loop.content_cache) and the SDK's answers in it (mlops_loop.training.sdk_cache): a
changed input misses, a bad entry or directory never gives a wrong answer, concurrent fillers agree, and a
definition from the cache is the one the SDK builds."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_loop import content_cache
from mlops_loop.content_cache import CACHE_DIR_ENV, ContentCache
from mlops_loop.training import definition as definition_module
from mlops_loop.training import sdk_cache
from mlops_loop.training.definition import build_pipeline_definition, generate_pipeline_definition
from mlops_loop.training.sdk_cache import GENERATOR_SOURCES
from mlops_loop.training.tokens import with_placeholders
from tests.support import pipeline_specs as specs
from tests.support.paths import REPO_ROOT


def _cache(directory, *, root: Path, version: str = "3.27.0") -> ContentCache:
    """A cache over a one-file generator in ``root`` and one installed distribution of ``version``."""
    return ContentCache(directory, root=root, sources=("gen/*.py",), distributions=lambda: [("sagemaker", version)])


@pytest.fixture
def generator(tmp_path) -> Path:
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "build.py").write_text("VERSION = 1\n")
    return tmp_path


class _Counting:
    """A ``create`` that records how often it ran."""

    def __init__(self, value: str = "answer") -> None:
        self.value, self.calls = value, 0

    def __call__(self) -> str:
        self.calls += 1
        return self.value


def test_a_second_cache_on_the_same_directory_answers_from_disk_without_generating(tmp_path, generator):
    create = _Counting()
    assert _cache(tmp_path / "c", root=generator).get_or_create("k", {"a": 1}, create) == "answer"
    again = _Counting("other")
    assert _cache(tmp_path / "c", root=generator).get_or_create("k", {"a": 1}, again) == "answer"
    assert (create.calls, again.calls) == (1, 0)


@pytest.mark.parametrize("change", ["request", "kind", "generator source", "new generator source", "distribution"])
def test_a_changed_input_misses_the_cache(tmp_path, generator, change):
    # GIVEN an entry filled for one request
    _cache(tmp_path / "c", root=generator).get_or_create("k", {"a": 1}, _Counting())
    kind, request, version = "k", {"a": 1}, "3.27.0"
    # WHEN one input changes
    if change == "request":
        request = {"a": 2}
    elif change == "kind":
        kind = "other-kind"
    elif change == "generator source":
        (generator / "gen" / "build.py").write_text("VERSION = 2\n")
    elif change == "new generator source":
        (generator / "gen" / "extra.py").write_text("")
    else:
        version = "3.28.0"
    create = _Counting("fresh")
    # THEN the next process generates again and gets the new answer
    assert _cache(tmp_path / "c", root=generator, version=version).get_or_create(kind, request, create) == "fresh"
    assert create.calls == 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="partial"),
        pytest.param(lambda text: "", id="empty"),
        pytest.param(lambda text: text.replace('"answer"', '"tampered"'), id="value-edited"),
        pytest.param(lambda text: json.dumps({**json.loads(text), "key": "someone-else"}), id="other-key"),
        pytest.param(lambda text: "[1, 2]", id="not-an-object"),
        pytest.param(lambda text: "\udcff", id="not-utf8"),
    ],
)
def test_a_damaged_entry_is_regenerated_with_a_one_line_notice(tmp_path, generator, capsys, damage):
    cache = _cache(tmp_path / "c", root=generator)
    cache.get_or_create("k", {"a": 1}, _Counting())
    (entry,) = (tmp_path / "c").glob("*.json")
    entry.write_bytes(damage(entry.read_text()).encode("utf-8", "surrogateescape"))
    create = _Counting()

    assert _cache(tmp_path / "c", root=generator).get_or_create("k", {"a": 1}, create) == "answer"

    assert create.calls == 1
    (notice,) = capsys.readouterr().err.splitlines()
    assert notice.startswith(f"mlops-loop: cache entry {entry} ") and notice.endswith("; regenerating it")
    assert _cache(tmp_path / "c", root=generator).get_or_create("k", {"a": 1}, _Counting("x")) == "answer"  # repaired


def test_an_unwritable_directory_still_answers_with_one_notice(tmp_path, generator, capsys):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # the cache directory cannot be created where a file is (root ignores chmod)
    cache = _cache(blocker / "c", root=generator)

    values = [cache.get_or_create("k", {"a": n}, _Counting(f"v{n}")) for n in range(3)]

    assert values == ["v0", "v1", "v2"]
    (notice,) = capsys.readouterr().err.splitlines()
    assert notice.startswith(f"mlops-loop: cache directory {blocker / 'c'} is not writable (")
    assert notice.endswith("generating without a disk cache")


def _fill(directory: str, root: str, barrier, results) -> None:
    barrier.wait()
    for n in range(30):
        value = f"{n}:" + "x" * 200_000  # large enough that a non-atomic write would be seen half-done
        results.put(_cache(Path(directory), root=Path(root)).get_or_create("k", {"n": n}, lambda v=value: v) == value)


def test_two_processes_filling_the_same_entries_at_once_both_get_whole_answers(tmp_path, generator):
    # spawn: a forked copy of this worker could inherit a lock another of its threads held at the fork
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_fill, args=(str(tmp_path / "c"), str(generator), barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=60) for _ in range(60)]
    for worker in workers:
        worker.join(timeout=60)
    assert answers == [True] * 60
    assert len(list((tmp_path / "c").glob("*.json"))) == 30
    assert not list((tmp_path / "c").glob(".*.tmp"))  # no temporary file left behind


def test_the_installed_distributions_are_those_importlib_metadata_reads_with_their_versions(tmp_path, monkeypatch):
    from importlib import metadata

    # GIVEN a directory on sys.path holding a distribution whose metadata directory's name keeps its dot, as
    # setuptools' vendored ``jaraco.text`` does (on sys.path once pkg_resources is imported)
    legacy = tmp_path / "jaraco.text-4.0.0.dist-info"
    legacy.mkdir()
    (legacy / "METADATA").write_text("Metadata-Version: 2.1\nName: jaraco.text\nVersion: 4.0.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    # WHEN both read what is installed, importlib where the reader reads: not in a directory inside a package (a
    # package's vendored copies, e.g. setuptools' _vendor once this process imported distutils: see the next tests)
    read = set(content_cache.installed_distributions.__wrapped__())
    read_where = [p for p in sys.path if not (Path(p or ".").absolute().parent / "__init__.py").exists()]
    normalised = {(re.sub(r"[-_.]+", "_", str(d.metadata["Name"])).lower(), d.version)
                  for d in metadata.distributions(path=read_where)}

    # THEN they agree, names normalised
    assert read == normalised
    assert ("jaraco_text", "4.0.0") in read
    assert ("aws_cdk_lib", metadata.version("aws-cdk-lib")) in read


def test_a_packages_own_vendored_copies_put_on_sys_path_leave_the_installed_distributions_as_they_were(
        tmp_path, monkeypatch):
    """GIVEN a package that puts its own vendored copies on sys.path when imported (setuptools puts setuptools/_vendor
    there, with a dozen .dist-info directories) WHEN the installed distributions are read before and after THEN they
    are the same: the copies come with the package's version, which the key has. A pytest-xdist worker that had
    imported setuptools before its first cache lookup computed another generator digest, and missed every SDK and
    cfn-lint answer the others had kept (35 definitions and 12 templates in one warm run of the suite)."""
    before = content_cache.installed_distributions.__wrapped__()
    vendor = tmp_path / "tool" / "_vendor"
    (vendor / "more_itertools-10.8.0.dist-info").mkdir(parents=True)
    (tmp_path / "tool" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(vendor))

    assert content_cache.installed_distributions.__wrapped__() == before


def test_a_distribution_in_the_current_directory_is_read_when_the_directory_is_a_package_of_its_own(
        tmp_path, monkeypatch):
    """GIVEN sys.path's "" (the current directory), which is itself a package directory but sits in none, holding a
    distribution WHEN the installed distributions are read THEN it is among them: only a directory *inside* a package
    holds vendored copies (the "" entry was judged by the current directory's own __init__.py)."""
    here = tmp_path / "project"
    (here / "extra_tool-1.2.dist-info").mkdir(parents=True)
    (here / "__init__.py").write_text("")
    monkeypatch.chdir(here)
    monkeypatch.setattr(sys, "path", [""])

    assert content_cache.installed_distributions.__wrapped__() == (("extra_tool", "1.2"),)


def test_importing_setuptools_changes_no_generator_digest():
    """The same, with the real setuptools, in a fresh interpreter (its import changes sys.path for good)."""
    code = textwrap.dedent(
        """
        import sys
        from mlops_loop.content_cache import ContentCache, installed_distributions
        from mlops_loop.tools.lint import LINT_SOURCES
        from mlops_loop.training.sdk_cache import GENERATOR_SOURCES

        def digests():
            installed_distributions.cache_clear()
            return [ContentCache(None, sources=s).generator_digest() for s in (GENERATOR_SOURCES, LINT_SOURCES)]

        before, paths = digests(), list(sys.path)
        import setuptools
        print(sys.path != paths, digests() == before)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout == "True True\n", result.stderr[-2000:]


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, "off")
    assert content_cache.configured_directory() is None
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "elsewhere"))
    assert content_cache.configured_directory() == tmp_path / "elsewhere"
    monkeypatch.delenv(CACHE_DIR_ENV)
    assert content_cache.configured_directory() == REPO_ROOT / ".cache" / "derived"


def test_the_generator_sources_cover_every_repository_module_the_builder_imports():
    # A fresh interpreter: what importing the builder (and building) loads from this repository.
    code = textwrap.dedent(
        """
        import json, sys
        import mlops_loop.training.definition, mlops_loop.training.sdk_offline
        print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None))))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    loaded = {Path(f).resolve() for f in json.loads(proc.stdout)}
    own = {f for f in loaded if REPO_ROOT in f.parents and ".venv" not in f.parts}
    covered = {p.resolve() for pattern in GENERATOR_SOURCES for p in REPO_ROOT.glob(pattern)}
    assert own and own <= covered, sorted(str(f.relative_to(REPO_ROOT)) for f in own - covered)


def test_a_cached_definition_is_the_one_the_sdk_builds_and_a_warm_build_runs_no_sdk(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(content_cache, "_CACHES", {})
    spec = specs.base_spec()
    cold = build_pipeline_definition(spec)
    assert cold == generate_pipeline_definition(spec)
    # A new process (no memory) with the SDK unavailable still gets the same bytes from disk.
    monkeypatch.setattr(content_cache, "_CACHES", {})

    def no_sdk(*args, **kwargs):
        raise AssertionError("the SDK ran on a warm cache")

    monkeypatch.setattr(definition_module, "offline_sdk", no_sdk)
    assert build_pipeline_definition(spec) == cold


def test_one_entry_serves_every_code_version_and_each_gets_its_own(tmp_path, monkeypatch):
    """GIVEN two builds differing in their commit and their job code's asset hash and files digest only WHEN their
    definitions are built THEN one cache entry serves both, each with its own commit and hashes (what a new commit
    changes)."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(content_cache, "_CACHES", {})
    first = specs.replace(specs.base_spec(), code_version="release-one", code_asset_hash="1" * 64, code_sha256="3" * 64)
    second = dataclasses.replace(first, code_version="release-two-dirty", code_asset_hash="2" * 64, code_sha256="4" * 64)
    assert sdk_cache.sdk_cache().key("k", dataclasses.asdict(with_placeholders(first)[0])) == sdk_cache.sdk_cache().key(
        "k", dataclasses.asdict(with_placeholders(second)[0])
    )
    one, two = build_pipeline_definition(first), build_pipeline_definition(second)
    assert len(list((tmp_path / "cache").glob("pipeline-definition-*.json"))) == 1
    assert "release-one" in one and "release-two" not in one and "1" * 64 in one and "2" * 64 not in one
    assert "3" * 64 in one and "4" * 64 not in one
    assert two == one.replace("release-one", "release-two-dirty").replace("1" * 64, "2" * 64).replace("3" * 64, "4" * 64)
    assert two == generate_pipeline_definition(second)


@pytest.mark.parametrize(
    "field, value",
    [
        ("training_instance_type", "ml.m5.2xlarge"),
        ("region", "us-east-1"),
        ("use_spot", False),
        ("enable_tuning", True),
        ("test_set_refreeze", "never"),
        ("tags", (("project", "mlops-loop"), ("environment", "staging"))),
        ("code_entry_s3_uri", "s3://bucket/assets/0000000000000000000000000000000000000000000000000000000000000000.py"),
    ],
)
def test_every_spec_input_other_than_the_code_version_is_part_of_the_key(field, value):
    spec = specs.base_spec()
    changed = dataclasses.replace(spec, **{field: value})
    cache = sdk_cache.sdk_cache()
    key = lambda s: cache.key("pipeline-definition", dataclasses.asdict(with_placeholders(s)[0]))  # noqa: E731
    assert key(changed) != key(spec)
