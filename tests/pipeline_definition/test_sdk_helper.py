"""The SDK helper process: answers as the app's own, errors as they are, and the app carries on without it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import Future

import pytest

from mlops_loop.content_cache import CACHE_DIR_ENV, ContentCache
from mlops_loop.training import definition, sdk_helper, sdk_offline
from mlops_loop.training.names import XGBOOST_FRAMEWORK, XGBOOST_VERSION
from mlops_loop.training.sdk_cache import GENERATOR_SOURCES, sdk_cache
from mlops_loop.training.tokens import with_placeholders
from tests.support import pipeline_specs as specs
from tests.support.paths import REPO_ROOT


# One worker holds the module's helper (its SDK import costs a few CPU-seconds).
pytestmark = pytest.mark.xdist_group("sdk_helper")


def _new_helper() -> sdk_helper._Helper:
    return sdk_helper._Helper(sdk_cache().generator_digest())


@pytest.fixture(scope="module", autouse=True)
def running():
    """One helper for the tests that keep it alive, started with the module's first test: the tests that need none
    come first, while it imports the SDK. At the end it exits by itself once its stdin closes."""
    helper = _new_helper()
    yield helper
    helper.stop(10.0)
    assert helper.process.returncode == 0 and not os.path.exists(helper.temporary)


@pytest.fixture
def helper(running, monkeypatch):
    """The running helper, in use by :func:`sdk_helper.run` for this test only."""
    monkeypatch.setattr(sdk_helper, "_HELPER", running)
    return running


def wait_for(path: str) -> str:
    """Helper-side: return once ``path`` exists (at most 20 s), keeping the helper busy until then."""
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.01)
    return path


def shout(text: str) -> str:
    return text.upper()


def only_in(pid: int) -> str:
    if os.getpid() != pid:
        raise ValueError(f"not in process {os.getpid()}")
    return "answered"


def _unpicklable_error():
    class Local(Exception):
        pass

    raise Local("made inside a function, so its class cannot travel")


@pytest.fixture
def starts(monkeypatch):
    """The generator digests helpers were started with (none is), the app's settings restored after the test."""
    started = []

    def fake(generator):
        started.append(generator)
        return types.SimpleNamespace(stop=None, close=lambda: None,
                                     submit=lambda function, args: _done(function(*args)))

    monkeypatch.setattr(sdk_helper, "_Helper", fake)
    monkeypatch.setattr(sdk_helper, "_HELPER", None)
    monkeypatch.setattr(sdk_helper, "_START_ON_FIRST_MISS", False)
    monkeypatch.setattr(sdk_helper.atexit, "register", lambda *args, **kwargs: None)
    return started


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def test_a_helper_that_dies_is_replaced_by_computing_in_the_app_with_a_notice(monkeypatch, capsys):
    # GIVEN a helper that is killed before it answers
    dying = _new_helper()
    monkeypatch.setattr(sdk_helper, "_HELPER", dying)
    dying.process.kill()
    dying.process.wait()

    # WHEN the app asks
    try:
        answer = sdk_helper.run(os.getpid)
    finally:
        dying.stop(0)

    # THEN the app computes it, says so once, and no longer uses a helper
    assert answer == os.getpid()
    assert capsys.readouterr().err.startswith("mlops-loop: the SDK helper process stopped answering (")
    assert sdk_helper._HELPER is None
    assert sdk_helper.run(os.getpid) == os.getpid()
    assert capsys.readouterr().err == ""


def test_a_helper_that_sees_another_generator_is_not_used(monkeypatch, capsys, tmp_path):
    # GIVEN a helper of another generator, the app's temporary directory its own
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    other = sdk_helper._Helper("the digest of another checkout")
    monkeypatch.setattr(sdk_helper, "_HELPER", other)
    try:
        # WHEN the app asks it THEN the app does the work itself
        assert sdk_helper.run(os.getpid) == os.getpid()
    finally:
        other.stop(0.1)
    # AND the helper, killed while it still imported the SDK, left nothing behind: its temporary directory was removed
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr().err == (
        "mlops-loop: the SDK helper process stopped answering (it sees another generator than the app: "
        f"('generator', '{sdk_cache().generator_digest()}')); the app runs the SDK itself\n")


