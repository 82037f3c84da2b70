"""The local replay: the monitoring loop closing on this machine, no AWS.

::

    python -m mlops_cli.local.replay_loop --workdir .local-run --model churn --rows 5000 --seed 21 \\
        --drift 0.8 [--concept-drift 0.0] [--cooldown-hours 24] [--train-days 90] [--environment dev] \\
        [--config config/mlops-loop.yaml]
    python -m mlops_cli.local.replay_loop --workdir .local-run --model my-model \\
        --data <dataset>=<a window of your records> [--labels <dataset>=<their labels>]

Needs a champion (the Approved version of ``--model`` approved last in ``<workdir>/registry``,
created by ``bash scripts/local-run.sh``). Then:

1. **traffic**: a window of generated requests (``--drift`` / ``--concept-drift``) scored by
   the champion, written as SageMaker data capture + ground-truth labels under
   ``<workdir>/replay/<timestamp>/`` (``mlops_cli.local.replay``). A champion trained on your own
   files (``local-run.sh --data``) is replayed your records instead: ``--data`` names a window of
   them (newer records, say), which go through the curate and feature jobs as in the local run;
   generated requests would not be drawn from your data, so the monitor would see drift everywhere,
   and replay refuses them for such a champion;
2. **monitor**: the model monitor job's ``run_monitor`` over that window against the
   champion's baseline, with the environment's ``monitoring.psi_threshold`` and
   ``false_alarm_rate``; prints status, drifted features (PSI), prediction PSI, AUC drop and the report path.
   Each replay stands for a day: with a drift window of N days (the model's ``drift_window_days`` in the
   environment, or ``--drift-window-days``) the monitor judges the capture of this replay and the N - 1 before it,
   as the scheduled job judges the last N days;
3. **alarm -> EventBridge -> trigger**: when the summary breaches what the CloudWatch alarms
   watch (a drift score at ``DRIFT_SCORE_ALARM``, or a failure of the one quality check the model's quality
   alarm watches, ``core.problem.quality_alarm_key``) the payload
   the EventBridge rule sends is handed to the REAL guard
   ``pipeline_code.handlers.retrain_trigger.decide_and_start`` with a
   :class:`LocalPipelineClient` standing in for SageMaker: its executions live in
   ``<workdir>/replay/executions.jsonl`` and "starting the pipeline" runs
   ``mlops_cli.local.run_loop`` on drifted data (same drift, a new seed, same workdir:
   same registry, same frozen test set; ``--train-rows`` and ``--train-days`` size its generated records,
   by default ``--rows`` and run_loop's 90 days), or on the ``--data`` files, so the new candidate is
   evaluated against the champion and gated.

Run it twice in a row: the second time the guard refuses (cooldown), the retraining-storm
guard working locally. Exit status: 0 done (whatever the decision), 1 the retraining
failed or bad input, 2 no champion yet.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from pipeline_code.core import problem
from pipeline_code.core.contract import DEFAULT_MAX_RETRAINING_STARTS_PER_DAY, pipeline_name, retrain_alarm_prefix
from mlops_cli.local import run_loop
from mlops_cli.local.user_data import own_files
from pipeline_code.argtypes import positive_int
from mlops_cli.local.registry import LocalRegistry
from pipeline_code.monitoring import report as report_mod

PROG = "python -m mlops_cli.local.replay_loop"
EXECUTIONS_FILE = "executions.jsonl"
SUCCEEDED, FAILED, EXECUTING = "Succeeded", "Failed", "Executing"
GENERATED_ROWS = 5000  # generated requests in a window


class NoChampion(RuntimeError):
    """There is no Approved version of the model in the local registry."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


LOCAL_PREFIX = "local"


def training_pipeline_name(model: str) -> str:
    return pipeline_name(LOCAL_PREFIX, model)


def alarm_name(model: str, kind: str) -> str:
    """``local-<model>-retrain-<kind>``: the ``<prefix>-<model>-retrain-*`` alarm naming of the stack."""
    return f"{retrain_alarm_prefix(LOCAL_PREFIX, model)}{kind}"


