"""Serverless self-capture: the serving code writes SageMaker-format capture records the monitor decodes."""

from __future__ import annotations

import json

import boto3
import numpy as np
import pytest
from moto import mock_aws

from pipeline_code.serving import inference as inf
from pipeline_code.serving import self_capture

from tests.support.capture import decode_capture
from pipeline_code.core import integrity
from pipeline_code.core.contract import ANSWERED_BY, MODEL_VERSION_ENV, SMOKE_TEST_INFERENCE_ID
from pipeline_code.monitoring.capture import ANSWERED

BUCKET = "mlops-loop-dev-inference-111111111111-eu-west-1"


@pytest.fixture
def s3(monkeypatch):
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        monkeypatch.setattr(self_capture, "_CLIENT", client)
        yield client


def _enable(monkeypatch, percent: str = "100") -> None:
    monkeypatch.setenv("MLOPS_CAPTURE_S3_URI", f"s3://{BUCKET}/capture/churn/")
    monkeypatch.setenv("MLOPS_CAPTURE_PERCENT", percent)
    monkeypatch.setenv("MLOPS_ENDPOINT_NAME", "mlops-loop-dev-churn")


def _download(s3, tmp_path):
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    for key in keys:
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return keys


def test_each_request_is_captured_in_sagemaker_format_and_decoded_by_the_monitor(trained, s3, monkeypatch, tmp_path):
    """GIVEN capture on (serverless) WHEN raw-field requests are served THEN one object per request lands under
    capture/<model>/<endpoint>/AllTraffic/yyyy/mm/dd/hh/ and the monitor decodes them to the served scores."""
    _enable(monkeypatch)
    model = inf.model_fn(trained.model_dir)
    for start in (0, 5):
        body = json.dumps({"instances": trained.raw_records(10)[start:start + 5]}).encode()
        inf.invoke(model, body, content_type=inf.JSON)
    keys = _download(s3, tmp_path)
    assert len(keys) == 2
    assert all(k.startswith("capture/churn/mlops-loop-dev-churn/AllTraffic/") and k.endswith(".jsonl") for k in keys)
    window = decode_capture(trained, tmp_path / "capture" / "churn")
    assert len(window.frame) == 10
    assert np.allclose(np.sort(window.frame["score"].to_numpy()), np.sort(trained.evaluation_scores[:10]))


@pytest.mark.parametrize("accept", [inf.CSV, inf.JSON])
def test_the_monitor_knows_which_model_answered_a_self_captured_request_whatever_the_response_type(
        trained, s3, monkeypatch, tmp_path, accept):
    """GIVEN capture on and a registry version set on the container WHEN requests are answered in CSV (which names no
    model) or JSON THEN each captured record says which artefact and version answered, and the monitor reads it."""
    _enable(monkeypatch)
    monkeypatch.setenv(MODEL_VERSION_ENV, "7")
    model = inf.model_fn(trained.model_dir)
    body = json.dumps({"instances": trained.raw_records(4)}).encode()
    inf.invoke(model, body, content_type=inf.JSON, accept=accept)
    (key,) = _download(s3, tmp_path)
    record = json.loads((tmp_path / key).read_text())
    assert record["eventMetadata"][ANSWERED_BY] == model.info
    window = decode_capture(trained, tmp_path / "capture" / "churn")
    digest = integrity.model_digest(trained.model_dir)
    assert window.frame[ANSWERED].tolist() == [digest] * 4
    assert window.summary()["answered_by"] == {"models": {digest: {"version": "7", "records": 4}}, "unattributed": 0}


def test_sampling_and_switching_off(trained, s3, monkeypatch, tmp_path):
    model = inf.model_fn(trained.model_dir)
    body = json.dumps({"instances": trained.raw_records(2)}).encode()
    inf.invoke(model, body, content_type=inf.JSON)  # no environment: capture off
    _enable(monkeypatch, percent="0")
    inf.invoke(model, body, content_type=inf.JSON)
    assert _download(s3, tmp_path) == []


def test_a_capture_failure_never_fails_the_response(trained, s3, monkeypatch, capsys):
    """GIVEN a capture bucket that does not exist WHEN a request is served THEN the response is returned
    and the failure is logged and counted."""
    monkeypatch.setenv("MLOPS_CAPTURE_S3_URI", "s3://no-such-bucket-anywhere/capture/churn/")
    before = self_capture.FAILURES["count"]
    model = inf.model_fn(trained.model_dir)
    body, kind = inf.invoke(model, json.dumps({"instances": trained.raw_records(1)}).encode(), content_type=inf.JSON)
    assert kind == inf.JSON and json.loads(body)["predictions"]
    assert self_capture.FAILURES["count"] == before + 1
    logged = capsys.readouterr()
    assert "self_capture: could not write capture" in logged.err
    # AND the failure is a CaptureWriteFailures data point of the endpoint (embedded metric format on stdout)
    (line,) = [json.loads(x) for x in logged.out.splitlines() if x.startswith("{") and '"_aws"' in x]
    assert line["_aws"]["CloudWatchMetrics"] == [{"Namespace": "mlops-loop/capture", "Dimensions": [["EndpointName"]],
                                                   "Metrics": [{"Name": "CaptureWriteFailures", "Unit": "Count"}]}]
    assert line["EndpointName"] == "endpoint" and line["CaptureWriteFailures"] == 1 and "NoSuchBucket" in line["error"]
    assert isinstance(line["_aws"]["Timestamp"], int)


