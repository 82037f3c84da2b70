"""Fixtures for the whole suite: the app's garbage-collector thresholds, one botocore loader, cfn-lint
in the test process, one RSA key per size for moto, one local Spark session, the monitor's reference model, long
tests first, and the test CDK apps' assemblies under pytest's base temp.

Job code must import from the repository root however pytest was started, in this process and in
Spark's Python workers (which run mapInPandas functions), hence PYTHONPATH and PYSPARK_PYTHON; and
xgboost must see OMP_WAIT_POLICY before it loads (see pipeline_code.training).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The suite reads the configs it names: a second project's MLOPS_LOOP_CONFIG exported in the developer's shell would
# change every tool's default --config and what a `python app.py` the tests start reads (mlops_loop.config.location).
os.environ.pop("MLOPS_LOOP_CONFIG", None)
# Bare Apps in construct tests synthesize as the app does (app_builder.new_app turns CDK's built-in template
# validator off: cfn-lint checks every template, tests/infra/test_compliance.py). Read by the CDK's Node process
# when it starts, hence before anything imports aws_cdk; it loads the CloudFormation spec on first use
# otherwise (~4 CPU-s per process for nothing the tests assert).
os.environ.setdefault("CDK_VALIDATION", "false")

from mlops_loop.interpreter import collect_garbage_less_often, skip_teardown_at_exit  # noqa: E402
from mlops_loop.training.sdk_offline import shared_data_loaders  # noqa: E402
from tests.support import cdk_outdirs  # noqa: E402

collect_garbage_less_often()  # each test process, pytest-xdist's workers too: they import this conftest

# Every botocore session of the test process reads botocore's service models through one loader, from its start:
# moto's ``mock_aws`` starts each test with a fresh default boto3 session, whose new loader would parse the same
# service-model JSON again (~40 % of a handler test's time); and importing the test modules and conftests reads some
# already - moto's EC2 backend, imported with its CloudFormation one (tests/support/deploy_handler.py), asks three new
# sessions for EC2's regions (EC2's model and the endpoints each time), tests/infra/test_job_resources.py reads
# SageMaker's - which the tests read again. The models never change within a process, so sharing them changes no
# behaviour. Before any other conftest is imported (this one is first), so for a run of a few files too, whose
# conftests pytest imports before it configures; restored when the session ends (``pytest_configure``).
BOTOCORE_LOADERS = contextlib.ExitStack()
BOTOCORE_LOADERS.enter_context(shared_data_loaders())

SPARK_WORKER_GROUP = "spark"


def pytest_configure(config: pytest.Config) -> None:
    """The botocore sessions share one loader until the session ends; a pytest-xdist worker ends without the
    interpreter's teardown; and every process collects garbage once at the end instead of pytest's five times: they
    are there to report errors raised in ``__del__`` by the session's end, which the first finds; on the workers'
    heaps the other four cost 1.6 s at the end of every run. (A private key of pytest's, pinned in the lock; without
    it pytest keeps its five.)"""
    config.add_cleanup(BOTOCORE_LOADERS.close)
    if hasattr(config, "workerinput"):
        # A pytest-xdist worker (never the main process, whose exit status is the run's; nor a pytest started by a
        # test, which inherits the worker's environment, not this attribute): it reports through its channel.
        skip_teardown_at_exit()
    try:
        from _pytest.unraisableexception import gc_collect_iterations_key
    except ImportError:
        return
    config.stash[gc_collect_iterations_key] = 1


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the group markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run first: a long test handed out last would keep one core busy alone at the end.

    Every test that uses the ``spark`` fixture runs on one pytest-xdist worker (``--dist loadgroup``),
    so a run starts and warms up one JVM, not one per worker: the session start and the first jobs of
    a fresh JVM cost about 16 CPU-seconds. Tuned for the two cores of CI and a contributor's machine, where
    the Spark tests (about a quarter of the suite's time) leave the other worker enough to do; with many
    more workers that one worker would set the pace.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(SPARK_WORKER_GROUP))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A CDK App the tests build without an outdir fails the test (tests/support/cdk_outdirs.py): its assembly would
    stay in the system temp directory after the run."""
    cdk_outdirs.guard_bare_apps()


@pytest.fixture(scope="session", autouse=True)
def cdk_assemblies_under_the_base_temp(tmp_path_factory: pytest.TempPathFactory):
    """``bare_outdir()`` hands out directories under this process's base temp (tests/support/cdk_outdirs.py)."""
    cdk_outdirs.use_base_temp(tmp_path_factory)


