"""The local model registry: groups, versions, approval status, champion, experiment log."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline_code.core import integrity
from mlops_cli.local.registry import APPROVED, PENDING, REJECTED, LocalRegistry, RegistryError


def _model_dir(root, name: str) -> str:
    """A trained model's directory as the registry sees it: the files it copies in (their content is opaque to it)."""
    directory = root / name
    directory.mkdir()
    (directory / "model.json").write_text(json.dumps({"learner": name}))
    (directory / "feature_metadata.json").write_text("{}")
    return str(directory)


@pytest.fixture()
def strong_model(tmp_path_factory) -> str:
    return _model_dir(tmp_path_factory.mktemp("models"), "strong")


@pytest.fixture()
def weak_model(tmp_path_factory) -> str:
    return _model_dir(tmp_path_factory.mktemp("models"), "weak")


def test_given_registered_versions_then_the_latest_approved_is_the_champion(strong_model, weak_model, tmp_path):
    registry = LocalRegistry(str(tmp_path / "registry"))
    assert registry.latest_approved("churn") is None
    v1 = registry.register("churn", strong_model, evaluation={"gate": {"passed": True}}, lineage={"run_id": "a"})
    v2 = registry.register("churn", weak_model, lineage={"run_id": "b"})
    assert (v1.version, v2.version) == (1, 2)
    assert v1.status == PENDING and registry.latest_approved("churn") is None

    registry.approve("churn", 1, by="tester", comment="good")
    assert registry.latest_approved("churn").version == 1
    registry.approve("churn", 2)
    assert registry.latest_approved("churn").version == 2
    registry.reject("churn", 2, comment="regression found in review")
    champion = registry.latest_approved("churn")
    assert champion.version == 1
    copied = tmp_path / "registry" / "groups" / "churn" / "versions" / "1" / "model" / "model.json"
    assert json.loads(copied.read_text()) == {"learner": "strong"}
    assert champion.evaluation() == {"gate": {"passed": True}}
    history = registry.get("churn", 2).record["approval_history"]
    assert [h["status"] for h in history] == [PENDING, APPROVED, REJECTED]
    assert registry.groups() == ["churn"]


def test_invalid_operations_raise(strong_model, tmp_path):
    registry = LocalRegistry(str(tmp_path))
    with pytest.raises(RegistryError, match="no version 3"):
        registry.approve("churn", 3)
    registry.register("churn", strong_model)
    with pytest.raises(RegistryError, match="unknown status"):
        registry.set_status("churn", 1, "Deployed")
    with pytest.raises(RegistryError, match="no model.json"):
        registry.register("churn", str(tmp_path))


def test_runs_are_logged_for_comparison(tmp_path):
    registry = LocalRegistry(str(tmp_path))
    registry.log_run({"run_id": "r1", "group": "churn", "version": 1, "gate_passed": True, "metrics": {"auc": 0.81}})
    registry.log_run({"run_id": "r2", "group": "churn", "version": None, "gate_passed": False, "metrics": {"auc": 0.77}})
    registry.log_run({"run_id": "r3", "group": "credit-risk", "metrics": {"auc": 0.7}})
    rows = registry.compare_runs("churn")
    assert [(r["run_id"], r["auc"], r["gate_passed"]) for r in rows] == [("r1", 0.81, True), ("r2", 0.77, False)]
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all("logged_at" in json.loads(line) for line in lines)


def test_after_a_local_rollback_the_re_approved_earlier_version_is_the_champion(strong_model, weak_model, tmp_path):
    """GIVEN v1 and v2 Approved WHEN v1 is re-approved (a rollback, as in the Model Registry)
    THEN v1 is the champion - the Model Registry's rule (approved last), not the highest Approved number."""
    registry = LocalRegistry(str(tmp_path / "registry"))
    registry.register("churn", strong_model)
    registry.register("churn", weak_model)
    registry.approve("churn", 1)
    registry.approve("churn", 2)
    assert registry.latest_approved("churn").version == 2
    registry.set_status("churn", 1, PENDING, comment="rollback to v1 (step 1 of 2)")
    registry.approve("churn", 1, comment="rollback to v1")
    assert registry.latest_approved("churn").version == 1
    assert registry.get("churn", 2).status == APPROVED  # untouched, as the rollback command leaves it