# --------------------------------------------------------------------------------------
# SageMaker stand-in for the retrain trigger
# --------------------------------------------------------------------------------------
class LocalPipelineClient:
    """The two ``boto3.client("sagemaker")`` calls the retrain guard makes, backed by a JSONL file.

    ``executions.jsonl`` is append-only: each line is the full state of one execution, the
    last line of an ARN wins. Starting an execution runs ``run_pipeline(model, reason)``
    synchronously (the local "pipeline"), which returns the run record (or raises).
    """

    def __init__(self, path: str, pipelines: Mapping[str, str],
                 run_pipeline: Callable[[str, str], Mapping[str, Any]], *, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.path = os.path.abspath(path)
        self.pipelines = dict(pipelines)  # pipeline name -> model
        self.run_pipeline = run_pipeline
        self.clock = clock
        self.started: List[str] = []

    # ---- storage ------------------------------------------------------------------
    def executions(self, pipeline: Optional[str] = None) -> List[Dict[str, Any]]:
        """Current state of every execution (of ``pipeline``), oldest first."""
        if not os.path.exists(self.path):
            return []
        latest: Dict[str, Dict[str, Any]] = {}
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    latest[record["arn"]] = record
        out = [r for r in latest.values() if pipeline is None or r["pipeline"] == pipeline]
        return sorted(out, key=lambda r: r["start_time"])

    def _write(self, record: Mapping[str, Any]) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(dict(record), sort_keys=True, default=str) + "\n")

    # ---- boto3-shaped API ----------------------------------------------------------
    def list_pipeline_executions(self, *, PipelineName: str, SortBy: str = "CreationTime", SortOrder: str = "Descending",
                                 MaxResults: int = 10) -> Dict[str, Any]:
        records = self.executions(PipelineName)
        if SortOrder == "Descending":
            records = records[::-1]
        return {
            "PipelineExecutionSummaries": [
                {
                    "PipelineExecutionArn": r["arn"],
                    "StartTime": dt.datetime.fromisoformat(r["start_time"]),
                    "PipelineExecutionStatus": r["status"],
                    "PipelineExecutionDisplayName": r.get("display_name"),
                }
                for r in records[:MaxResults]
            ]
        }

    def start_pipeline_execution(self, *, PipelineName: str, PipelineExecutionDisplayName: str = "",
                                 PipelineExecutionDescription: str = "", PipelineParameters: Sequence[Mapping[str, str]] = (),
                                 ClientRequestToken: str = "") -> Dict[str, Any]:
        if PipelineName not in self.pipelines:
            raise ValueError(f"ResourceNotFound: pipeline {PipelineName!r} does not exist locally")
        for record in self.executions(PipelineName):  # SageMaker's idempotency: same token, same execution
            if ClientRequestToken and record.get("client_request_token") == ClientRequestToken:
                return {"PipelineExecutionArn": record["arn"]}
        parameters = {p["Name"]: p["Value"] for p in PipelineParameters}
        reason = parameters.get("TriggerReason", "manual")
        execution_id = uuid.uuid4().hex[:12]
        record: Dict[str, Any] = {
            "arn": f"arn:local:sagemaker:pipeline/{PipelineName}/execution/{execution_id}",
            "pipeline": PipelineName,
            "display_name": PipelineExecutionDisplayName,
            "description": PipelineExecutionDescription,
            "parameters": parameters,
            "client_request_token": ClientRequestToken,
            "start_time": self.clock().isoformat(),
            "status": EXECUTING,
        }
        self._write(record)
        self.started.append(record["arn"])
        try:
            result = self.run_pipeline(self.pipelines[PipelineName], reason)
        except Exception as exc:  # noqa: BLE001 - a failed execution is recorded, as SageMaker would
            self._write({**record, "status": FAILED, "end_time": self.clock().isoformat(),
                         "failure_reason": f"{type(exc).__name__}: {exc}"})
        else:
            self._write({**record, "status": SUCCEEDED, "end_time": self.clock().isoformat(),
                         "run_id": result.get("run_id"), "version": result.get("version"),
                         "gate_passed": result.get("gate_passed"), "model_status": result.get("status")})
        return {"PipelineExecutionArn": record["arn"]}


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------
def _window_dir(workdir: str) -> str:
    stamp = _utcnow().strftime("%Y%m%dT%H%M%S")
    base = os.path.join(workdir, "replay")
    os.makedirs(base, exist_ok=True)
    suffix = 0
    while True:
        path = os.path.join(base, stamp + (f"-{suffix}" if suffix else ""))
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            suffix += 1


