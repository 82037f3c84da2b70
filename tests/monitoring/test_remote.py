"""The scheduled monitor's S3 inputs (``monitor --from-s3``), against moto: a real serving stack
(CloudFormation), a real registry (SageMaker model packages, registered the way the training
pipeline's register step does), real buckets (S3) and CloudWatch.

moto stamps ``LastModified`` with the upload time and has no API to change it: the tests that need
objects of other ages set ``last_modified`` on the object in moto's S3 backend (``age()``), and pass
the window's end (``now``) explicitly where exact boundaries matter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import pytest

from mlops_cli.local import replay
from pipeline_code.monitoring import capture, monitor, remote
from pipeline_code.training import baseline
from tests.support.monitoring import check
from tests.support.remote_world import (
    ARTIFACTS, BATCH_URI, CAPTURE_URI, INFERENCE, LABELS_URI, NOW, STACK, from_s3_args, model_archive, published,
    read_report, register, upload_traffic,
)

def test_the_serving_version_comes_from_the_stack_parameter_not_the_latest_registration(aws, reference):
    # GIVEN v1 serving while a newer v2 is registered (and approved, but not yet deployed)
    v1 = register(aws, reference, "run-1")
    register(aws, reference, "run-2")
    aws.serving_stack(churn_arn=v1)
    # WHEN the serving version is resolved
    serving = remote.resolve_serving_version(stack_name=STACK, model="churn", cloudformation=aws.cloudformation,
                                             sagemaker=aws.sagemaker)
    # THEN it is v1, with v1's registered URIs and the unregistered files found next to them
    assert serving.arn == v1 and serving.version == 1 and serving.approval == "Approved"
    base = f"s3://{ARTIFACTS}/churn/run-1"
    assert serving.model_data_url == f"{base}/model/model.tar.gz"
    assert (serving.statistics_uri, serving.constraints_uri) == (f"{base}/baseline/statistics.json", f"{base}/baseline/constraints.json")
    assert serving.attributions_uri == f"{base}/baseline/attributions.json"
    assert serving.evaluation_uri == f"{base}/evaluation/evaluation.json"


def test_empty_parameter_means_not_serving_and_a_wrong_stack_or_model_is_an_error(aws):
    aws.serving_stack(churn_arn="")
    kw = {"cloudformation": aws.cloudformation, "sagemaker": aws.sagemaker}
    assert remote.resolve_serving_version(stack_name=STACK, model="churn", **kw) is None
    with pytest.raises(remote.RemoteError, match="FraudModelPackageArn") as missing_parameter:
        remote.resolve_serving_version(stack_name=STACK, model="fraud", **kw)
    assert missing_parameter.value.kind == "serving_lookup_failed"
    with pytest.raises(remote.RemoteError, match="does not exist"):
        remote.resolve_serving_version(stack_name="mlops-loop-nope-serving", model="churn", **kw)


def test_baseline_and_model_are_fetched_and_the_model_loads(aws, reference, tmp_path):
    arn = register(aws, reference, "run-1")
    aws.serving_stack(churn_arn=arn)
    serving = remote.resolve_serving_version(stack_name=STACK, model="churn", cloudformation=aws.cloudformation,
                                             sagemaker=aws.sagemaker)
    fetched = remote.fetch_baseline_and_model(serving, s3=aws.s3, baseline_dir=str(tmp_path / "b"), model_dir=str(tmp_path / "m"))
    assert fetched["errors"] == [] and fetched["notes"] == []
    assert sorted(os.listdir(tmp_path / "b")) == ["attributions.json", "constraints.json", "evaluation.json", "statistics.json"]
    assert json.loads((tmp_path / "b" / "statistics.json").read_text()) == reference["docs"]["statistics"]
    from pipeline_code.training.train import load_model
    assert load_model(str(tmp_path / "m")).metadata == reference["model"].metadata


def test_a_package_without_drift_check_baselines_falls_back_to_model_metrics_and_evaluation_is_optional(aws, reference, tmp_path):
    arn = register(aws, reference, "run-3", skip=("evaluation",), drift_check_baselines=False)
    aws.serving_stack(churn_arn=arn)
    serving = remote.resolve_serving_version(stack_name=STACK, model="churn", cloudformation=aws.cloudformation,
                                             sagemaker=aws.sagemaker)
    assert serving.statistics_uri == f"s3://{ARTIFACTS}/churn/run-3/baseline/statistics.json"
    fetched = remote.fetch_baseline_and_model(serving, s3=aws.s3, baseline_dir=str(tmp_path / "b"), model_dir=str(tmp_path / "m"))
    # a missing evaluation.json is a note (the monitor treats the evaluation as optional), not an error
    assert fetched["errors"] == [] and len(fetched["notes"]) == 1 and "evaluation.json" in fetched["notes"][0]
    assert sorted(os.listdir(tmp_path / "b")) == ["attributions.json", "constraints.json", "statistics.json"]


def test_a_model_archive_escaping_its_directory_is_refused(aws, reference, tmp_path):
    # GIVEN a registered model.tar.gz with a member that climbs out of the model directory
    evil = model_archive(reference["model_dir"], extra={"../escaped.txt": b"owned"})
    arn = register(aws, reference, "run-evil", archive=evil)
    aws.serving_stack(churn_arn=arn)
    serving = remote.resolve_serving_version(stack_name=STACK, model="churn", cloudformation=aws.cloudformation,
                                             sagemaker=aws.sagemaker)
    fetched = remote.fetch_baseline_and_model(serving, s3=aws.s3, baseline_dir=str(tmp_path / "b"), model_dir=str(tmp_path / "m"))
    # THEN nothing is extracted, nothing lands outside, and the failure is reported
    assert [e["kind"] for e in fetched["errors"]] == ["model_download_failed"] and "outside" in fetched["errors"][0]["message"]
    assert not (tmp_path / "escaped.txt").exists() and not any((tmp_path / "m").iterdir())


# ---------------------------------------------------------------- registered bytes
def _serving(aws, arn):
    aws.serving_stack(churn_arn=arn)
    return remote.resolve_serving_version(stack_name=STACK, model="churn", cloudformation=aws.cloudformation,
                                          sagemaker=aws.sagemaker)


def _rewritten(name: str, uri: str, actual: str, recorded: str, arn: str, where: str) -> str:
    bucket, _, key = uri[5:].partition("/")
    region = arn.split(":")[3]  # every AWS command a message gives names its region
    return (f"{name} at {uri} has sha256 {actual}, not the {recorded} that {arn} registered ({where}): it was "
            f"rewritten after registration, so the monitor does not use it. The registered bytes are kept as an older "
            f"version of the object: list them (aws s3api list-object-versions --bucket {bucket} --prefix {key} --region {region}), "
            f"find the one whose bytes have that sha256 (aws s3api get-object --bucket {bucket} --key {key} "
            f"--version-id <its id> --region {region} {name} && sha256sum {name}) and copy it back (aws s3api copy-object --bucket {bucket} "
            f"--key {key} --copy-source '{bucket}/{key}?versionId=<its id>' --region {region})")


def test_a_version_registered_with_digests_is_fetched_when_its_bytes_are_the_registered_ones(aws, reference, tmp_path):
    serving = _serving(aws, register(aws, reference, "run-1", digests=True))
    fetched = remote.fetch_baseline_and_model(serving, s3=aws.s3, baseline_dir=str(tmp_path / "b"), model_dir=str(tmp_path / "m"))
    assert fetched["errors"] == [] and fetched["notes"] == []
    assert sorted(os.listdir(tmp_path / "b")) == ["attributions.json", "constraints.json", "evaluation.json", "statistics.json"]
    assert sorted(fetched["verified"]) == ["attributions.json", "constraints.json", "evaluation.json", "model.tar.gz",
                                           "statistics.json"]
    assert sorted(os.listdir(tmp_path / "m")) == sorted(os.listdir(reference["model_dir"]))


def test_a_version_registered_before_attributions_were_digested_uses_them_unverified_and_stays_healthy(
        aws, spec, reference, tmp_path):
    """GIVEN a version registered with digests but no attributions_sha256 (registered before the pipeline recorded it)
    WHEN fetched THEN attributions.json is used as before, unverified, with no error or note; a scheduled run is not
    made unhealthy by it."""
    arn = register(aws, reference, "run-1", digests=True, attributions_digest=False)
    fetched = remote.fetch_baseline_and_model(_serving(aws, arn), s3=aws.s3, baseline_dir=str(tmp_path / "b"),
                                              model_dir=str(tmp_path / "m"))
    assert fetched["errors"] == [] and fetched["notes"] == [] and "attributions.json" in fetched["files"]
    assert "attributions.json" not in fetched["verified"] and "statistics.json" in fetched["verified"]
    upload_traffic(aws, spec, reference["model"], rows=300, seed=305)
    code = monitor.main(from_s3_args(spec, tmp_path / "run", "--publish-metrics"), cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path / "run")
    assert code == 0 and not [e for e in report["errors"] if e["kind"].endswith("digest_mismatch")], report["errors"]


@pytest.mark.parametrize("name, folder, where", [
    ("statistics.json", "baseline", "its DriftCheckBaselines ModelDataQuality.Statistics ContentDigest"),
    ("constraints.json", "baseline", "its DriftCheckBaselines ModelDataQuality.Constraints ContentDigest"),
    ("evaluation.json", "evaluation", "the evaluation_digest in its bias report, whose ContentDigest holds"),
    ("attributions.json", "baseline", "its attributions_sha256"),
])
def test_a_registered_document_rewritten_after_registration_is_not_used_and_says_how_to_restore_it(
        aws, reference, tmp_path, name, folder, where):
    """GIVEN the serving version's baseline or evaluation rewritten in S3 after registration (the reports are not
    write-once: an overwrite keeps the registered bytes as an old version) - e.g. constraints widened so that no drift
    ever fails WHEN the monitor fetches them THEN it does not compare with the rewritten document: an error names it,
    both digests and how to copy the registered bytes back; the other documents and the model are fetched."""
    arn = register(aws, reference, "run-1", digests=True)
    uri = f"s3://{ARTIFACTS}/churn/run-1/{folder}/{name}"
    recorded = hashlib.sha256(open(os.path.join(reference["baseline_dir"], name), "rb").read()).hexdigest()
    aws.put(uri, b'{"rewritten": true}')
    serving = _serving(aws, arn)
    fetched = remote.fetch_baseline_and_model(serving, s3=aws.s3, baseline_dir=str(tmp_path / "b"), model_dir=str(tmp_path / "m"))
    actual = hashlib.sha256(b'{"rewritten": true}').hexdigest()
    # An evaluation's error is confined to the model-quality section it is the reference of (the drift still counts).
    section = {"section": "model_quality"} if name == "evaluation.json" else {}
    assert fetched["errors"] == [{"kind": "baseline_digest_mismatch", **section,
                                  "message": _rewritten(name, uri, actual, recorded, arn, where)}]
    assert name not in os.listdir(tmp_path / "b") and name not in fetched["files"]
    assert len(os.listdir(tmp_path / "b")) == 3 and fetched["model"] is not None


def test_a_rewritten_bias_report_leaves_the_evaluation_unverified_and_unused(aws, reference, tmp_path):
    """GIVEN bias.json - which carries evaluation.json's digest - rewritten with the digest of a rewritten
    evaluation.json WHEN fetched THEN neither is trusted: bias.json's own ContentDigest fails first."""
    arn = register(aws, reference, "run-1", digests=True)
    evaluation, bias = (f"s3://{ARTIFACTS}/churn/run-1/evaluation/{n}" for n in ("evaluation.json", "bias.json"))
    recorded = hashlib.sha256(aws.s3.get_object(Bucket=ARTIFACTS, Key=bias[len(f"s3://{ARTIFACTS}/"):])["Body"].read()).hexdigest()
    forged_evaluation = b'{"challenger": {"metrics": {"auc": 0.5}}}'
    forged_bias = json.dumps({"evaluation_digest": "sha256:" + hashlib.sha256(forged_evaluation).hexdigest()}).encode()
    aws.put(evaluation, forged_evaluation)
    aws.put(bias, forged_bias)
    fetched = remote.fetch_baseline_and_model(_serving(aws, arn), s3=aws.s3, baseline_dir=str(tmp_path / "b"),
                                              model_dir=str(tmp_path / "m"))
    assert fetched["errors"] == [{"kind": "baseline_digest_mismatch", "section": "model_quality", "message": _rewritten(
        "bias.json", bias, hashlib.sha256(forged_bias).hexdigest(), recorded, arn,
        "its ModelMetrics Bias.Report ContentDigest") + "; evaluation.json, whose digest it carries, is not used either"}]
    assert "evaluation.json" not in os.listdir(tmp_path / "b")