def test_versions_approved_at_the_same_time_go_to_the_higher_number(strong_model, weak_model, tmp_path, monkeypatch):
    from mlops_cli.local import registry as module

    monkeypatch.setattr(module, "_now", lambda: "2026-12-01T09:00:00+00:00")
    registry = LocalRegistry(str(tmp_path / "registry"))
    for model in (strong_model, weak_model, strong_model):
        registry.register("churn", model)
    for version in (3, 1, 2):
        registry.approve("churn", version)
    assert registry.latest_approved("churn").version == 3


def test_a_registered_version_records_the_digest_of_its_copied_model(strong_model, tmp_path):
    from pipeline_code.core import integrity

    registry = LocalRegistry(str(tmp_path / "registry"))
    version = registry.register("churn", strong_model)
    assert version.model_sha256 == integrity.model_digest(strong_model)
    assert registry.get("churn", 1).record["model_sha256"] == version.model_sha256
    assert integrity.model_digest(version.model_dir) == version.model_sha256
    # ... and the content digest a later version trained alike shares, as the pipeline registers it.
    assert registry.get("churn", 1).record["model_content_sha256"] == integrity.model_content_digest(strong_model)


def test_a_versions_evidence_is_recorded_from_the_jobs_digests_and_a_rewrite_is_named(strong_model, tmp_path):
    """GIVEN an evaluation output with the job's digests.json, registered as an artifact WHEN a report in the version
    is rewritten later THEN the version names the file and both digests (as the audit does for a package in AWS)."""
    out = tmp_path / "evaluation"
    out.mkdir()
    (out / "evaluation.json").write_text('{"gate": {"passed": true}}')
    (out / "bias.json").write_text("{}")
    integrity.write_digests(str(out), ["evaluation.json", "bias.json"])
    registry = LocalRegistry(str(tmp_path / "registry"))
    version = registry.register("churn", strong_model, artifacts={"evaluation": str(out)})
    registered = hashlib.sha256(b'{"gate": {"passed": true}}').hexdigest()
    assert version.record["evidence"] == {"evaluation/evaluation.json": registered,
                                          "evaluation/bias.json": hashlib.sha256(b"{}").hexdigest()}
    assert registry.get("churn", 1).evidence_problems() == []

    copied = tmp_path / "registry" / "groups" / "churn" / "versions" / "1" / "evaluation" / "evaluation.json"
    copied.write_text('{"gate": {"passed": true}, "forged": 1}')
    assert registry.get("churn", 1).evidence_problems() == [
        f"evidence: {copied} has sha256 {hashlib.sha256(copied.read_bytes()).hexdigest()}, not the {registered} "
        "recorded at registration: it was rewritten since"]


def test_a_versions_splits_are_checked_against_the_digests_recorded_as_in_aws(strong_model, tmp_path):
    """GIVEN a version whose lineage records its prepared splits and their digests as Prepare wrote them (the keys the
    package has in AWS) WHEN a split is rewritten, or gone THEN the version names the split, its location and the
    digests, as the audit does; a version registered before the digests says nothing (nothing to check)."""
    splits = {}
    for split in ("train", "validation"):
        directory = tmp_path / "prepared" / split
        directory.mkdir(parents=True)
        (directory / f"{split}.parquet").write_bytes(f"PAR1 {split} rows PAR1".encode())
        listing = {f"{split}.parquet": hashlib.sha256(f"PAR1 {split} rows PAR1".encode()).hexdigest()}
        splits[split] = (directory, hashlib.sha256(json.dumps(listing, sort_keys=True, separators=(",", ":")).encode()).hexdigest())
    data = {**{f"{s}_data": str(d) for s, (d, _) in splits.items()}, **{f"{s}_data_sha256": h for s, (_, h) in splits.items()}}
    registry = LocalRegistry(str(tmp_path / "registry"))
    registry.register("churn", strong_model, lineage={"data": data})
    registry.register("churn", strong_model, lineage={"data": {"train_data": str(splits["train"][0])}})
    assert registry.get("churn", 1).split_problems() == []

    train, validation = splits["train"][0], splits["validation"][0]
    (train / "train.parquet").write_bytes(b"PAR1 other rows PAR1")
    (validation / "validation.parquet").unlink()
    now = integrity.directory_digest(str(train))
    assert registry.get("churn", 1).split_problems() == [
        f"train split: {train} now has digest {now}, not the {splits['train'][1]} recorded at registration: its data "
        "was rewritten since",
        f"validation split: {validation} is gone (digest {splits['validation'][1]} recorded at registration)",
    ]
    assert registry.get("churn", 2).split_problems() == []