@pytest.fixture(scope="session", autouse=True)
def cfn_lint_in_the_test_process():
    """Each lint in a test process runs cfn-lint once, in this process (tests/support/cfn_lint_in_process.py):
    the same command line, configuration and environment as the product's cfn-lint process, without its
    ~1.3 CPU-s start each time. Not one run per core either: the test workers already keep every core busy.
    tests/infra/test_lint.py runs it as the processes the product starts, where they are the subject.
    """
    from mlops_loop.tools import lint
    from tests.support import cfn_lint_in_process

    original = lint._cores, lint._start
    lint._cores = lambda: 1
    lint._start = cfn_lint_in_process.start
    yield
    lint._cores, lint._start = original


@pytest.fixture(scope="session", autouse=True)
def one_rsa_key_per_size():
    """moto makes a new RSA key for every SNS topic (to sign its notifications) and every KMS key it fakes,
    about 55 ms each for 2048 bits (4 of the 31 s of tests/handlers/test_deploy_on_approval.py). No test
    verifies those signatures, so the test process makes one key per size and shape and hands it out again.
    """
    from functools import lru_cache

    from cryptography.hazmat.primitives.asymmetric import rsa

    original = rsa.generate_private_key
    rsa.generate_private_key = lru_cache(maxsize=None)(original)
    yield
    rsa.generate_private_key = original


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """The one local Spark session of a test process (under pytest-xdist, of the one worker that runs every
    test using it: see ``pytest_collection_modifyitems``), pinned to UTC.

    ``local[1]`` with one shuffle partition and no UI: test data is tiny, and Spark's defaults (200
    partitions) only add overhead; one core runs one task at a time anyway, so a second partition only doubled the
    tasks (tests/jobs/test_glue_curate_job.py: 79.4 and 82.3 CPU-s with two, 72.5 and 73.4 with one, JVM included). For the same reason queries are interpreted wherever Spark has an
    interpreted path (no whole-stage code generation; ``factoryMode`` is an internal setting, read
    outside Spark's own tests too in 3.5): compiling Java for a query of a few hundred rows takes longer
    than running it. Nor are they re-planned at each shuffle (adaptive execution), so a shuffle keeps its
    one partition. The rows a job writes are the same; only part-file counts and the order of rows no
    query orders could differ, which no test relies on; tests/jobs took 68-69 s instead of 76-88 s in
    one process. Its JVM compiles with the client compiler only and collects garbage on one thread: the
    optimizing compiler's background work never pays off in a session this short (measured with the JVM's
    own CPU time over tests/jobs' Spark tests: 63 s by default, 39 s client compiler only, 38 s with the
    serial collector too), and fewer JVM threads leave the other test worker its core. The local loop
    (``run_loop``) reuses this session as the active one in the tests;
    outside them it and Glue keep Spark's defaults. Spark tests are marked ``@pytest.mark.spark``
    (``-m "not spark"`` runs the pandas-only rest).
    """
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("mlops-loop-tests")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.extraJavaOptions",
                f"-Dderby.system.home={warehouse} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.python.daemon.module", "tests.support.spark_daemon")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    # PySpark finds these classes by their simple names on every call (each F.col, F.when, ...: `jvm.functions`),
    # which py4j resolves by trying its star imports in turn: each miss a class lookup through Spark's 250 jars
    # (15 % of the JVM's CPU in tests/jobs). Imported by name, each is found at once: the same classes.
    from py4j.java_gateway import java_import

    for name in ("org.apache.spark.sql.functions", "org.apache.spark.api.python.PythonUtils",
                 "org.apache.spark.sql.SparkSession"):
        java_import(session.sparkContext._jvm, name)
    # And every package, class and static method PySpark reaches by name is asked of the JVM once, not at each use
    # (tests/support/py4j_lookups.py): the same classes and methods.
    from tests.support import py4j_lookups

    with py4j_lookups.remembered():
        yield session
    gateway = session.sparkContext._gateway
    session.stop()
    # The JVM outlives stop(): it exits when its stdin closes, at this process's exit, and is then never waited for,
    # so its CPU time (most of a Spark test's) was counted to nobody - bench/synth_bench.py reported the suite's CPU
    # seconds without it. Ending and reaping it here counts it to this process, and so to the run.
    gateway.shutdown()
    gateway.proc.stdin.close()
    try:
        gateway.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        gateway.proc.kill()
        gateway.proc.wait()


@pytest.fixture(scope="session")
def spec():
    """The churn model's job spec, as the monitor and replay tests use it."""
    from tests.support.monitoring import churn_spec

    return churn_spec()


@pytest.fixture(scope="session")
def reference(tmp_path_factory, spec):
    """A real model trained on generated data, with its baselines (the monitor's and the replay command's reference)."""
    from tests.support.monitoring import build_reference

    return build_reference(tmp_path_factory.mktemp("reference"), spec)