def test_kms_and_settings():
    assert self_capture.settings({}) is None
    assert self_capture.settings({"MLOPS_CAPTURE_S3_URI": "not-s3"}) is None
    config = self_capture.settings({"MLOPS_CAPTURE_S3_URI": "s3://b/capture/m", "MLOPS_CAPTURE_PERCENT": "250",
                                    "MLOPS_CAPTURE_KMS_KEY_ID": "arn:aws:kms:eu-west-1:1:key/k"})
    assert config["prefix"] == "capture/m/" and config["percent"] == 100.0 and config["kms_key_id"].endswith("key/k")

    class Recorder:
        def put_object(self, **kwargs):
            self.kwargs = kwargs

    recorder = Recorder()
    key = self_capture.capture(request_body="1,2", request_type="text/csv", response_body=b"0.5", response_type="text/csv",
                               environ={"MLOPS_CAPTURE_S3_URI": "s3://b/capture/m/", "MLOPS_CAPTURE_KMS_KEY_ID": "k1"},
                               client=recorder)
    assert key and recorder.kwargs["ServerSideEncryption"] == "aws:kms" and recorder.kwargs["SSEKMSKeyId"] == "k1"
    record = json.loads(recorder.kwargs["Body"])
    assert record["captureData"]["endpointInput"]["encoding"] == "CSV" and record["eventVersion"] == "0"


@pytest.mark.parametrize(("environ", "region", "endpoint"), [
    ({"MLOPS_CAPTURE_REGION": "ap-south-1"}, "ap-south-1", "https://s3.ap-south-1.amazonaws.com"),
    ({"MLOPS_CAPTURE_REGION": "ap-south-1", "AWS_REGION": "eu-west-1"}, "ap-south-1", "https://s3.ap-south-1.amazonaws.com"),
    # Nothing set (what no documentation rules out in a hosting container): S3's global endpoint, unreachable from a
    # VPC without NAT - why the infrastructure sets the region.
    ({}, "us-east-1", "https://s3.amazonaws.com"),
], ids=["set", "set-wins", "unset"])
def test_the_s3_client_is_made_for_the_region_the_container_is_told(monkeypatch, environ, region, endpoint):
    """GIVEN the container's MLOPS_CAPTURE_REGION (the infrastructure sets the bucket's region) WHEN capture makes its
    client THEN it is for that region and its regional endpoint, whatever else the environment says; unset, boto3's
    default chain decides."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    for name, value in environ.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setattr(self_capture, "_CLIENT", None)
    config = self_capture.settings({"MLOPS_CAPTURE_S3_URI": "s3://b/capture/m/", **environ})
    client = self_capture._client(config["region"])
    assert client.meta.region_name == region and client.meta.endpoint_url == endpoint
    assert self_capture._client("eu-west-1") is client  # made once per process


# --------------------------------------------------------------------------------------
# Multi-model endpoints: one environment, settings resolved per model
# --------------------------------------------------------------------------------------
def _enable_per_model(monkeypatch, percent: str) -> None:
    monkeypatch.setenv("MLOPS_CAPTURE_S3_URI", f"s3://{BUCKET}/capture/{{model}}/")
    monkeypatch.setenv("MLOPS_CAPTURE_PERCENT", percent)
    monkeypatch.setenv("MLOPS_ENDPOINT_NAME", "mlops-loop-dev-mme")


def test_placeholder_and_percent_map_capture_each_model_under_its_own_prefix(trained_models, s3, monkeypatch, tmp_path):
    """GIVEN one MME environment with capture/{model}/ and {"churn": 100, "credit-risk": 0} WHEN both models
    serve requests THEN only churn's land, under capture/churn/<endpoint>/AllTraffic/, decoding to its scores."""
    _enable_per_model(monkeypatch, json.dumps({"churn": 100, "credit-risk": 0}))
    for name in ("churn", "credit-risk"):
        model = inf.model_fn(trained_models[name].model_dir)
        inf.invoke(model, json.dumps({"instances": trained_models[name].raw_records(4)}).encode(), content_type=inf.JSON)
    keys = _download(s3, tmp_path)
    assert len(keys) == 1 and keys[0].startswith("capture/churn/mlops-loop-dev-mme/AllTraffic/")
    window = decode_capture(trained_models["churn"], tmp_path / "capture" / "churn")
    assert np.allclose(np.sort(window.frame["score"].to_numpy()), np.sort(trained_models["churn"].evaluation_scores[:4]))

    # Now both are sampled: credit-risk's request lands under its own prefix.
    _enable_per_model(monkeypatch, json.dumps({"churn": 100, "credit-risk": 100}))
    model = inf.model_fn(trained_models["credit-risk"].model_dir)
    inf.invoke(model, json.dumps({"instances": trained_models["credit-risk"].raw_records(3)}).encode(), content_type=inf.JSON)
    keys = _download(s3, tmp_path)
    assert sorted(k.split("/")[1] for k in keys) == ["churn", "credit-risk"]
    window = decode_capture(trained_models["credit-risk"], tmp_path / "capture" / "credit-risk")
    assert np.allclose(np.sort(window.frame["score"].to_numpy()), np.sort(trained_models["credit-risk"].evaluation_scores[:3]))