def test_an_sdk_that_fails_to_import_in_the_helper_fails_each_request_there_and_the_app_does_it(tmp_path, monkeypatch,
                                                                                                capsys):
    # GIVEN a helper that finds a broken sagemaker package first on its path
    (tmp_path / "sagemaker").mkdir()
    (tmp_path / "sagemaker" / "__init__.py").write_text("raise ImportError('a broken SDK')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    broken = _new_helper()
    monkeypatch.setattr(sdk_helper, "_HELPER", broken)
    request = {"framework": XGBOOST_FRAMEWORK, "region": specs.REGION, "version": XGBOOST_VERSION}
    try:
        # WHEN the app asks for an image THEN it gets the one it computes itself, and is told why
        assert sdk_helper.run(sdk_offline._retrieve_image_uri, request) == sdk_offline._retrieve_image_uri(request)
    finally:
        broken.stop(10.0)
    assert capsys.readouterr().err == (
        "mlops-loop: _retrieve_image_uri failed in the SDK helper process (ImportError while the helper imported the "
        "SDK: a broken SDK) but not in the app; the app's answer is used\n")


def test_a_stopped_helper_has_exited():
    started = _new_helper()
    started.stop(0.1)  # before its import is done: killed
    assert started.process.returncode is not None and not os.path.exists(started.temporary)


def test_the_app_starts_a_helper_at_once_only_when_the_cache_holds_no_answer_of_the_current_generator(
        tmp_path, monkeypatch, starts):
    # GIVEN an empty cache directory: WHEN the app starts THEN so does a helper
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "empty"))
    assert sdk_helper.start_for_app() and starts == [sdk_cache().generator_digest()]

    # GIVEN a directory where another process kept an answer of this generator: no helper yet
    monkeypatch.setattr(sdk_helper, "_HELPER", None)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "filled"))
    ContentCache(tmp_path / "filled", sources=GENERATOR_SOURCES).put("image-uri", {"any": "request"}, "an answer")
    assert not sdk_helper.start_for_app() and sdk_helper._HELPER is None and len(starts) == 1

    # GIVEN the cache turned off: every answer is computed, so a helper starts
    monkeypatch.setenv(CACHE_DIR_ENV, "off")
    assert sdk_helper.start_for_app() and len(starts) == 2


def test_after_a_config_edit_the_first_definition_the_cache_lacks_starts_the_helper(tmp_path, monkeypatch, starts):
    # GIVEN the app started on a cache that holds answers of this generator
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "filled"))
    ContentCache(tmp_path / "filled", sources=GENERATOR_SOURCES).put("image-uri", {"any": "request"}, "an answer")
    assert not sdk_helper.start_for_app()

    # WHEN an image lookup misses THEN it is computed here (the app waits for it anyway)
    assert sdk_helper.run(os.getpid) == os.getpid() and starts == []
    # WHEN work is begun later (a definition the cache lacks) THEN a helper starts and takes it, once
    assert sdk_helper.later(str, "begun")() == "begun" and len(starts) == 1
    assert sdk_helper.later(str, "again")() == "again" and len(starts) == 1
    # AND once the app has closed it, none starts again
    sdk_helper.close()
    assert sdk_helper.later(os.getpid)() == os.getpid() and len(starts) == 1


def test_without_the_app_nothing_starts_a_helper(starts):
    assert sdk_helper.later(os.getpid)() == os.getpid() and starts == []


def test_a_helper_that_cannot_start_leaves_the_app_computing_with_a_notice(tmp_path, monkeypatch, capsys, starts):
    def refuse(generator):
        raise OSError("no processes left")

    monkeypatch.setattr(sdk_helper, "_Helper", refuse)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "empty"))

    assert not sdk_helper.start_for_app()
    assert capsys.readouterr().err == ("mlops-loop: cannot start the SDK helper process (no processes left); "
                                       "the app runs the SDK itself\n")
    assert sdk_helper.later(os.getpid)() == os.getpid()  # and it is not tried again
    assert capsys.readouterr().err == ""