def test_the_runs_command_compares_a_models_runs_side_by_side(tmp_path, capsys):
    # GIVEN two logged runs of churn (one on your files) and one of another model
    from mlops_cli.local.registry import main

    registry = LocalRegistry(str(tmp_path / "registry"))
    registry.log_run({"run_id": "r1", "group": "churn", "version": 1, "status": "Approved", "gate_passed": True,
                      "test_set_sha256": "a" * 64, "data": {"source": "generated"},
                      "parameters": {"seed": 7, "features": ["tenure", "plan"]}, "metrics": {"auc": 0.81, "f1": 0.5}})
    registry.log_run({"run_id": "r2", "group": "churn", "version": None, "status": "NotRegistered (gate failed)",
                      "gate_passed": False, "test_set_sha256": "a" * 64,
                      "data": {"source": "1 file(s) from data/churn.csv", "sha256": "b" * 64},
                      "parameters": {"seed": 7, "features": ["tenure"]}, "metrics": {"auc": 0.7712, "f1": None}})
    registry.log_run({"run_id": "r3", "group": "credit-risk", "metrics": {"auc": 0.7}})
    # WHEN listed THEN one aligned line per churn run, digests shortened, the metrics the runs recorded
    assert main(["runs", "--workdir", str(tmp_path), "--model", "churn"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "run_id  version  status                       gate_passed  champion_version  source                         "
        "data_sha256   test_set_sha256  features     auc     f1",
        "r1      1        Approved                     True         -                 generated                      "
        "-             aaaaaaaaaaaa     tenure,plan  0.8100  0.5000",
        "r2      -        NotRegistered (gate failed)  False        -                 1 file(s) from data/churn.csv  "
        "bbbbbbbbbbbb  aaaaaaaaaaaa     tenure       0.7712  -",
    ]
    # AND a model without runs is an error naming the log and what to do
    assert main(["runs", "--workdir", str(tmp_path / "nowhere"), "--model", "churn"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"ERROR: no runs of 'churn' in {tmp_path / 'nowhere' / 'registry' / 'runs.jsonl'}; run the local loop first "
        "(bash scripts/local-run.sh --model churn)")


def test_a_person_approves_or_rejects_a_version_from_the_command_line(strong_model, weak_model, tmp_path, capsys):
    """GIVEN v1 approved and v2 held PendingManualApproval (its callers' contract changed) WHEN a person approves v2 THEN it
    is the champion, its history says who decided and why; WHEN they reject it THEN v1 serves again."""
    from mlops_cli.local.registry import main

    registry = LocalRegistry(str(tmp_path / "registry"))
    registry.register("churn", strong_model, lineage={"run_id": "a"})
    registry.approve("churn", 1)
    registry.register("churn", weak_model, lineage={"run_id": "b"})
    args = ["--workdir", str(tmp_path), "--model", "churn", "--version", "2"]
    assert main(["approve", *args, "--comment", "callers moved to the multiclass contract"]) == 0
    assert capsys.readouterr().out.strip() == "churn v2: PendingManualApproval -> Approved; champion now: v2"
    (decision,) = registry.get("churn", 2).record["approval_history"][1:]
    assert (decision["status"], decision["by"], decision["comment"]) == (
        APPROVED, "a person (python -m mlops_cli.local.registry)", "callers moved to the multiclass contract")
    assert main(["reject", *args]) == 0
    assert capsys.readouterr().out.strip() == "churn v2: Approved -> Rejected; champion now: v1"
    # AND an approval without a reason is refused, the version left as it was (a person's decision says why)
    assert main(["reject", *args, "--comment", "back to v1"]) == 0 and main(["approve", *args]) == 1
    assert capsys.readouterr().err.strip() == (
        'ERROR: approving churn v2 needs its reason: add --comment "<why>" (kept in the version\'s approval history, '
        "as the Model Registry keeps ApprovalDescription)")
    assert registry.get("churn", 2).status == "Rejected"
    # AND a --workdir without a registry is an error that creates nothing
    assert main(["approve", "--workdir", str(tmp_path / "typo"), "--model", "churn", "--version", "2"]) == 1
    assert capsys.readouterr().err.strip() == (f"ERROR: no local registry in {tmp_path / 'typo'} ({tmp_path / 'typo' / 'registry'} "
                                               "does not exist); give the --workdir of the local run")
    assert not (tmp_path / "typo").exists()
    # AND a version that does not exist is an error naming it and how to list them
    assert main(["approve", "--workdir", str(tmp_path), "--model", "churn", "--version", "9"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"ERROR: model package group 'churn' has no version 9 in {tmp_path / 'registry'}; list them with: "
        f"python -m mlops_cli.local.registry runs --workdir {tmp_path} --model churn")