def test_a_model_missing_from_the_percent_map_is_not_captured(trained, s3, monkeypatch, tmp_path):
    _enable_per_model(monkeypatch, json.dumps({"some-other-model": 100}))
    model = inf.model_fn(trained.model_dir)
    inf.invoke(model, json.dumps({"instances": trained.raw_records(2)}).encode(), content_type=inf.JSON)
    assert _download(s3, tmp_path) == []


def test_placeholder_without_a_model_name_turns_capture_off_with_a_log_line(s3, monkeypatch, capsys):
    _enable_per_model(monkeypatch, "100")
    assert self_capture.capture(request_body="{}", request_type=inf.JSON, response_body=b"{}", response_type=inf.JSON) is None
    assert "holds {model} but the model has no name" in capsys.readouterr().err
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    # The same environment with a name writes (so the line above is about the missing name only).
    key = self_capture.capture(request_body="{}", request_type=inf.JSON, response_body=b"{}", response_type=inf.JSON,
                               model="churn")
    assert key.startswith("capture/churn/mlops-loop-dev-mme/AllTraffic/")


def test_per_model_settings_and_unchanged_plain_settings(capsys):
    env = {"MLOPS_CAPTURE_S3_URI": "s3://b/capture/{model}", "MLOPS_CAPTURE_PERCENT": '{"churn": 12.5, "credit-risk": "7"}'}
    assert self_capture.settings(env, "churn")["prefix"] == "capture/churn/"
    assert self_capture.settings(env, "churn")["percent"] == 12.5
    assert self_capture.settings(env, "credit-risk")["percent"] == 7.0
    assert self_capture.settings(env, "other") is None
    assert self_capture.settings(env) is None
    assert self_capture.settings({**env, "MLOPS_CAPTURE_PERCENT": '{"churn": 500}'}, "churn")["percent"] == 100.0
    capsys.readouterr()
    assert self_capture.settings({**env, "MLOPS_CAPTURE_PERCENT": '{"churn": "lots"}'}, "churn") is None
    assert self_capture.settings({**env, "MLOPS_CAPTURE_PERCENT": '{"churn": 1'}, "churn") is None
    assert capsys.readouterr().err.count("capture is off") == 2
    # Plain URI and number: the model name changes nothing.
    plain = {"MLOPS_CAPTURE_S3_URI": "s3://b/capture/m/", "MLOPS_CAPTURE_PERCENT": "30"}
    assert self_capture.settings(plain) == self_capture.settings(plain, "churn")
    assert self_capture.settings(plain)["prefix"] == "capture/m/" and self_capture.settings(plain)["percent"] == 30.0
    assert self_capture.settings({**plain, "MLOPS_CAPTURE_PERCENT": "abc"})["percent"] == 100.0


def test_the_deploy_smoke_test_is_not_captured_but_its_id_hides_no_traffic(trained, s3, monkeypatch, tmp_path):
    """GIVEN capture on WHEN the deploy handler's smoke request (one record, every feature null) is served
    THEN it is answered but not captured; a real record carrying the same inference id is captured."""
    _enable(monkeypatch)
    model = inf.model_fn(trained.model_dir)
    smoke = {**{name: None for name in model.feature_order}, "inference_id": SMOKE_TEST_INFERENCE_ID}
    dodge = {**trained.raw_records(1)[0], "inference_id": SMOKE_TEST_INFERENCE_ID}
    for record in (smoke, dodge):
        body, _ = inf.invoke(model, json.dumps({"instances": [record]}).encode(), content_type=inf.JSON)
        assert json.loads(body)["predictions"][0]["inference_id"] == SMOKE_TEST_INFERENCE_ID
    keys = _download(s3, tmp_path)
    assert len(keys) == 1
    captured = json.loads(json.loads((tmp_path / keys[0]).read_text())["captureData"]["endpointInput"]["data"])
    assert captured["instances"] == [dodge]  # the dodge is traffic; the smoke request is not