def test_a_request_asked_again_while_it_is_created_waits_for_the_same_creation(tmp_path):
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "build.py").write_text("VERSION = 1\n")
    cache = ContentCache(tmp_path / "c", root=tmp_path, sources=("gen/*.py",), distributions=lambda: [("sdk", "1")])
    started = []

    def start():
        started.append(1)
        return lambda: "answer"

    first, second = (cache.get_or_create_later("k", {"a": 1}, start) for _ in range(2))
    assert (first(), second(), len(started)) == ("answer", "answer", 1)
    fresh = ContentCache(tmp_path / "c", root=tmp_path, sources=("gen/*.py",), distributions=lambda: [("sdk", "1")])
    assert fresh.get_or_create_later("k", {"a": 1}, start)() == "answer" and len(started) == 1  # kept on disk


def test_holds_answers_is_per_generator_and_directory(tmp_path):
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "build.py").write_text("VERSION = 1\n")

    def cache(directory):
        return ContentCache(directory, root=tmp_path, sources=("gen/*.py",), distributions=lambda: [("sdk", "1")])

    assert not cache(tmp_path / "c").holds_answers()
    cache(tmp_path / "c").put("k", {"a": 1}, "answer")
    assert cache(tmp_path / "c").holds_answers()
    assert not cache(tmp_path / "other").holds_answers()
    assert not cache(None).holds_answers()
    (tmp_path / "gen" / "build.py").write_text("VERSION = 2\n")  # a changed generator has kept nothing yet
    assert not cache(tmp_path / "c").holds_answers()