def _drift_window_capture(window_dir: str, days: int) -> str:
    """The capture a drift window of ``days`` judges: this replay's (``days`` 1), else a copy of this replay's and the
    ``days - 1`` newest replays' before it (each a day's traffic) under ``<window_dir>/drift_window/``."""
    own = os.path.join(window_dir, "capture")
    if days <= 1:
        return own
    base = os.path.dirname(window_dir)
    earlier = sorted(name for name in os.listdir(base) if os.path.join(base, name) != window_dir
                     and name < os.path.basename(window_dir) and os.path.isdir(os.path.join(base, name, "capture")))
    target = os.path.join(window_dir, "drift_window")
    for name in [*earlier[-(days - 1):], os.path.basename(window_dir)]:
        shutil.copytree(os.path.join(base, name, "capture"), os.path.join(target, name))
    return target


def summary_lines(report: Mapping[str, Any], report_dir: str) -> List[str]:
    s = report["summary"]
    dd = (report.get("sections") or {}).get("data_drift") or {}
    features = dd.get("features") or {}
    drifted = [f"{name} (PSI {features[name]['psi']:.3f})" for name in dd.get("drifted_features") or []]

    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    return [
        f"monitor: status={report['status']} records={s['records']} failed_checks={s['failed_checks']} "
        f"errors={[e['kind'] for e in report.get('errors') or []]}",
        f"  data drift: max PSI {fmt(s['data_drift_max_psi'])}, score {fmt(s.get('data_drift_score'))} "
        f"(drift at 1: PSI over its calibrated threshold); drifted: {', '.join(drifted) or 'none'}",
        f"  prediction PSI {fmt(s['prediction_psi'])}, score {fmt(s.get('prediction_drift_score'))}; quality: "
        f"{report_mod.quality_change(report) or 'not measured (no labelled traffic in the window)'}",
        f"  report: {os.path.join(report_dir, 'report.html')}",
    ]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default=".local-run", help="the local run's state directory (default %(default)s)")
    p.add_argument("--model", default="churn", help="model name (= registry group; default %(default)s)")
    p.add_argument("--rows", type=positive_int, default=None,
                   help="requests in the traffic window (default 5000 generated, or every record of --data)")
    p.add_argument("--data", action="append", default=[], metavar="DATASET=PATH",
                   help="replay your own records (a file, directory or glob, as for run_loop) instead of generated ones")
    p.add_argument("--labels", action="append", default=[], metavar="DATASET=PATH",
                   help="label files of the --data records (record identifier + label columns), as for run_loop")
    p.add_argument("--seed", type=int, default=21, help="traffic seed (default %(default)s)")
    p.add_argument("--drift", type=float, default=0.0, help="input drift of the window in [0, 1]")
    p.add_argument("--concept-drift", type=float, default=0.0, help="label-relationship drift of the window in [0, 1]")
    p.add_argument("--label-coverage", type=float, default=1.0, help="share of the window with ground truth (default 1)")
    p.add_argument("--cooldown-hours", type=float, default=None,
                   help="retrain guard cooldown (default: the environment's monitoring.retraining_cooldown_hours, else 24)")
    p.add_argument("--drift-window-days", type=positive_int, default=None,
                   help="replayed windows (a day each) the monitor judges together, this one and the newest before it "
                        "(default: the model's drift_window_days in the environment)")
    p.add_argument("--environment", default="dev")
    p.add_argument("--config", default=str(run_loop.DEFAULT_CONFIG))
    p.add_argument("--train-rows", type=int, default=None, help="rows generated for the retraining (default: --rows)")
    p.add_argument("--train-days", type=positive_int, default=None,
                   help="days of event times the retraining's generated records span, as run_loop's --days (default: "
                        f"its {run_loop.GENERATED_DAYS}; fewer days, fewer event-date partitions for the ETL job to write)")
    p.add_argument("--retrain-seed", type=int, default=None, help="data seed of the retraining (default: --seed + 1000)")
    p.add_argument("--num-round", type=int, default=None, help="training rounds of the retraining (default: train.py's)")
    return p


