"""The offline SDK context: environment, guard and session, and that it cleans up after itself."""

from __future__ import annotations

import logging
import os
import socket

import pytest

from mlops_loop.training import OfflineViolation, offline_sdk
from mlops_loop.training.sdk_offline import guarded_attempts, network_guard


def test_session_has_a_pinned_default_bucket_and_the_region():
    with offline_sdk("eu-west-1", "my-artifacts") as session:
        assert session.default_bucket() == "my-artifacts"  # no S3 call: the guard would fail
        assert session.boto_region_name == "eu-west-1"
        assert os.environ["SAGEMAKER_VALIDATE_ROLE"] == "false"
        assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
        assert session.sagemaker_config["SageMaker"]["PythonSDK"]["Modules"]["TelemetryOptOut"] is True


def test_an_api_call_is_blocked_and_reported():
    with pytest.raises(OfflineViolation, match="s3.ListBuckets"):
        with offline_sdk("eu-west-1", "my-artifacts") as session:
            session.boto_session.client("s3").list_buckets()


def test_a_swallowed_api_call_still_fails_the_context():
    """SDK code often catches exceptions around calls; the attempt is still reported on exit."""
    with pytest.raises(OfflineViolation, match="sts.GetCallerIdentity"):
        with offline_sdk("eu-west-1", "my-artifacts") as session:
            try:
                session.boto_session.client("sts").get_caller_identity()
            except Exception:  # noqa: BLE001 - what the SDK does
                pass
            assert guarded_attempts()


def test_sockets_and_dns_are_blocked():
    with pytest.raises(OfflineViolation):
        with network_guard():
            try:
                socket.create_connection(("example.com", 443), timeout=1)
            except OfflineViolation:
                pass


def test_everything_is_restored_on_exit():
    before_env = dict(os.environ)
    root = logging.getLogger()
    before_handlers, before_level = list(root.handlers), root.level
    connect = socket.socket.connect
    import botocore.client

    make_api_call = botocore.client.BaseClient._make_api_call
    with offline_sdk("us-east-1", "other-bucket"):
        assert socket.socket.connect is not connect
        assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert dict(os.environ) == before_env
    assert root.handlers == before_handlers and root.level == before_level
    assert socket.socket.connect is connect
    assert botocore.client.BaseClient._make_api_call is make_api_call
    assert guarded_attempts() is None


def test_sessions_share_one_data_loader_only_inside_the_context(monkeypatch):
    """GIVEN two boto3 sessions created inside the offline context (as the SDK creates dozens)
    WHEN their botocore data loaders are compared
    THEN they are one loader, whose search paths boto3 did not duplicate; outside the context every
    session gets its own loader again."""
    import boto3
    import botocore.loaders
    import botocore.session

    # botocore's own behaviour outside (the suite shares loaders for speed, tests/conftest.py).
    monkeypatch.setattr(botocore.session, "create_loader", botocore.loaders.create_loader)
    create_loader = botocore.session.create_loader
    with offline_sdk("eu-west-1", "my-artifacts") as session:
        first, second = boto3.Session(region_name="eu-west-1"), boto3.Session(region_name="us-east-1")
        loader = first._session.get_component("data_loader")
        assert second._session.get_component("data_loader") is loader
        assert session.boto_session._session.get_component("data_loader") is loader
        assert len(loader.search_paths) == len(set(loader.search_paths))
        assert first.client("sagemaker").meta.service_model.service_name == "sagemaker"
    assert botocore.session.create_loader is create_loader
    outside = boto3.Session(region_name="eu-west-1")._session.get_component("data_loader")
    assert outside is not loader


def test_arguments_are_required():
    with pytest.raises(ValueError, match="region"):
        with offline_sdk("", "bucket"):
            pass


def test_py4j_may_reach_its_local_spark_jvm_inside_the_guard_and_nothing_else_may():
    """GIVEN a process that also runs Spark (the local loop, the test suite) WHEN the garbage collector
    finalizes a Spark object during a definition build THEN py4j's loopback connection to its JVM passes
    the guard; the same connection from any other code is blocked and reported."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        address = server.getsockname()
        py4j_code = {"__name__": "py4j.clientserver", "socket": socket, "address": address}
        exec("def release():\n    with socket.create_connection(address, timeout=5):\n        return True", py4j_code)
        with pytest.raises(OfflineViolation, match="'127.0.0.1'"):
            with network_guard():
                assert py4j_code["release"]() is True
                socket.create_connection(address, timeout=5)


def test_steps_check_their_callers_name_without_a_local_session_also_in_a_nested_context(monkeypatch):
    """GIVEN the offline context, and one opened inside it (an image lookup during a build) WHEN a pipeline step
    asks ``LocalSagemakerClient()`` for the name of the method that made its arguments THEN it gets that name,
    without a local-mode session being made; on exit the SDK's class is back."""
    with offline_sdk("eu-west-1", "my-artifacts"):
        from sagemaker.core.local.local_session import LocalSagemakerClient, LocalSession
        from sagemaker.mlops.workflow import steps

        made = []
        original_init = LocalSession.__init__
        monkeypatch.setattr(LocalSession, "__init__", lambda self, *a, **k: made.append(self) or original_init(self, *a, **k))
        names = [steps.LocalSagemakerClient().create_processing_job.__name__]
        with offline_sdk("us-east-1", "unused-default-bucket"):
            names.append(steps.LocalSagemakerClient().create_transform_job.__name__)
        names.append(steps.LocalSagemakerClient().create_processing_job.__name__)
    assert names == ["create_processing_job", "create_transform_job", "create_processing_job"]
    assert made == []
    assert steps.LocalSagemakerClient is LocalSagemakerClient