def test_the_app_starts_the_helper_before_it_imports_the_cdk():
    """The helper's head start is the time the app spends importing the CDK."""
    probe = (
        "import sys, runpy\n"
        "from mlops_loop.training import sdk_helper\n"
        "def record():\n"
        "    print('cdk imported' if 'aws_cdk' in sys.modules else 'cdk not imported')\n"
        "    raise SystemExit(0)\n"
        "sdk_helper.start_for_app = record\n"
        "runpy.run_path('app.py', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.stdout == "cdk not imported\n", result.stderr[-2000:]


def test_app_py_imported_as_a_module_starts_no_helper(monkeypatch):
    """A test that imports app.py for its functions (tests/infra/test_config.py) must not get a helper: its
    definitions would then be generated in another process."""
    asked = []
    monkeypatch.setattr(sdk_helper, "start_for_app", lambda: asked.append(True))
    spec = importlib.util.spec_from_file_location("app_entry", REPO_ROOT / "app.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert asked == []


def test_the_helper_answers_in_its_own_process_what_the_app_would_compute(helper):
    # GIVEN an image lookup and a definition (tokens replaced, as the cache asks for it)
    request = {"framework": XGBOOST_FRAMEWORK, "region": specs.REGION, "version": XGBOOST_VERSION}
    safe_spec, _ = with_placeholders(specs.base_spec())

    # WHEN the helper computes them
    answers = sdk_helper.run(sdk_offline._retrieve_image_uri, request), sdk_helper.run(definition._generate, safe_spec)

    # THEN they are what this process computes itself, and the helper is another process
    assert answers == (sdk_offline._retrieve_image_uri(request), definition._generate(safe_spec))
    assert sdk_helper.run(os.getpid) == helper.process.pid != os.getpid()


def test_work_given_later_goes_on_in_the_helper_while_the_app_does(helper, tmp_path, monkeypatch):
    # GIVEN a helper kept busy until the app lets it go, and an empty cache
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    released = tmp_path / "released"
    busy = sdk_helper.later(wait_for, str(released))

    # WHEN the app asks for a definition later (it would never return if it waited for the busy helper)
    definition_of = definition.pipeline_definition_later(specs.base_spec())

    # THEN it returned at once; once the helper is free, the definition is the one built here, and it is kept
    released.touch()
    assert busy() == str(released)
    assert definition_of() == definition.generate_pipeline_definition(specs.base_spec())
    assert len(list((tmp_path / "cache").glob("pipeline-definition-*.json"))) == 1


def test_the_helpers_temporary_files_go_to_a_directory_of_its_own(helper):
    # A helper killed mid-import cannot remove what it made; the app removes this directory once the helper has exited
    # (asserted by the module's fixture, and for helpers stopped mid-import above)
    assert sdk_helper.run(tempfile.gettempdir) == helper.temporary != tempfile.gettempdir()


def test_requests_and_answers_larger_than_a_pipe_holds_do_not_block_each_other(helper):
    """Each request and each answer is bigger than a pipe's buffer (64 KiB): the app writing the next request
    while the helper writes an answer must not wait on each other."""
    text = "x" * 300_000
    results = []
    asking = threading.Thread(target=lambda: results.extend(sdk_helper.later(shout, text) for _ in range(8)),
                              daemon=True)
    asking.start()
    asking.join(timeout=60)
    assert not asking.is_alive(), "the app and the helper block each other"
    assert [result() for result in results] == [text.upper()] * 8


def test_an_error_in_the_helper_is_raised_in_the_app_with_its_type_and_message(helper):
    request = {"framework": XGBOOST_FRAMEWORK, "region": "xx-nowhere-1", "version": XGBOOST_VERSION}
    with pytest.raises(ValueError) as here:
        sdk_offline._retrieve_image_uri(request)

    with pytest.raises(ValueError) as there:
        sdk_helper.run(sdk_offline._retrieve_image_uri, request)

    assert str(there.value) == str(here.value)
    # The app does the work again: the genuine exception, even one whose class cannot travel between processes
    with pytest.raises(Exception, match=r"^made inside a function, so its class cannot travel$") as local:
        sdk_helper.run(_unpicklable_error)
    assert type(local.value).__name__ == "Local"
    assert sdk_helper.run(os.getpid) == helper.process.pid  # and the helper still answers


def test_work_that_fails_only_in_the_helper_is_answered_by_the_app_with_a_notice(helper, capsys):
    assert sdk_helper.run(only_in, os.getpid()) == "answered"
    assert capsys.readouterr().err == ("mlops-loop: only_in failed in the SDK helper process (ValueError: not in "
                                       f"process {helper.process.pid}) but not in the app; the app's answer is used\n")


def test_what_the_work_writes_to_stdout_does_not_reach_the_answers(helper):
    written = b"printed by the SDK\n"
    assert sdk_helper.run(os.write, 1, written) == len(written)
    assert sdk_helper.run(os.getpid) == helper.process.pid  # the same helper, still answering


@pytest.mark.synth
def test_an_environment_built_with_the_helper_has_the_templates_built_without_it(helper, tmp_path, monkeypatch):
    """GIVEN the frozen sample's first environment, with two of its models (two definitions in flight at once) WHEN it
    is synthesized with the helper on an empty cache (as app.py does cold) and without one THEN every template is the
    same bytes."""
    from mlops_loop.app_builder import build_app, new_app
    from mlops_loop.config import load_config
    from tests.support.configs import SAMPLE_CONFIG

    sample = load_config(SAMPLE_CONFIG)
    name, environment = next(iter(sample.environments.items()))
    config = sample.model_copy(update={"environments": {name: environment.model_copy(update={
        "models": environment.models[:2]})}})

    def templates(outdir):
        app = new_app(str(outdir))
        build_app(app, config, environments=[name], code_version="test")
        app.synth()
        return {path.relative_to(outdir): path.read_bytes() for path in outdir.rglob("*.template.json")}

    asked = []
    submit = helper.submit
    monkeypatch.setattr(helper, "submit",
                        lambda function, args: asked.append(function.__name__) or submit(function, args))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "empty"))
    with_helper = templates(tmp_path / "with")
    assert asked.count("_generate") == len(config.environments[name].models) and "_retrieve_image_uri" in asked
    monkeypatch.setattr(sdk_helper, "_HELPER", None)
    monkeypatch.delenv(CACHE_DIR_ENV)
    without = templates(tmp_path / "without")
    assert with_helper and with_helper == without
