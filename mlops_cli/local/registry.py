"""A local model registry in a directory: the SageMaker Model Registry's semantics, no AWS.

Layout (everything is plain JSON/files, safe to inspect or diff)::

    <root>/
      runs.jsonl                               one line per run (experiment comparison)
      groups/<group>/group.json                the model package group
      groups/<group>/versions/<n>/version.json status, approval history, lineage, metrics
      groups/<group>/versions/<n>/model/       model.json + feature_metadata.json (copied in)
      groups/<group>/versions/<n>/evaluation.json
      groups/<group>/versions/<n>/<artifact>/  further artifacts (the local run's baseline/ and evaluation/: the jobs'
                                               outputs as written, their digests in version.json's evidence)

Versions are numbered 1, 2, ... per group (allocated with an atomic ``mkdir``) and start
``PendingManualApproval``; :meth:`LocalRegistry.approve` / :meth:`LocalRegistry.reject`
change the status and append to the approval history. :meth:`LocalRegistry.latest_approved`
is the champion, picked by the Model Registry's rule (:mod:`pipeline_code.core.approval`): the Approved
version approved last (its last approval-history entry), so re-approving an earlier version - a rollback - makes
it the champion again, as the deploy handler makes it serve in AWS. ``version.json`` records the model digest
of the copied model (``model_sha256``, :func:`pipeline_code.core.integrity.model_digest`) so that a champion
whose files changed since registration can be refused.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional

from pipeline_code.core import approval, integrity
from pipeline_code.core.contract import (
    EVALUATION_FILE, MODEL_CONTENT_SHA256_PROPERTY, MODEL_SHA256_PROPERTY, SPLIT_PROPERTIES, SPLIT_SHA256_PROPERTIES,
)  # fmt: skip

PENDING = "PendingManualApproval"
APPROVED = approval.APPROVED
REJECTED = "Rejected"
STATUSES = (PENDING, APPROVED, REJECTED)
RUNS_FILE = "runs.jsonl"


class RegistryError(ValueError):
    """Unknown group/version or an invalid status change."""


@dataclass(frozen=True)
class ModelVersion:
    group: str
    version: int
    path: str
    record: Dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.record["status"])

    @property
    def model_dir(self) -> str:
        return os.path.join(self.path, "model")

    @property
    def created_at(self) -> str:
        return str(self.record["created_at"])

    @property
    def model_sha256(self) -> Optional[str]:
        """The model digest recorded at registration; None for a version registered before digests were recorded."""
        value = self.record.get(MODEL_SHA256_PROPERTY)
        return value if isinstance(value, str) and value else None

    @property
    def approved_at(self) -> dt.datetime:
        """When the current status was set: the last approval-history entry (registration when there is none)."""
        history = self.record.get("approval_history") or []
        return dt.datetime.fromisoformat(str(history[-1]["at"] if history else self.record["created_at"]))

    @property
    def standing(self) -> approval.Standing:
        """What the serving rule reads: a local version is complete once its record is written."""
        return approval.Standing(self.version, self.status, approval.COMPLETED, self.approved_at)

    def evidence_problems(self) -> List[str]:
        """What no longer holds the bytes recorded at registration (``record["evidence"]``: the jobs' digests of
        the artifacts copied in), one sentence each; empty when all do or none were recorded."""
        problems = []
        for relative, recorded in sorted((self.record.get("evidence") or {}).items()):
            path = os.path.join(self.path, relative)
            if not os.path.isfile(path):
                problems.append(f"evidence: {path} is gone (sha256 {recorded} recorded at registration)")
                continue
            actual = integrity.sha256_file(path)
            if actual != recorded:
                problems.append(f"evidence: {path} has sha256 {actual}, not the {recorded} recorded at registration: "
                                "it was rewritten since")
        return problems

    def split_problems(self) -> List[str]:
        """What no longer holds the prepared splits the version was trained with (``record["lineage"]["data"]``: each
        split's directory under ``contract.SPLIT_PROPERTIES`` and the digest Prepare wrote under
        ``contract.SPLIT_SHA256_PROPERTIES``, as the package records them in AWS), one sentence each; empty when all
        do or none were recorded (a version registered before they were)."""
        data = (self.record.get("lineage") or {}).get("data") or {}
        problems = []
        for split, location_key in SPLIT_PROPERTIES.items():
            location, recorded = data.get(location_key), data.get(SPLIT_SHA256_PROPERTIES[split])
            if not recorded or not location:
                continue
            if not os.path.isdir(location) or not any(files for _, _, files in os.walk(location)):
                problems.append(f"{split} split: {location} is gone (digest {recorded} recorded at registration)")
                continue
            now = integrity.directory_digest(location)
            if now != recorded:
                problems.append(f"{split} split: {location} now has digest {now}, not the {recorded} recorded at "
                                "registration: its data was rewritten since")
        return problems

    def evaluation(self) -> Optional[Dict[str, Any]]:
        path = os.path.join(self.path, EVALUATION_FILE)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _write_json(path: str, payload: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")
    os.replace(tmp, path)


def _read_json(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def code_version(repo_root: Optional[str] = None) -> Dict[str, Any]:
    """``{"git_commit": sha or None, "dirty": bool or None}`` of the repository at ``repo_root``."""
    root = repo_root or os.getcwd()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout
        return {"git_commit": commit or None, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "dirty": None}


class LocalRegistry:
    """A model registry rooted at a directory (created on first use)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(os.path.join(self.root, "groups"), exist_ok=True)

    # ---- groups ------------------------------------------------------------------
    def _group_dir(self, group: str) -> str:
        if not group or "/" in group or group.startswith("."):
            raise RegistryError(f"invalid model package group name {group!r}")
        return os.path.join(self.root, "groups", group)

    def create_group(self, group: str, description: str = "") -> Dict[str, Any]:
        """Create the group if needed (idempotent); return its record."""
        path = os.path.join(self._group_dir(group), "group.json")
        if os.path.exists(path):
            return _read_json(path)
        record = {"name": group, "description": description, "created_at": _now()}
        _write_json(path, record)
        os.makedirs(os.path.join(self._group_dir(group), "versions"), exist_ok=True)
        return record

    def groups(self) -> List[str]:
        base = os.path.join(self.root, "groups")
        return sorted(d for d in os.listdir(base) if os.path.exists(os.path.join(base, d, "group.json")))

    # ---- versions ----------------------------------------------------------------
    def register(
        self,
        group: str,
        model_dir: str,
        *,
        evaluation: Optional[Mapping[str, Any]] = None,
        lineage: Optional[Mapping[str, Any]] = None,
        metrics: Optional[Mapping[str, Any]] = None,
        artifacts: Optional[Mapping[str, str]] = None,
        description: str = "",
    ) -> ModelVersion:
        """Copy the model (and artifacts) into a new version, status PendingManualApproval; an artifact directory
        holding the jobs' digests (``core.integrity.DIGESTS_FILE``) has them recorded as the version's ``evidence``
        (``<artifact>/<file>`` -> sha256), which :meth:`ModelVersion.evidence_problems` checks."""
        if not os.path.exists(os.path.join(model_dir, "model.json")):
            raise RegistryError(f"no model.json in {model_dir!r}")
        self.create_group(group)
        versions_dir = os.path.join(self._group_dir(group), "versions")
        number = max(self._version_numbers(group), default=0) + 1
        while True:  # atomic allocation: mkdir fails if another writer took the number
            path = os.path.join(versions_dir, str(number))
            try:
                os.makedirs(path)
                break
            except FileExistsError:
                number += 1
        shutil.copytree(model_dir, os.path.join(path, "model"))
        for name, source in (artifacts or {}).items():
            shutil.copytree(source, os.path.join(path, name))
        if evaluation is not None:
            _write_json(os.path.join(path, EVALUATION_FILE), dict(evaluation))
        record = {
            "group": group,
            "version": number,
            # Of the copy: the bytes this registry holds are the ones a later champion check compares.
            MODEL_SHA256_PROPERTY: integrity.model_digest(os.path.join(path, "model")),
            # What two versions trained alike share, as the pipeline registers it (docs/training.md "Reproducibility").
            MODEL_CONTENT_SHA256_PROPERTY: integrity.model_content_digest(os.path.join(path, "model")),
            "status": PENDING,
            "description": description,
            "created_at": _now(),
            "lineage": dict(lineage or {}),
            "metrics": dict(metrics or {}),
            "evidence": {f"{name}/{file}": digest for name, source in (artifacts or {}).items()
                         for file, digest in integrity.read_digests(source).items()},
            "approval_history": [{"status": PENDING, "at": _now(), "by": "registration", "comment": ""}],
        }
        _write_json(os.path.join(path, "version.json"), record)
        return ModelVersion(group, number, path, record)

    def _version_numbers(self, group: str) -> List[int]:
        versions_dir = os.path.join(self._group_dir(group), "versions")
        if not os.path.isdir(versions_dir):
            return []
        return sorted(int(d) for d in os.listdir(versions_dir) if d.isdigit())

    def get(self, group: str, version: int) -> ModelVersion:
        path = os.path.join(self._group_dir(group), "versions", str(int(version)))
        record_path = os.path.join(path, "version.json")
        if not os.path.exists(record_path):
            raise RegistryError(f"model package group {group!r} has no version {version}")
        return ModelVersion(group, int(version), path, _read_json(record_path))

    def versions(self, group: str) -> List[ModelVersion]:
        out = []
        for number in self._version_numbers(group):
            try:
                out.append(self.get(group, number))
            except RegistryError:  # a version being registered right now (no record yet)
                continue
        return out

    def set_status(self, group: str, version: int, status: str, *, by: str = "local", comment: str = "") -> ModelVersion:
        if status not in STATUSES:
            raise RegistryError(f"unknown status {status!r}; allowed: {list(STATUSES)}")
        current = self.get(group, version)
        record = dict(current.record)
        record["status"] = status
        record["approval_history"] = list(record.get("approval_history", [])) + [
            {"status": status, "at": _now(), "by": by, "comment": comment}
        ]
        _write_json(os.path.join(current.path, "version.json"), record)
        return ModelVersion(group, current.version, current.path, record)

    def approve(self, group: str, version: int, *, by: str = "local", comment: str = "") -> ModelVersion:
        return self.set_status(group, version, APPROVED, by=by, comment=comment)

    def reject(self, group: str, version: int, *, by: str = "local", comment: str = "") -> ModelVersion:
        return self.set_status(group, version, REJECTED, by=by, comment=comment)

    def latest_approved(self, group: str) -> Optional[ModelVersion]:
        """The champion: the Approved version approved last (ties: the higher number), or None
        (:data:`pipeline_code.core.approval.RULE`, as in the Model Registry)."""
        return approval.select(self.versions(group), lambda v: v.standing)

    # ---- experiment log ----------------------------------------------------------
    def log_run(self, record: Mapping[str, Any]) -> None:
        """Append one run (metrics, parameters, decision) to ``runs.jsonl``."""
        line = json.dumps({"logged_at": _now(), **dict(record)}, sort_keys=True, default=str)
        with open(os.path.join(self.root, RUNS_FILE), "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def runs(self, group: Optional[str] = None) -> List[Dict[str, Any]]:
        path = os.path.join(self.root, RUNS_FILE)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        return [r for r in records if group is None or r.get("group") == group]

    def compare_runs(self, group: str, metrics: Iterable[str] = ("auc", "log_loss", "brier", "f1")) -> List[Dict[str, Any]]:
        """One row per run of ``group``: run id, version, decision, what it ran on (data source and content hash, test
        set, features) and the chosen metrics."""
        rows = []
        for run in self.runs(group):
            row = {k: run.get(k) for k in ("run_id", "version", "status", "gate_passed", "champion_version")}
            data, parameters = run.get("data") or {}, run.get("parameters") or {}
            row.update({"source": data.get("source"), "data_sha256": data.get("sha256"),
                        "test_set_sha256": run.get("test_set_sha256"), "features": parameters.get("features")})
            row.update({m: (run.get("metrics") or {}).get(m) for m in metrics})
            rows.append(row)
        return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def format_runs(rows: List[Dict[str, Any]]) -> str:
    """``rows`` (:meth:`LocalRegistry.compare_runs`) as an aligned text table; digests shortened to 12 characters."""
    if not rows:
        return "(no runs)"
    columns = list(rows[0])
    cells = [[_cell(r[c])[:12] if c.endswith("sha256") and r[c] else _cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m mlops_cli.local.registry runs --workdir .local-run --model churn [--metric auc ...]``: the model's
    runs from ``runs.jsonl``, one line each (default metrics: those the runs recorded).
    ``... approve|reject --model churn --version 2 [--comment ...]``: a person's decision on a version, as the approver
    makes it in the Model Registry (the version approved last is the champion the next run is judged against)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m mlops_cli.local.registry",
                                     description="The local registry's experiment log and approval decisions.")
    commands = parser.add_subparsers(dest="command", required=True)
    runs = commands.add_parser("runs", help="compare a model's runs: decision, data, test set, features, metrics")
    runs.add_argument("--metric", action="append", default=None, help="a metric to show (repeatable)")
    decisions = {name: commands.add_parser(name, help=f"{name} a version of a model (a person's decision)")
                 for name in ("approve", "reject")}
    for command in (runs, *decisions.values()):
        command.add_argument("--workdir", default=".local-run", help="the local run's state directory (default %(default)s)")
        command.add_argument("--model", required=True, help="the model (its registry group)")
    for command in decisions.values():
        command.add_argument("--version", type=int, required=True, help="the version to decide on")
        command.add_argument("--comment", default="", help="why (kept in the version's approval history; an approval "
                                                           "needs one)")
    args = parser.parse_args(argv)
    if args.command in decisions:
        return _decide(args.workdir, args.model, args.version, args.command, args.comment)
    log = os.path.join(args.workdir, "registry", RUNS_FILE)
    registry = LocalRegistry(os.path.dirname(log)) if os.path.exists(log) else None
    logged = registry.runs(args.model) if registry else []
    if not logged:
        print(f"ERROR: no runs of {args.model!r} in {log}; run the local loop first (bash scripts/local-run.sh "
              f"--model {args.model})", file=sys.stderr)
        return 1
    metrics = args.metric or list(dict.fromkeys(m for run in logged for m in (run.get("metrics") or {})))
    print(format_runs(registry.compare_runs(args.model, metrics)))
    return 0


def _decide(workdir: str, model: str, version: int, decision: str, comment: str) -> int:
    """Approve or reject ``version`` of ``model`` in ``workdir``'s registry, saying what serves (is champion) after."""
    import sys

    root = os.path.join(workdir, "registry")
    if not os.path.isdir(root):  # a mistyped --workdir must not leave an empty registry behind
        print(f"ERROR: no local registry in {workdir} ({root} does not exist); give the --workdir of the local run",
              file=sys.stderr)
        return 1
    registry = LocalRegistry(root)
    try:
        before = registry.get(model, version).status
        if decision == "approve" and not comment.strip():
            # The reason is what a validator reads of the decision (the Model Registry's ApprovalDescription).
            print(f'ERROR: approving {model} v{version} needs its reason: add --comment "<why>" (kept in the version\'s '
                  "approval history, as the Model Registry keeps ApprovalDescription)", file=sys.stderr)
            return 1
        decide = registry.approve if decision == "approve" else registry.reject
        decided = decide(model, version, by="a person (python -m mlops_cli.local.registry)", comment=comment)
    except RegistryError as exc:
        print(f"ERROR: {exc} in {os.path.join(workdir, 'registry')}; list them with: python -m mlops_cli.local.registry "
              f"runs --workdir {workdir} --model {model}", file=sys.stderr)
        return 1
    champion = registry.latest_approved(model)
    print(f"{model} v{version}: {before} -> {decided.status}; champion now: "
          f"{f'v{champion.version}' if champion else 'none (no Approved version)'}")
    for problem in decided.evidence_problems() if decided.status == APPROVED else ():
        print(f"WARNING: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