def test_a_model_archive_that_is_not_the_registered_one_is_not_extracted(aws, reference, tmp_path):
    arn = register(aws, reference, "run-1", digests=True)
    uri = f"s3://{ARTIFACTS}/churn/run-1/model/model.tar.gz"
    recorded = aws.sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]["model_data_sha256"]
    other = model_archive(reference["model_dir"], extra={"code/extra.py": b"print('not reviewed')"})
    aws.put(uri, other)
    fetched = remote.fetch_baseline_and_model(_serving(aws, arn), s3=aws.s3, baseline_dir=str(tmp_path / "b"),
                                              model_dir=str(tmp_path / "m"))
    assert fetched["errors"] == [{"kind": "model_digest_mismatch", "message": (
        f"model.tar.gz at {uri} has sha256 {hashlib.sha256(other).hexdigest()}, not the {recorded} that {arn} "
        "registered (its model_data_sha256): the monitor does not load it. The deploy handler refuses this version "
        "for the same reason: re-approve a version whose archive holds (rollback), or re-run the pipeline")}]
    assert fetched["model"] is None and not (tmp_path / "m").exists()


def test_a_rewritten_baseline_makes_the_scheduled_run_unhealthy(aws, spec, reference, tmp_path):
    """GIVEN a drifted window and the serving version's statistics.json rewritten with a well-formed baseline of other
    rows (here the drifted traffic's own) WHEN the scheduled job runs THEN the report is unhealthy with the rewrite
    named, and MonitorHealthy pages people: the window is not judged against a baseline nobody registered."""
    arn = register(aws, reference, "run-1", digests=True)
    upload_traffic(aws, spec, reference["model"], rows=600, seed=304, drift=0.8)
    drifted = replay.traffic(spec, 600, seed=304, drift=0.8)
    forged = baseline.compute_baseline(spec, reference["model"], drifted, drifted, shap_sample_rows=300)["statistics"]
    aws.put(f"s3://{ARTIFACTS}/churn/run-1/baseline/statistics.json", json.dumps(forged).encode())
    aws.serving_stack(churn_arn=arn)
    code = monitor.main(from_s3_args(spec, tmp_path, "--publish-metrics"), cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    kinds = [e["kind"] for e in report["errors"]]
    assert code == 0 and report["status"] == "unhealthy" and "baseline_digest_mismatch" in kinds, kinds
    assert "baseline_missing" not in kinds, "the file left out was said once, with its cause"
    assert published(aws)["MonitorHealthy"] == 0.0


@pytest.mark.parametrize("rewritten", ["evaluation.json", "bias.json"])
def test_a_rewritten_evaluation_leaves_out_only_the_quality_reference_and_the_drift_still_counts(
        aws, spec, reference, tmp_path, rewritten):
    """GIVEN a drifted window and the serving version's evaluation.json (or bias.json, which carries its digest)
    rewritten after registration WHEN the scheduled job runs THEN the run is unhealthy (people are paged about the
    rewrite) but the window stays trusted: the evaluation is only the model-quality and bias reference, which the
    monitor does without when it is missing, so the drift it measured against the registered baselines is published
    and can start a retraining - a rewritten optional document must not silence the drift alarms."""
    arn = register(aws, reference, "run-1", digests=True)
    upload_traffic(aws, spec, reference["model"], rows=600, seed=304, drift=0.8)
    aws.put(f"s3://{ARTIFACTS}/churn/run-1/evaluation/{rewritten}", b'{"rewritten": true}')
    aws.serving_stack(churn_arn=arn)
    code = monitor.main(from_s3_args(spec, tmp_path, "--publish-metrics"), cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    assert code == 0 and report["status"] == "unhealthy" and report["trusted"], report["errors"]
    assert [(e["kind"], e.get("section")) for e in report["errors"]] == [("baseline_digest_mismatch", "model_quality")]
    metrics = published(aws)
    assert metrics["MonitorHealthy"] == 0.0 and metrics["DataDriftMaxPsi"] > 0.2, metrics


# ---------------------------------------------------------------- windows
def test_window_selects_objects_by_last_modified(aws, tmp_path):
    # GIVEN capture files of several ages (the window is [NOW - 24 h, NOW))
    ages = {"a/AllTraffic/2026/11/26/08/new.jsonl": 1, "a/AllTraffic/2026/11/25/09/edge.jsonl": 24,
            "a/AllTraffic/2026/11/25/08/old.jsonl": 25, "a/AllTraffic/2026/11/26/09/later.jsonl": 0}
    for key, hours in ages.items():
        aws.put(CAPTURE_URI + key, b"{}\n", age_hours=hours)
    aws.put(f"s3://{INFERENCE}/capture/churn-v2/x.jsonl", b"{}\n", age_hours=1)  # a sibling prefix, not this model
    # WHEN the window is downloaded
    summary = remote.download_window(s3=aws.s3, dest_dir=str(tmp_path / "c"), capture_s3_uri=CAPTURE_URI.rstrip("/"),
                                     window_hours=24, now=NOW)
    # THEN exactly the objects modified in [NOW - 24 h, NOW) arrive, at their relative paths
    got = sorted(os.path.relpath(os.path.join(d, f), tmp_path / "c") for d, _, fs in os.walk(tmp_path / "c") for f in fs)
    assert got == ["a/AllTraffic/2026/11/25/09/edge.jsonl", "a/AllTraffic/2026/11/26/08/new.jsonl"]
    assert (summary["listed_objects"], summary["in_window_objects"], summary["downloaded_objects"]) == (4, 2, 2)
    assert summary["truncated"] is False and summary["window_start"] == (NOW - dt.timedelta(hours=24)).isoformat()


def test_a_window_over_the_byte_cap_keeps_the_newest_objects_and_says_so(aws, tmp_path):
    for hours in (1, 2, 3):
        aws.put(f"{CAPTURE_URI}e/v/{hours}.jsonl", b"x" * 100, age_hours=hours)
    summary = remote.download_window(s3=aws.s3, dest_dir=str(tmp_path / "c"), capture_s3_uri=CAPTURE_URI, max_bytes=250, now=NOW)
    assert sorted(os.listdir(tmp_path / "c" / "e" / "v")) == ["1.jsonl", "2.jsonl"]
    assert summary["truncated"] and (summary["skipped_objects"], summary["skipped_bytes"], summary["downloaded_bytes"]) == (1, 100, 200)
    assert summary["oldest_downloaded"] == (NOW - dt.timedelta(hours=2)).isoformat()
    [note] = remote._window_checks("capture", summary)
    assert note["status"] == "warn" and note["check"] == "capture_window_truncated" and "--max-window-bytes" in note["detail"]


def test_keys_that_would_leave_the_download_directory_are_skipped(aws, tmp_path):
    aws.put(f"{CAPTURE_URI}e/v/../../../../escaped.jsonl", b"{}\n", age_hours=1)
    aws.put(f"{CAPTURE_URI}e/v/ok.jsonl", b"{}\n", age_hours=1)
    summary = remote.download_window(s3=aws.s3, dest_dir=str(tmp_path / "sub" / "c"), capture_s3_uri=CAPTURE_URI, now=NOW)
    assert summary["downloaded_objects"] == 1 and len(summary["unsafe_keys"]) == 1
    assert not any(p.name == "escaped.jsonl" for p in tmp_path.rglob("*"))


def test_batch_outputs_of_the_window_are_paired_with_their_inputs_for_the_capture_reader(aws, spec, tmp_path):
    # GIVEN inputs that stay in place (old) and two transform runs; only run-2 is in the window
    row = "12,50.0,600.0,50.0,0.69,month-to-month,card,north\n3,20,60,20,0,one-year,,south\n"
    aws.put(f"{BATCH_URI}input/part-0.csv", row.encode(), age_hours=24 * 10)
    aws.put(f"{BATCH_URI}output/run-1/part-0.csv.out", b"0.1\n0.2\n", age_hours=30)
    aws.put(f"{BATCH_URI}output/run-2/part-0.csv.out", b"0.7\n0.1\n", age_hours=2)
    aws.put(f"{BATCH_URI}output/run-2/deleted.csv.out", b"0.5\n", age_hours=2)
    summary = remote.download_window(s3=aws.s3, dest_dir=str(tmp_path / "c"), batch_s3_uri=BATCH_URI, now=NOW)
    assert sorted(os.listdir(tmp_path / "c" / "batch" / "run-2")) == ["part-0.csv", "part-0.csv.out"]
    assert not (tmp_path / "c" / "batch" / "run-1").exists() and summary["unpaired_batch_outputs"] == 1
    # THEN the capture reader pairs them: two records scored by run-2's output
    w = capture.read_capture(str(tmp_path / "c"), spec.features, categorical=["contract_type", "payment_method", "region"])
    assert w.records == 2 and w.malformed == 0 and w.files["batch_input"] == 1
    assert sorted(w.frame[capture.SCORE].tolist()) == [0.1, 0.7]


def test_batch_outputs_of_another_version_are_left_out_with_a_note_naming_the_versions(aws, spec, tmp_path):
    """GIVEN version 8 serving, and in the window a run version 8 scored (output/v8/<run>/), a run version 7 scored
    (it ran while, or just before, 8 was approved) and a run of the layout before versions (output/<run>/) WHEN the
    window is downloaded for version 8 THEN version 7's outputs are left out (the model judged is not the one that
    answered them), counted per version and noted; the unversioned run is judged as before, and said to be."""
    row = "12,50.0,600.0,50.0,0.69,month-to-month,card,north\n3,20,60,20,0,one-year,,south\n"
    aws.put(f"{BATCH_URI}input/part-0.csv", row.encode(), age_hours=24 * 10)
    aws.put(f"{BATCH_URI}output/v8/run-3/part-0.csv.out", b"0.7\n0.1\n", age_hours=1)
    aws.put(f"{BATCH_URI}output/v7/run-2/part-0.csv.out", b"0.9\n0.9\n", age_hours=3)
    aws.put(f"{BATCH_URI}output/v7/run-1/part-0.csv.out", b"0.9\n0.9\n", age_hours=5)
    aws.put(f"{BATCH_URI}output/run-0/part-0.csv.out", b"0.2\n0.3\n", age_hours=6)
    summary = remote.download_window(s3=aws.s3, dest_dir=str(tmp_path / "c"), batch_s3_uri=BATCH_URI, serving_version=8,
                                     now=NOW)
    assert sorted(os.listdir(tmp_path / "c" / "batch")) == ["run-0", "run-3"]
    assert sorted(os.listdir(tmp_path / "c" / "batch" / "run-3")) == ["part-0.csv", "part-0.csv.out"]
    assert summary["other_version_batch_outputs"] == {"7": 2} and summary["unversioned_batch_outputs"] == 1
    notes = {c["check"]: c for c in remote._window_checks("capture", summary)}
    assert notes["capture_other_version_batch_outputs"]["status"] == "warn"
    assert notes["capture_other_version_batch_outputs"]["detail"] == (
        "2 batch outputs scored by another version than the serving one (version 7: 2) were left out: their scores are "
        "not this version's (a version approved while or after they ran)")
    assert notes["capture_unversioned_batch_outputs"]["detail"] == (
        "1 batch outputs under output/<run>/ (written before outputs named their version, output/v<version>/<run>/) "
        "were judged as the serving version's")
    w = capture.read_capture(str(tmp_path / "c"), spec.features, categorical=["contract_type", "payment_method", "region"])
    assert sorted(w.frame[capture.SCORE].tolist()) == [0.1, 0.2, 0.3, 0.7]


def test_an_unversioned_output_whose_input_is_gone_is_counted_unpaired_not_judged(aws, tmp_path):
    """The unversioned note says its outputs were judged: one whose input was moved away was not read at all."""
    aws.put(f"{BATCH_URI}input/part-0.csv", b"1\n", age_hours=24)
    aws.put(f"{BATCH_URI}output/run-0/part-0.csv.out", b"0.2\n", age_hours=2)
    aws.put(f"{BATCH_URI}output/run-0/part-9.csv.out", b"0.3\n", age_hours=2)  # its input archived
    summary = remote.download_window(s3=aws.s3, dest_dir=str(tmp_path / "c"), batch_s3_uri=BATCH_URI, serving_version=8,
                                     now=NOW)
    assert (summary["unversioned_batch_outputs"], summary["unpaired_batch_outputs"]) == (1, 1)


def test_without_a_serving_version_every_batch_output_is_judged(aws, tmp_path):
    aws.put(f"{BATCH_URI}input/part-0.csv", b"1\n", age_hours=24)
    aws.put(f"{BATCH_URI}output/v7/run-1/part-0.csv.out", b"0.9\n", age_hours=1)
    summary = remote.download_window(s3=aws.s3, dest_dir=str(tmp_path / "c"), batch_s3_uri=BATCH_URI, now=NOW)
    assert os.listdir(tmp_path / "c" / "batch") == ["run-1"] and summary["other_version_batch_outputs"] == {}


def test_the_scheduled_monitor_judges_only_the_serving_versions_batch_outputs(aws, spec, reference, tmp_path):
    """GIVEN a batch model whose version 1 serves, and last night's outputs of version 1 and of version 2 (approved,
    then rolled back by re-approving 1) WHEN the scheduled monitor runs THEN it judges version 1's records only and
    the report notes version 2's outputs it left out."""
    arn = register(aws, reference, "run-1")
    aws.serving_stack(churn_arn=arn)
    version = int(arn.rsplit("/", 1)[1])
    rows = "12,50.0,600.0,50.0,0.69,month-to-month,card,north\n" * 20
    aws.put(f"{BATCH_URI}input/part-0.csv", rows.encode(), age_hours=24 * 10)
    aws.put(f"{BATCH_URI}input/part-1.csv", rows.encode(), age_hours=24 * 10)
    aws.put(f"{BATCH_URI}output/v{version}/run-2/part-0.csv.out", b"0.7\n" * 20)  # written now: in the window
    aws.put(f"{BATCH_URI}output/v{version + 1}/run-2/part-1.csv.out", b"0.7\n" * 20)
    args = from_s3_args(spec, tmp_path, "--batch-s3-uri", BATCH_URI)
    del args[args.index("--capture-s3-uri"):args.index("--capture-s3-uri") + 2]
    monitor.main(args, cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    assert report["sections"]["capture"]["records"] == 20
    assert report["sections"]["remote"]["capture"]["other_version_batch_outputs"] == {str(version + 1): 1}
    assert check(report, "capture_other_version_batch_outputs")["status"] == "warn"


def test_a_batch_run_whose_newest_pair_alone_is_over_the_cap_is_unhealthy_not_quiet(aws, spec, reference, tmp_path):
    # GIVEN a batch model serving and last night's run: one input file scored into one output, together over the cap
    # (a nightly 30M-row input in one file is ~10 GB against the default 2 GiB)
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    rows = 400
    aws.put(f"{BATCH_URI}input/part-0.csv", b"12,50.0,600.0,50.0,0.69,month-to-month,card,north\n" * rows, age_hours=24 * 10)
    aws.put(f"{BATCH_URI}output/run-2/part-0.csv.out", b"0.7\n" * rows)  # written now: in the window
    args = from_s3_args(spec, tmp_path, "--publish-metrics", "--batch-s3-uri", BATCH_URI, "--max-window-bytes", "1000")
    del args[args.index("--capture-s3-uri"):args.index("--capture-s3-uri") + 2]
    # WHEN the scheduled monitor runs
    code = monitor.main(args, cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    # THEN the night's scores are not reported as a quiet day: the report is unhealthy (its alarm pages) and says
    # what was left unread, how large it is and what to change
    pair_bytes = 50 * rows + 4 * rows
    assert code == 0 and report["status"] == "unhealthy" and not report["healthy"]
    assert published(aws)["MonitorHealthy"] == 0.0
    errors = {e["kind"]: e["message"] for e in report["errors"]}
    assert errors["capture_window_unread"] == (
        f"{BATCH_URI}: none of the window's traffic was read: its newest object (a batch input with its output, "
        f"{pair_bytes} bytes) alone is over the download cap of 1000 bytes; raise models.churn.monitor_max_window_gib "
        "(the job's --max-window-bytes) above it, or split the transform input into smaller files")
    summary = report["sections"]["remote"]["capture"]
    assert (summary["downloaded_objects"], summary["skipped_objects"], summary["skipped_bytes"]) == (0, 2, pair_bytes)


def test_a_window_cut_to_nothing_says_so_rather_than_naming_no_time(aws, tmp_path):
    aws.put(f"{CAPTURE_URI}e/v/big.jsonl", b"x" * 300, age_hours=1)
    summary = remote.download_window(s3=aws.s3, dest_dir=str(tmp_path / "c"), capture_s3_uri=CAPTURE_URI, max_bytes=250, now=NOW)
    assert summary["oldest_downloaded"] is None and summary["unread_newest_bytes"] == 300
    [note] = remote._window_checks("capture", summary)
    assert note["status"] == "warn" and "None" not in note["detail"]
    assert note["detail"].startswith("none of the window's 1 objects (300 bytes) was read")


def test_labels_of_the_label_window_are_downloaded(aws, tmp_path):
    aws.put(f"{LABELS_URI}2026/11/22/a.csv", b"inference_id,label\n1,0\n", age_hours=100)
    aws.put(f"{LABELS_URI}2026/11/17/b.csv", b"inference_id,label\n2,1\n", age_hours=200)
    summary = remote.download_recent(s3=aws.s3, s3_uri=LABELS_URI, flag="--labels-s3-uri", dest_dir=str(tmp_path / "l"),
                                     window_hours=168, now=NOW)
    assert os.listdir(tmp_path / "l" / "2026" / "11") == ["22"] and summary["downloaded_objects"] == 1


# ---------------------------------------------------------------- the monitor in --from-s3 mode
def test_nothing_serving_writes_a_healthy_not_serving_report_and_no_drift_metrics(aws, spec, reference, tmp_path):
    aws.serving_stack(churn_arn="")
    upload_traffic(aws, spec, reference["model"], rows=50, seed=1)
    code = monitor.main(from_s3_args(spec, tmp_path, "--publish-metrics"), cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    assert code == 0 and report["status"] == "not_serving" and report["healthy"] and report["note"] == "NotServing"
    assert report["errors"] == [] and "ChurnModelPackageArn" in report["sections"]["remote"]["serving"]["detail"]
    assert published(aws) == {"MonitorHealthy": 1.0, "MonitoringErrors": 0.0}
    assert not (tmp_path / "in" / "capture").exists()  # nothing is downloaded for a model that does not serve
    assert "NOT_SERVING" in (tmp_path / "out" / "report.html").read_text()


def test_a_drifted_window_from_s3_is_detected_end_to_end(aws, spec, reference, tmp_path):
    # GIVEN v1 serving, a drifted window of real traffic with labels, and an old corrupt file outside the window
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    upload_traffic(aws, spec, reference["model"], rows=2000, seed=301, drift=0.8, labels=True)
    aws.put(f"{CAPTURE_URI}mlops-loop-dev-churn/AllTraffic/2026/11/20/08/old.jsonl", b"{not json\n")
    aws.age(f"{CAPTURE_URI}mlops-loop-dev-churn/AllTraffic/2026/11/20/08/old.jsonl",
            dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=72))
    # WHEN the scheduled job runs with nothing but its arguments
    code = monitor.main(from_s3_args(spec, tmp_path, "--labels-s3-uri", LABELS_URI, "--publish-metrics"),
                        cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    # THEN the drift is found on the window's 2000 records (the old file was not read), quality is scored
    assert code == 0 and report["healthy"] and report["status"] == "alert", report["errors"]
    assert report["summary"]["records"] == 2000 and report["summary"]["malformed_records"] == 0
    assert {"monthly_charges", "log_support_calls_90d"} <= set(report["sections"]["data_drift"]["drifted_features"])
    assert check(report, "prediction_psi")["status"] == "fail"
    assert report["summary"]["label_coverage"] == pytest.approx(1.0)
    assert report["baseline"]["found"] == {"statistics": True, "constraints": True, "attributions": True}
    assert report["baseline"]["evaluation_found"] and report["summary"]["auc_drop"] is not None
    remote_section = report["sections"]["remote"]
    assert remote_section["serving"]["version"] == 1 and remote_section["capture"]["in_window_objects"] == 1
    metrics = published(aws)
    assert metrics["MonitorHealthy"] == 1.0 and metrics["DataDriftMaxPsi"] > 0.2 and metrics["DriftedFeatureCount"] >= 2


def test_a_missing_baseline_object_gives_an_unhealthy_report_not_a_crash(aws, spec, reference, tmp_path):
    aws.serving_stack(churn_arn=register(aws, reference, "run-1", skip=("attributions",)))
    upload_traffic(aws, spec, reference["model"], rows=300, seed=302)
    code = monitor.main(from_s3_args(spec, tmp_path, "--publish-metrics"), cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    assert code == 0 and report["status"] == "unhealthy" and report["summary"]["monitor_healthy"] == 0
    errors = {e["kind"]: e["message"] for e in report["errors"]}
    assert "attributions.json" in errors["baseline_download_failed"]
    # Said once, with its cause: not again as "not found" in the local directory the download never filled.
    assert "baseline_missing" not in errors
    assert report["summary"]["records"] == 300 and "data_drift" in report["sections"]  # the rest still ran
    assert published(aws)["MonitorHealthy"] == 0.0


def test_labels_or_history_that_fail_to_download_leave_the_windows_drift_judged_and_published(aws, spec, reference, tmp_path):
    """GIVEN a drifted window whose labels and earlier reports cannot be downloaded (a bucket that does not exist)
    WHEN the scheduled job runs THEN health pages people, model quality and the slow-drift detector are left out (its
    state is unknown: not restarted), and the window's drift is still published for the retrain alarms."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    upload_traffic(aws, spec, reference["model"], rows=600, seed=303, drift=0.8)
    code = monitor.main(from_s3_args(spec, tmp_path, "--labels-s3-uri", "s3://no-such-bucket-anywhere/labels/",
                                     "--history-s3-uri", "s3://no-such-bucket-anywhere/monitor/churn/",
                                     "--history-dir", str(tmp_path / "in" / "history"), "--publish-metrics"),
                        cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    sections = {e["kind"]: e.get("section") for e in report["errors"]}
    assert code == 0 and sections == {"labels_download_failed": "model_quality", "history_download_failed": "cumulative_drift"}
    assert report["trusted"] and not report["healthy"] and "cumulative_drift" not in report["sections"]
    metrics = published(aws)
    assert metrics["MonitorHealthy"] == 0.0 and metrics["DataDriftMaxPsi"] > 0.2


def test_s3_and_api_failures_are_reported_as_unhealthy(aws, spec, reference, tmp_path):
    # GIVEN no serving stack at all and a capture bucket that does not exist
    args = from_s3_args(spec, tmp_path, "--publish-metrics")
    args[args.index("--capture-s3-uri") + 1] = "s3://no-such-bucket-anywhere/capture/churn/"
    code = monitor.main(args, cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    kinds = {e["kind"] for e in report["errors"]}
    assert code == 0 and {"serving_lookup_failed", "capture_download_failed", "baseline_missing"} <= kinds
    assert report["status"] == "unhealthy"  # an empty window after a failed download is not a quiet day
    assert "NoSuchBucket" in next(e["message"] for e in report["errors"] if e["kind"] == "capture_download_failed")
    assert published(aws)["MonitorHealthy"] == 0.0


@pytest.mark.parametrize("change, message", [
    (("--serving-stack", None), "--serving-stack"),
    (("--capture-s3-uri", "capture/churn/"), "--capture-s3-uri must look like s3://"),
    (("--labels-s3-uri", "http://x/labels/"), "--labels-s3-uri must look like s3://"),
])
def test_invalid_from_s3_arguments_exit_2_with_the_flag_named(spec, tmp_path, capsys, change, message):
    args = from_s3_args(spec, tmp_path)
    flag, value = change
    if flag in args:
        i = args.index(flag)
        del args[i:i + 2]
    if value is not None:
        args += [flag, value]
    with pytest.raises(SystemExit) as exc:
        monitor.main(args)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_non_empty_download_directory_is_refused(spec, tmp_path, capsys):
    (tmp_path / "in" / "capture").mkdir(parents=True)
    (tmp_path / "in" / "capture" / "stale.jsonl").write_text("{}\n")
    with pytest.raises(SystemExit) as exc:
        monitor.main(from_s3_args(spec, tmp_path))
    assert exc.value.code == 2 and "--capture-dir" in capsys.readouterr().err


def test_cli_defaults_match_the_documented_remote_defaults():
    parser = monitor.build_parser()
    defaults = {a.dest: a.default for a in parser._actions}
    assert defaults["window_hours"] == remote.DEFAULT_WINDOW_HOURS
    assert defaults["label_window_hours"] == remote.DEFAULT_LABEL_WINDOW_HOURS
    assert defaults["max_window_bytes"] == remote.DEFAULT_MAX_WINDOW_BYTES


def test_the_newest_earlier_reports_are_downloaded_as_the_history(aws, tmp_path):
    history_uri = f"s3://{INFERENCE}/monitor/churn/"
    for run in range(35):
        aws.put(f"{history_uri}run-{run:02d}/report.json", b"{}", age_hours=24 * (35 - run))
        aws.put(f"{history_uri}run-{run:02d}/report.html", b"<html></html>", age_hours=24 * (35 - run))
    summary = remote.download_history(s3=aws.s3, history_s3_uri=history_uri, dest_dir=str(tmp_path / "h"))
    # the 30 newest report.json files, nothing else
    assert summary["reports_listed"] == 35 and summary["reports_downloaded"] == 30
    assert sorted(os.listdir(tmp_path / "h")) == [f"run-{run:02d}" for run in range(5, 35)]
    assert os.listdir(tmp_path / "h" / "run-34") == ["report.json"]


# ---------------------------------------------------------------- feature snapshots (the skew check of by-id models)
SNAPSHOTS_URI = f"s3://{ARTIFACTS}/snapshots/customer_churn/"


def test_feature_snapshots_of_the_label_window_are_downloaded(aws, tmp_path):
    # GIVEN snapshot files of several ages (the window is [NOW - 168 h, NOW)) and a sibling dataset's prefix
    ages = {"2026/11/26/part-new.parquet": 1, "2026/11/19/part-edge.parquet": 168, "2026/11/19/part-old.parquet": 169,
            "2026/11/26/part-later.parquet": 0}
    for key, hours in ages.items():
        aws.put(SNAPSHOTS_URI + key, b"PAR1", age_hours=hours)
    aws.put(f"s3://{ARTIFACTS}/snapshots/customer_churn-v2/part-0.parquet", b"PAR1", age_hours=1)
    # WHEN they are downloaded as the monitor does for --feature-snapshots-s3-uri
    summary = remote.download_recent(s3=aws.s3, s3_uri=SNAPSHOTS_URI.rstrip("/"), flag="--feature-snapshots-s3-uri",
                                     dest_dir=str(tmp_path / "s"), window_hours=168, now=NOW)
    # THEN exactly the objects modified in [NOW - 168 h, NOW) arrive, at their paths under the prefix
    got = sorted(os.path.relpath(os.path.join(d, f), tmp_path / "s") for d, _, fs in os.walk(tmp_path / "s") for f in fs)
    assert got == ["2026/11/19/part-edge.parquet", "2026/11/26/part-new.parquet"]
    assert (summary["listed_objects"], summary["in_window_objects"], summary["downloaded_objects"]) == (4, 2, 2)
    assert summary["source"] == SNAPSHOTS_URI.rstrip("/") and summary["downloaded_bytes"] == 8 and summary["truncated"] is False
    assert summary["window_start"] == (NOW - dt.timedelta(hours=168)).isoformat() and summary["window_end"] == NOW.isoformat()


def test_a_malformed_uri_given_to_download_recent_names_its_flag(aws, tmp_path):
    with pytest.raises(ValueError) as exc:
        remote.download_recent(s3=aws.s3, s3_uri="snapshots/customer_churn/", flag="--feature-snapshots-s3-uri",
                               dest_dir=str(tmp_path / "s"), now=NOW)
    assert str(exc.value) == "--feature-snapshots-s3-uri must look like s3://<bucket>/<prefix>/, got 'snapshots/customer_churn/'"


def _parsed(spec, tmp_path, *extra: str):
    return monitor.build_parser().parse_args(from_s3_args(spec, tmp_path, *extra))


def test_the_snapshots_dir_defaults_to_snapshots_next_to_the_capture_dir(spec, tmp_path):
    args = _parsed(spec, tmp_path, "--feature-snapshots-s3-uri", SNAPSHOTS_URI)
    assert remote.check_arguments(args) is None
    assert args.feature_snapshots_dir == os.path.join(str(tmp_path / "in"), "snapshots")
    # an explicit directory is kept; without the URI no directory is filled in (no skew check)
    args = _parsed(spec, tmp_path, "--feature-snapshots-s3-uri", SNAPSHOTS_URI, "--feature-snapshots-dir", str(tmp_path / "mine"))
    assert remote.check_arguments(args) is None and args.feature_snapshots_dir == str(tmp_path / "mine")
    args = _parsed(spec, tmp_path)
    assert remote.check_arguments(args) is None and args.feature_snapshots_dir is None


def test_a_non_empty_snapshots_dir_is_refused(spec, tmp_path, capsys):
    snapshots = tmp_path / "in" / "snapshots"
    snapshots.mkdir(parents=True)
    (snapshots / "part-0.parquet").write_bytes(b"PAR1")
    args = _parsed(spec, tmp_path, "--feature-snapshots-s3-uri", SNAPSHOTS_URI)
    expected = (f"--feature-snapshots-dir {str(snapshots)!r} is not empty: --from-s3 downloads into it; "
                "give an empty or new directory")
    assert remote.check_arguments(args) == expected
    with pytest.raises(SystemExit) as exc:
        monitor.main(from_s3_args(spec, tmp_path, "--feature-snapshots-s3-uri", SNAPSHOTS_URI))
    assert exc.value.code == 2 and expected in capsys.readouterr().err
    # without --feature-snapshots-s3-uri nothing is downloaded into it, so it is not checked
    assert remote.check_arguments(_parsed(spec, tmp_path, "--feature-snapshots-dir", str(snapshots))) is None


@pytest.mark.parametrize("uri", ["snapshots/customer_churn/", "s3:///snapshots/", "https://bucket/snapshots/"])
def test_a_malformed_snapshots_uri_is_refused_with_the_flag_named(spec, tmp_path, capsys, uri):
    expected = f"--feature-snapshots-s3-uri must look like s3://<bucket>/<prefix>/, got {uri!r}"
    assert remote.check_arguments(_parsed(spec, tmp_path, "--feature-snapshots-s3-uri", uri)) == expected
    with pytest.raises(SystemExit) as exc:
        monitor.main(from_s3_args(spec, tmp_path, "--feature-snapshots-s3-uri", uri))
    assert exc.value.code == 2 and expected in capsys.readouterr().err


def test_prepare_inputs_downloads_the_snapshots_into_the_snapshots_dir(aws, spec, tmp_path):
    # GIVEN no serving stack (the lookup fails, the downloads still run) and one snapshot in the window, one before it
    aws.put(f"{SNAPSHOTS_URI}2026/11/25/part-0.parquet", b"PAR1-new", age_hours=20)
    aws.put(f"{SNAPSHOTS_URI}2026/10/01/part-0.parquet", b"PAR1-old", age_hours=24 * 50)
    args = _parsed(spec, tmp_path, "--feature-snapshots-s3-uri", SNAPSHOTS_URI)
    assert remote.check_arguments(args) is None
    preflight = remote.prepare_inputs(args, aws=aws.clients, now=NOW)
    assert [e["kind"] for e in preflight.errors] == ["serving_lookup_failed"]
    assert (tmp_path / "in" / "snapshots" / "2026" / "11" / "25" / "part-0.parquet").read_bytes() == b"PAR1-new"
    assert not (tmp_path / "in" / "snapshots" / "2026" / "10").exists()
    section = preflight.section["feature_snapshots"]
    assert (section["source"], section["listed_objects"], section["downloaded_objects"]) == (SNAPSHOTS_URI, 2, 1)


def test_a_failed_snapshots_download_is_a_report_error_not_a_crash(aws, spec, tmp_path):
    # GIVEN a snapshots bucket that does not exist
    uri = "s3://no-such-bucket-anywhere/snapshots/customer_churn/"
    args = _parsed(spec, tmp_path, "--feature-snapshots-s3-uri", uri)
    assert remote.check_arguments(args) is None
    preflight = remote.prepare_inputs(args, aws=aws.clients, now=NOW)
    # THEN the failure is an error of its own kind naming the URI and the cause; the other downloads still ran
    [error] = [e for e in preflight.errors if e["kind"] == "snapshots_download_failed"]
    assert error["message"].startswith(f"{uri}: ") and "NoSuchBucket" in error["message"]
    assert "feature_snapshots" not in preflight.section and "capture" in preflight.section
    assert {e["kind"] for e in preflight.errors} == {"serving_lookup_failed", "snapshots_download_failed"}


def test_a_from_s3_run_whose_snapshots_fail_to_download_writes_an_unhealthy_report(aws, spec, reference, tmp_path):
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    upload_traffic(aws, spec, reference["model"], rows=300, seed=303)
    uri = "s3://no-such-bucket-anywhere/snapshots/customer_churn/"
    code = monitor.main(from_s3_args(spec, tmp_path, "--feature-snapshots-s3-uri", uri, "--publish-metrics"),
                        cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    assert code == 0 and report["status"] == "unhealthy"
    assert [e["kind"] for e in report["errors"]] == ["snapshots_download_failed"]
    # the window holds no by-id request: the skew check has nothing to compare (and reads no snapshot)
    assert report["sections"]["feature_skew"]["status"] == "skipped" and report["summary"]["feature_skew_rate"] is None
    assert report["thresholds"]["max_skew_rate"] == 0.01 and report["summary"]["records"] == 300
    assert published(aws)["MonitorHealthy"] == 0.0


@pytest.mark.parametrize("scored_by_id", [False, True])
def test_a_not_serving_report_lists_the_skew_rate_only_for_a_model_scored_by_id(aws, spec, tmp_path, scored_by_id):
    aws.serving_stack(churn_arn="")
    extra = ["--feature-snapshots-s3-uri", SNAPSHOTS_URI] if scored_by_id else []
    assert monitor.main(from_s3_args(spec, tmp_path, *extra), cloudwatch_client=aws.cloudwatch) == 0
    summary = read_report(tmp_path)["summary"]
    assert ("feature_skew_rate" in summary) is scored_by_id
    assert summary.get("feature_skew_rate") is None