def run(argv: Optional[Sequence[str]] = None, *, out: Any = None, now: Optional[Callable[[], dt.datetime]] = None) -> Dict[str, Any]:
    """Replay, monitor, trigger; returns ``{"window_dir", "report", "breaches", "decision", "retraining"}``."""
    from pipeline_code.handlers.retrain_trigger import decide_and_start
    from pipeline_code.monitoring import monitor
    from mlops_cli.local import replay
    from pipeline_code.training.spec import parse_model_spec

    out = out or sys.stdout
    clock = now or _utcnow
    args = build_parser().parse_args(argv)
    config = run_loop.load_config(args.config, args.environment)
    if args.model not in config["models"]:
        raise ValueError(f"unknown model {args.model!r}; configured: {sorted(config['models'])}")
    env = config["environment"]
    monitoring = env.get("monitoring") or {}
    cooldown_hours = args.cooldown_hours if args.cooldown_hours is not None else float(
        monitoring.get("retraining_cooldown_hours", 24))
    workdir = os.path.abspath(args.workdir)
    registry_root = os.path.join(workdir, "registry")
    champion = LocalRegistry(registry_root).latest_approved(args.model) if os.path.isdir(registry_root) else None
    if champion is None:
        raise NoChampion(
            f"no champion: no Approved version of {args.model!r} in {registry_root}. "
            f"Run `bash scripts/local-run.sh --model {args.model}` first (it trains, gates and registers one)."
        )
    spec = parse_model_spec(config["models"][args.model])
    data, labels = _own_records(args, spec.dataset, champion)
    print(f"== replay {args.model}: champion v{champion.version} ({champion.path}) ==", file=out)

    # 1. traffic window scored by the champion ---------------------------------------
    window_dir = _window_dir(workdir)
    generated_rows = args.rows or GENERATED_ROWS  # with --data, --rows caps your window instead (default: all of it)
    curated: Dict[Any, Dict[str, str]] = {}  # the window's records as curated here, which a retraining reads again
    if data:
        frame = _records_window(spec, data, labels, window_dir, args.rows, curated)
    else:
        frame = replay.traffic(spec, generated_rows, seed=args.seed, drift=args.drift, concept_drift=args.concept_drift)
    replayed = replay.replay(champion.model_dir, spec, frame, capture_dir=os.path.join(window_dir, "capture"),
                             labels_dir=os.path.join(window_dir, "labels"), label_coverage=args.label_coverage)
    origin = (f"your records from {data}" if data else
              f"seed {args.seed}, drift {args.drift}, concept drift {args.concept_drift}")
    print(f"traffic: {replayed['rows']} requests ({origin}), {replayed['labelled']} labelled -> {window_dir}", file=out)

    # 2. the monitor job ----------------------------------------------------------------
    report_dir = os.path.join(window_dir, "monitor")
    window_days = args.drift_window_days or int(config.get("drift_window_days", {}).get(args.model, 1))
    capture_dir = _drift_window_capture(window_dir, window_days)
    if window_days > 1:
        print(f"drift window: {window_days} days -> the capture of {len(os.listdir(capture_dir))} replayed windows",
              file=out)
    monitor_argv = [
        "--model-spec", spec.to_json(),
        "--baseline-dir", os.path.join(champion.path, "baseline"),
        "--model-dir", champion.model_dir,
        "--capture-dir", capture_dir,
        "--labels-dir", os.path.join(window_dir, "labels"),
        "--output-dir", report_dir,
        # Windows that overlap (several days, judged daily) weigh the slow-drift sums as the scheduled job's do.
        "--window-hours", str(24 * window_days),
        "--environment", args.environment,
        "--psi-threshold", str(monitoring["psi_threshold"]),
        "--false-alarm-rate", str(monitoring["false_alarm_rate"]),
        # The earlier replayed windows' reports: the slow-drift detector's state, as the scheduled job reads S3.
        "--history-dir", os.path.dirname(window_dir),
        # What the model's config exempts or sets per feature (models.<name>.monitoring), as the scheduled job does.
        *config.get("monitor_arguments", {}).get(args.model, []),
    ]  # fmt: skip
    with open(os.path.join(window_dir, "monitor.log"), "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        code = monitor.main(monitor_argv)
    if code:
        raise RuntimeError(f"monitor exited {code}; see {os.path.join(window_dir, 'monitor.log')}")
    with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    for line in summary_lines(report, report_dir):
        print(line, file=out)

    # 3. CloudWatch alarm -> EventBridge -> retrain trigger ------------------------------
    fired = report_mod.retrain_alarms(report)
    result: Dict[str, Any] = {"window_dir": window_dir, "report": report, "report_dir": report_dir, "breaches": fired,
                              "decision": None, "retraining": None, "champion_version": champion.version}
    if not fired:
        print("alarms: OK (no drift score reached its calibrated threshold, model quality within limits) -> no retraining",
              file=out)
        return result
    pipeline = training_pipeline_name(args.model)
    event = {"pipeline": pipeline, "reason": "drift", "alarm": alarm_name(args.model, fired[0]),
             "source_event_id": str(uuid.uuid4())}
    print(f"alarms: ALARM {', '.join(alarm_name(args.model, k) for k in fired)} -> EventBridge -> retrain trigger", file=out)
    print(f"  event: {json.dumps(event)}", file=out)

    retraining: Dict[str, Any] = {}

    def run_pipeline(model: str, reason: str) -> Mapping[str, Any]:
        seed = args.retrain_seed if args.retrain_seed is not None else args.seed + 1000
        loop_argv = [
            "--workdir", workdir, "--model", model, "--rows", str(args.train_rows or generated_rows),
            "--seed", str(seed), "--drift", str(args.drift), "--concept-drift", str(args.concept_drift),
            "--environment", args.environment, "--config", args.config,
            *(["--days", str(args.train_days)] if args.train_days else []),
        ]  # fmt: skip
        if data:  # the retraining reads your records, as the pipeline reads the lake they landed in
            loop_argv += ["--data", f"{spec.dataset}={data}", *(["--labels", f"{spec.dataset}={labels}"] if labels else [])]
        if args.num_round:
            loop_argv += ["--num-round", str(args.num_round)]
        print(f"\n== pipeline {training_pipeline_name(model)} executing: TriggerReason={reason} ==", file=out)
        print(f"$ python -m mlops_cli.local.run_loop {' '.join(loop_argv)}", file=out)
        retraining["reason"] = reason
        retraining["record"] = run_loop.run(loop_argv, out=out, curated=curated)[0]
        return retraining["record"]

    client = LocalPipelineClient(os.path.join(workdir, "replay", EXECUTIONS_FILE), {pipeline: args.model}, run_pipeline,
                                 clock=clock)
    allowed = frozenset(training_pipeline_name(m) for m in (env.get("models") or config["models"]))
    # The local loop has no on-call pause (an SSM parameter in AWS): nothing is ever paused here.
    decision = decide_and_start(event, client=client, allowed_pipelines=allowed,
                                cooldown=dt.timedelta(hours=cooldown_hours), now=clock(), paused=lambda pipeline: None,
                                max_starts_per_day=int(monitoring.get("retraining_max_starts_per_day", DEFAULT_MAX_RETRAINING_STARTS_PER_DAY)))
    result["decision"] = decision
    print(f"\nguard: {'STARTED' if decision['started'] else 'REFUSED'} - {decision['reason']}", file=out)
    if decision["started"]:
        execution = next(e for e in client.executions(pipeline) if e["arn"] == decision["execution"])
        result["execution"] = execution
        result["retraining"] = retraining.get("record")
        print(f"execution {execution['arn']}: {execution['status']}"
              + (f" ({execution.get('failure_reason')})" if execution["status"] == FAILED else ""), file=out)
        record = retraining.get("record")
        if record:
            if record["version"] is not None:
                gate = f"gate passed -> registered v{record['version']} ({record['status']})"
            else:
                gate = f"gate failed -> not registered: {'; '.join(record['gate_reasons']) or 'see report'}"
            champ = record.get("champion_metrics") or {}
            headline = problem.default_primary_metric(spec.problem_type)  # AUC, or R² for regression
            print(f"retrained: candidate {headline} {record['metrics'][headline]:.4f} vs champion "
                  f"v{record['champion_version']} {headline} {champ.get(headline, float('nan')):.4f} on frozen test set "
                  f"{record['test_set_sha256'][:12]}; {gate}", file=out)
    return result


def _own_records(args: argparse.Namespace, dataset: str, champion: Any) -> tuple:
    """(``--data`` files, ``--labels`` files) of the model's dataset, or (None, None) for generated traffic, which a
    champion trained on your files refuses; bad combinations are errors naming the flag and the fix."""
    data, labels = own_files(args.data, args.labels, [dataset])
    if data and (args.drift or args.concept_drift):
        raise ValueError("--drift/--concept-drift shape generated traffic; with --data your records are the traffic "
                         "(replay a newer window of them to see drift)")
    if data and args.train_days:
        raise ValueError("--train-days sizes the records generated for a retraining; with --data the retraining reads "
                         "your records (their event times are theirs): drop --train-days")
    # Unknown for a version registered before run_loop recorded it: then either traffic is replayed.
    source = ((champion.record.get("lineage") or {}).get("data") or {}).get("source")
    if not data and source not in (None, run_loop.GENERATED):
        raise ValueError(
            f"champion v{champion.version} of {args.model!r} was trained on your records ({source}); generated "
            f"traffic is not drawn from them, so every feature would look drifted. Add --data {dataset}=<file, "
            f"directory or glob> to replay a window of your records (and --labels {dataset}=<label files> if their "
            "labels come apart)")
    if data and source == run_loop.GENERATED:
        raise ValueError(
            f"champion v{champion.version} of {args.model!r} was trained on generated records; your records would be "
            f"compared with a baseline and a frozen test set that are not theirs. Train a champion on your files "
            f"first: bash scripts/local-run.sh --model {args.model} --data {dataset}=<your files>")
    return data.get(dataset), labels.get(dataset)


def _records_window(spec: Any, data: str, labels: Optional[str], window_dir: str, rows: Optional[int],
                    curated: Dict[Any, Dict[str, str]]) -> Any:
    """Your records (``data``, ``labels``) landed, curated and their features computed in ``window_dir`` by the local
    run's jobs (:func:`run_loop.lake_paths`), as requests (:func:`replay.traffic_from_records`); noted in ``curated``
    (:func:`run_loop.remember_curation`), so a retraining on the same files reads them instead of curating them again."""
    from mlops_cli.local import replay, user_data
    from pipeline_code.job_runtime import start_spark

    paths = run_loop.lake_paths(window_dir, spec.dataset)
    user_data.land(spec.catalog_dataset, data, paths["raw"], dt.date.today().isoformat(), labels=labels)
    runtime = start_spark("mlops-loop-local-replay", {}, glue=False)
    try:
        run_loop.curate_and_compute(spec.catalog_dataset, paths, os.path.join(window_dir, "logs"),
                                    os.path.basename(window_dir), {})
    finally:
        runtime.stop()
    run_loop.remember_curation(curated, spec.catalog_dataset, paths, run_id=os.path.basename(window_dir),
                               logs=os.path.join(window_dir, "logs"), by=f"replay window {window_dir}")
    return replay.traffic_from_records(spec, paths["features"], paths["curated"], rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        result = run(argv)
    except NoChampion as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except (run_loop.StageFailed, ValueError, FileNotFoundError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    execution = result.get("execution")
    return 1 if execution and execution["status"] == FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
