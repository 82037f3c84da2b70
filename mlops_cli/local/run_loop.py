"""THE local run: the whole governed loop on a laptop, with the same job code as in AWS.

::

    python -m mlops_cli.local.run_loop --workdir .local-run --rows 20000 --seed 7 [--days 90] \\
        [--model churn] [--drift 0.0] [--concept-drift 0.0] [--no-auto-approve] [--training-seed N] \\
        [--data <dataset>=<file, directory or glob> [--labels <dataset>=<label files>]] [--positive-rate 0.02]

For each model of the environment (default: every model ``dev`` runs in
``config/mlops-loop.yaml``; gate thresholds and ``auto_approve`` from that environment):

1. **land** raw records into a per-run lake: your files when ``--data`` names the model's dataset
   (CSV, Parquet or JSON Lines, checked against the declaration: :mod:`mlops_cli.local.user_data`),
   otherwise generated ones (``pipeline_code.sample_data``, seeded; any declared dataset), their event times
   spread over ``--days`` days from 2026-01-01 (default 90) and landed as ingested the day after;
2. **curate** it with the Glue ETL job's real entry point on local Spark
   (``pipeline_code.etl.glue_curate_job``: typing, validation, quarantine, de-duplication);
3. **features** with the ingestion job in local mode (``pipeline_code.features.ingest``,
   pandas engine, no Feature Store);
4. **prepare** (point-in-time join, time split, frozen test set), **train** (with the pipeline's settings: the
   model's configured hyperparameters, its ``seed`` included, else the trainer's defaults; ``--seed`` seeds the
   generated data only, ``--training-seed`` the trainer), **evaluate**
   (challenger vs the champion = the Approved version approved last in the local registry, the rule the
   deploy handler serves by; refused when its model no longer has the digest recorded at its registration; on the
   same frozen test rows), **baseline** - each through its CLI ``main`` exactly as
   SageMaker runs it;
5. **gate** decision; when it passes, **register** a new version
   (``PendingManualApproval``, auto-approved when the environment auto-approves unless
   ``--no-auto-approve`` - or unless it would answer the champion's callers in another shape, the pipeline's rule:
   :func:`registration_status`). A failed gate registers nothing - as the SageMaker pipeline's
   ConditionStep - but the run, its report and the reasons are kept and logged.

Layout of ``--workdir``::

    registry/                          the local model registry (+ runs.jsonl)
    online-store.sqlite                the online store's twin, filled by each run's feature job
                                       (score by id: python -m mlops_cli.local.online_store)
    frozen_test/<model>/               the model's frozen test set (created by its first run; replaced by a run
                                       whose Prepare re-froze it, as the pipeline writes its test output back)
    frozen_test_replaced/<model>/      the sets re-freezing replaced, each under <version>-<sha256 prefix>/
    runs/<model>/<run id>/             lake/, features/, prepared/, model/, evaluation/, baseline/, logs/
                                       (a model whose raw records are those an earlier model of the same invocation
                                       curated, as two models of one dataset and features: that run's curated
                                       records and features, named in its record's notes)

A second run (another ``--seed`` or ``--drift``) is evaluated against the first run's
model as champion, on the first run's frozen test set - unless its data reaches past that set's window by a test
fraction (e.g. a larger ``--days``): then Prepare re-freezes it from the latest rows, as in the pipeline (the
environment's ``training.test_set_refreeze``), and both models are judged on the new set.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from pipeline_code.argtypes import positive_int
from pipeline_code.core import approval, problem
from pipeline_code.core.compiled import CPU_STAND_IN
from pipeline_code.core.frameworks import PYTORCH, XGBOOST
from pipeline_code.core.contract import (
    DATA_FILES, DATA_GENERATED, DEFAULT_PROJECT, MANIFEST_FILE, PREPARE_SUMMARY_DIR, PREPARE_SUMMARY_FILE, REFREEZE_WHEN_STALE,
    REGISTRATION_KEY, SPLIT_PROPERTIES, SPLIT_SHA256_PROPERTIES,
)  # fmt: skip
from mlops_cli.local.registry import LocalRegistry, code_version
from mlops_cli.local.user_data import own_files
from mlops_loop.config.location import configured_path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = configured_path()  # the config synth reads without -c: MLOPS_LOOP_CONFIG's, else the default
PROG = "python -m mlops_cli.local.run_loop"
GENERATED = DATA_GENERATED  # a version's data source when no --data gave it the user's files
GENERATED_START = "2026-01-01"  # the first event day of generated records
GENERATED_DAYS = 90  # the default width of their event window: a quarter


class StageFailed(RuntimeError):
    """A stage's entry point returned a non-zero exit code."""


def _hyperparameter_flag(framework: str, name: str, value: Any) -> List[str]:
    from pipeline_code.core.hyperparameters import of

    setting = of(framework)[name]
    return [setting.flag, setting.text(value)]


def load_config(path: str, environment: str) -> Dict[str, Any]:
    """One environment of the config, loaded and validated by the code path synth uses.

    Returns ``{"project", "models": {name: job spec}, "hyperparameters": {name: trainer flags its config sets},
    "frameworks": {name: what trains it}, "tuning_ranges": {name: its tuning_ranges}, "compiled": {name:
    whether the environment serves it on ml.inf2}, "environment":
    the environment's settings, "drift_window_days": {name: the days each drift run judges}, "monitor_arguments":
    {name: the drift monitor's arguments of its models.<name>.monitoring}, "gates": {name: the
    model's gate in that environment}}``;
    a mistake the synth would refuse (a duplicate key, a threshold out of bounds) is a
    :class:`~mlops_loop.config.ConfigError` naming the field, never a run on values AWS would not get.
    """
    # Imported here: the local run is a workstation tool; the job code shipped to AWS never needs it.
    from mlops_loop.config import load_config as load_app_config
    from mlops_loop.config.serving import compiled_for_inferentia2

    app = load_app_config(path)
    if environment not in app.environments:
        raise ValueError(f"{path}: unknown environment {environment!r}; known: {sorted(app.environments)}")
    return {
        "project": app.project,
        "models": {name: model.job_spec() for name, model in app.models.items()},
        # The trainer flags of what each model's config sets (the trainers' defaults are the pipeline's).
        "hyperparameters": {name: [part for setting, value in model.hyperparameters.items()
                                   for part in _hyperparameter_flag(model.framework, setting, value)]
                            for name, model in app.models.items()},
        "frameworks": {name: model.framework for name, model in app.models.items()},
        # The ranges a tuning job searches for each model (its tuning_ranges over the framework's): the local run says so.
        "tuning_ranges": {name: model.tuning_ranges for name, model in app.models.items()},
        # Models the environment serves on ml.inf2: their pipeline compiles them (here with the CPU stand-in).
        "compiled": {name: compiled_for_inferentia2(app.serving_of(app.environments[environment], model))
                     for name, model in app.models.items()},
        "environment": app.environments[environment].model_dump(mode="json"),
        # Days of traffic each drift run of the model judges in the environment (the model's own over the environment's).
        "drift_window_days": {name: model.drift_window_days_in(app.environments[environment].monitoring)
                              for name, model in app.models.items()},
        # What the drift monitor judges of each model (models.<name>.monitoring), as the scheduled job's arguments say.
        "monitor_arguments": {name: model.monitoring.monitor_arguments() for name, model in app.models.items()},
        "gates": {name: model.gate_in(app.environments[environment].gate).model_dump(mode="json")
                  for name, model in app.models.items()},
    }


# --------------------------------------------------------------------------------------
# One model, one run
# --------------------------------------------------------------------------------------
def _run_stage(name: str, func: Callable[[Sequence[str]], int], argv: List[str], log_dir: str, timings: Dict[str, float]) -> None:
    """Call a job's ``main(argv)`` with its stdout captured to ``logs/<name>.log``."""
    os.makedirs(log_dir, exist_ok=True)
    started = time.perf_counter()
    with open(os.path.join(log_dir, f"{name}.log"), "w", encoding="utf-8") as handle:
        handle.write("$ " + " ".join(argv) + "\n")
        handle.flush()
        with contextlib.redirect_stdout(handle):
            code = func(argv)
    timings[name] = round(time.perf_counter() - started, 3)
    if code:
        raise StageFailed(f"stage {name} failed with exit code {code}; see {os.path.join(log_dir, name + '.log')} and stderr")


def _trainer(framework: str) -> Callable[[Sequence[str]], int]:
    """The training job of a framework (torch is imported only for a PyTorch model)."""
    if framework == PYTORCH:
        from pipeline_code.training import train_torch

        return train_torch.main
    from pipeline_code.training import train

    return train.main


def _new_run_dir(workdir: str, model: str, seed: int) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    base = os.path.join(workdir, "runs", model)
    os.makedirs(base, exist_ok=True)
    suffix = 0
    while True:
        run_id = f"{stamp}-seed{seed}" + (f"-{suffix}" if suffix else "")
        try:
            os.makedirs(os.path.join(base, run_id))
            return os.path.join(base, run_id)
        except FileExistsError:
            suffix += 1


def lake_paths(root: str, dataset: str) -> Dict[str, str]:
    """Where a local run keeps a dataset's records under ``root``: raw (landed), curated, quarantine, features, and
    the declaration file the jobs read (:func:`curate_and_compute`)."""
    return {
        "raw": os.path.join(root, "lake", "raw"),
        "curated": os.path.join(root, "lake", "curated", dataset),
        "quarantine": os.path.join(root, "lake", "quarantine", dataset),
        "features": os.path.join(root, "features", dataset),
        "declaration": os.path.join(root, f"{dataset}.json"),
    }


def curate_and_compute(dataset: Any, paths: Mapping[str, str], logs: str, run_id: str, timings: Dict[str, float]) -> None:
    """The landed raw records of ``dataset`` (``paths``: :func:`lake_paths`) through the Glue curate job and the feature
    job, as in AWS: curated records (quarantined ones apart) and features, each job's summary in ``logs``. Needs the
    active Spark session."""
    from pipeline_code.etl import glue_curate_job
    from pipeline_code.features import ingest

    # The jobs read the dataset's declaration from a file, as the Glue jobs read theirs from S3.
    declaration = paths["declaration"]
    os.makedirs(os.path.dirname(declaration), exist_ok=True)
    with open(declaration, "w", encoding="utf-8") as handle:
        json.dump(dataset.to_declaration(), handle, indent=2)

    jobs = (
        ("curate_spark", "Glue curate job", glue_curate_job.main, [
            "--dataset", declaration,
            "--raw_path", os.path.join(paths["raw"], dataset.name),
            "--curated_path", paths["curated"],
            "--quarantine_path", paths["quarantine"],
            "--summary_path", os.path.join(logs, "curate_summary.json"),
            "--run_id", run_id,
        ]),
        ("features", "feature job", ingest.main, [
            "--dataset", declaration,
            "--curated_path", paths["curated"],
            "--features_path", paths["features"],
            "--engine", "pandas",
            "--summary_path", os.path.join(logs, "features_summary.json"),
            "--run_id", run_id,
        ]),
    )  # fmt: skip
    for timing, job_name, job, argv in jobs:
        started = time.perf_counter()
        code = job(argv)
        timings[timing] = round(time.perf_counter() - started, 3)
        if code:
            raise StageFailed(f"{job_name} failed with exit code {code} (see stderr)")


def _curation_key(dataset: Any, paths: Mapping[str, str]) -> str:
    """What the Glue and feature jobs of a run read: the dataset's declaration and its landed raw files (their
    paths under the dataset's raw folder and their bytes)."""
    from pipeline_code.core import integrity

    declaration = json.dumps(dataset.to_declaration(), sort_keys=True)
    return f"{declaration}\n{integrity.directory_digest(os.path.join(paths['raw'], dataset.name))}"


def shared_curation(curated: Optional[Mapping[Any, Dict[str, str]]], dataset: Any, paths: Mapping[str, str]
                    ) -> Optional[Dict[str, str]]:
    """The outputs (``run_id``, ``logs``, ``curated``, ``quarantine``, ``features``; ``online``: the online store file
    and feature group its features were put in, if any; ``by``: what curated them, when not a run) of the earlier run in
    ``curated`` that curated the same declaration of ``dataset`` from the same raw files as this run landed at
    ``paths`` (:func:`lake_paths`); None when there is none (or no ``curated``): the jobs are deterministic in those
    inputs, so their outputs would be the same again."""
    if not curated:
        return None
    return curated.get(_curation_key(dataset, paths))


def remember_curation(curated: Dict[Any, Dict[str, str]], dataset: Any, paths: Mapping[str, str], *, run_id: str,
                      logs: str, online: Optional[List[str]] = None, by: Optional[str] = None) -> None:
    """Note in ``curated`` that the jobs of ``run_id`` curated the raw records of ``dataset`` landed at ``paths``
    (:func:`lake_paths`) into its curated, quarantine and features paths, their summaries in ``logs``; ``online``:
    the online store file and feature group their features were put in (None: not put online); ``by``: what curated
    them when not a run (its notes name it). :func:`shared_curation` finds them."""
    curated[_curation_key(dataset, paths)] = {
        "run_id": run_id, "logs": logs, "online": online, **({"by": by} if by else {}),
        **{k: paths[k] for k in ("curated", "quarantine", "features")}}


def run_model(
    name: str,
    entry: Mapping[str, Any],
    env: Mapping[str, Any],
    *,
    workdir: str,
    registry: LocalRegistry,
    rows: int,
    seed: int,
    drift: float,
    concept_drift: float,
    bad_record_rate: float,
    auto_approve: bool,
    train_args: Sequence[str] = (),
    framework: str = XGBOOST,
    compile_for_inferentia2: bool = False,
    environment: str = "dev",
    project: str = DEFAULT_PROJECT,
    data: Optional[str] = None,
    labels: Optional[str] = None,
    positive_rate: Optional[float] = None,
    days: int = GENERATED_DAYS,
    curated: Optional[Dict[Any, Dict[str, str]]] = None,
) -> Dict[str, Any]:
    """One pass of the loop for one model; returns the run record (also logged to runs.jsonl).

    ``compile_for_inferentia2`` adds the pipeline's Compile stage, with torch-neuronx's CPU stand-in (no Neuron
    compiler here), and seals the evaluated archive in the run directory as the pipeline seals it in S3: the
    version registered holds the CPU model, the traced module and its parity sample.

    ``data`` (a file, directory or glob) replaces the generated records with the user's; ``labels``
    names label files joined to them by record identifier (else the records carry their labels). Generated records
    have event times over ``days`` days from :data:`GENERATED_START`, ingested the day after.

    ``curated`` (by default None: every run curates its own records) remembers, across the models of one invocation,
    the dataset's records each run curated: a model whose landed raw records are byte for byte those an earlier run of
    its dataset curated (e.g. two models of one dataset and features, or of the same ``--data`` files) reads that run's
    curated records and features, as in AWS the models of a dataset read its one curated table and feature group,
    instead of running the Glue and feature jobs again on the same input (:func:`shared_curation`); their features
    are put in this workdir's online store unless that run put them there already.
    """
    from mlops_cli.local import user_data
    from pipeline_code.sample_data.generate import generate_batch, write_raw
    from pipeline_code.training import baseline, data_io, evaluate, prepare
    from pipeline_code.training.spec import GateThresholds, evidence_flag, parse_model_spec

    spec = parse_model_spec(entry)
    spec_json = spec.to_json()
    thresholds = GateThresholds.from_mapping(env.get("gate") or {})
    run_dir = _new_run_dir(workdir, name, seed)
    run_id = os.path.basename(run_dir)
    paths = {
        **lake_paths(run_dir, spec.dataset),
        "prepared": os.path.join(run_dir, "prepared"),
        "model": os.path.join(run_dir, "model"),
        "compiled": os.path.join(run_dir, "compiled"),
        "sealed": os.path.join(run_dir, "sealed"),
        "registered": os.path.join(run_dir, "registered-model"),
        "checkpoints": os.path.join(run_dir, "checkpoints"),
        "evaluation": os.path.join(run_dir, "evaluation"),
        "baseline": os.path.join(run_dir, "baseline"),
        "frozen_test": os.path.join(workdir, "frozen_test", name),
        "replaced_test_sets": os.path.join(workdir, "frozen_test_replaced", name),
    }
    logs = os.path.join(run_dir, "logs")
    timings: Dict[str, float] = {}

    started = time.perf_counter()
    notes: List[str] = []
    if data is not None:
        landed = user_data.land(spec.catalog_dataset, data, paths["raw"], dt.date.today().isoformat(), labels=labels)
        rows_in, notes, source = landed.rows, landed.notes, f"{len(landed.files)} file(s) from {data}"
        origin: Dict[str, Any] = {"kind": DATA_FILES, "source": data, "sha256": landed.sha256,
                                  **({"labels": labels} if labels else {})}
        timings["land"] = round(time.perf_counter() - started, 3)
    else:
        batch = generate_batch(
            spec.catalog_dataset, rows, seed=seed, drift=drift, concept_drift=concept_drift,
            bad_record_rate=bad_record_rate, as_text=True, positive_rate=positive_rate,
            start=GENERATED_START, days=days,
            # The label follows the model's inputs; the sensitive attribute and slices carry no signal of their own.
            signal_features=spec.features,
        )
        ingested = dt.date.fromisoformat(GENERATED_START) + dt.timedelta(days=days)  # the day after the window
        write_raw(batch.frame, paths["raw"], spec.catalog_dataset, ingested.isoformat())
        rows_in, source = rows, GENERATED
        origin = {"kind": DATA_GENERATED}
        timings["generate"] = round(time.perf_counter() - started, 3)
    # The generator's settings, recorded only when it made the records (the trainer's seed is in the hyperparameters).
    parameters: Dict[str, Any] = {"seed": seed} if data is not None else {
        "rows": rows, "days": days, "seed": seed, "drift": drift, "concept_drift": concept_drift,
        "bad_record_rate": bad_record_rate}

    # Prepare would refuse a frozen test set of the other kind of records (generated vs your files): refused before the
    # curate and feature jobs run, with Prepare's message, not after them.
    prepare.check_frozen_origin(paths["frozen_test"], origin)
    earlier = shared_curation(curated, spec.catalog_dataset, paths)
    if earlier is None:
        curate_and_compute(spec.catalog_dataset, paths, logs, run_id, timings)
    else:
        # The same raw records through the same jobs: the earlier run's outputs.
        paths.update({k: earlier[k] for k in ("curated", "quarantine", "features")})
        notes = [*notes, f"the same raw records of {spec.dataset} as {earlier.get('by') or 'run ' + earlier['run_id']}"
                         f": its curated records and features are this run's (curated once)"]
    curate_logs = logs if earlier is None else earlier["logs"]
    store_settings = env["feature_store"]
    online = None
    if store_settings["online_store"]:
        from mlops_cli.local.online_store import STORE_FILE, fill_from_features, local_feature_group

        dataset = spec.catalog_dataset
        online = [os.path.join(workdir, STORE_FILE), local_feature_group(project, environment, dataset.name)]
        # The feature job fills the online store too: locally, its SQLite twin (scoring by id reads it). Features
        # shared from an earlier run are online already when that run filled this store's feature group.
        if earlier is None or earlier.get("online") != online:
            fill_from_features(
                online[0], paths["features"], feature_group=online[1],
                record_identifier=dataset.record_identifier, event_time=dataset.event_time,
                ttl_days=store_settings.get("online_ttl_days"),
            )
    if earlier is None and curated is not None:
        remember_curation(curated, spec.catalog_dataset, paths, run_id=run_id, logs=logs, online=online)

    _run_stage(
        "prepare",
        prepare.main,
        [
            "--model-spec", spec_json,
            "--features-dir", paths["features"],
            "--labels-dir", paths["curated"],
            "--frozen-test-dir", paths["frozen_test"],
            # The environment's rule for a stale frozen set, as the pipeline's Prepare is given it.
            "--test-set-refreeze", (env.get("training") or {}).get("test_set_refreeze", REFREEZE_WHEN_STALE),
            "--output-dir", paths["prepared"],
            evidence_flag("min_group_rows"), str(thresholds.min_group_rows),
            # Recorded in a new frozen test set; one frozen from the other kind (generated vs your files) is refused.
            "--data-origin", json.dumps(origin),
        ],
        logs,
        timings,
    )  # fmt: skip
    with open(os.path.join(paths["prepared"], PREPARE_SUMMARY_DIR, PREPARE_SUMMARY_FILE), encoding="utf-8") as handle:
        prepare_summary = json.load(handle)
    refrozen = bool(prepare_summary.get("frozen_test_set_refrozen"))
    frozen_created = _freeze_test_set(os.path.join(paths["prepared"], "test"), paths["frozen_test"], replace=refrozen,
                                      replaced_dir=paths["replaced_test_sets"])
    warnings = prepare_summary["warnings"]
    not_tuned = tuning_warning(environment, env, framework, spec)
    if not_tuned:
        warnings = [*warnings, not_tuned]

    _run_stage(
        "train",
        _trainer(framework),
        [
            "--model-spec", spec_json,
            "--train-dir", os.path.join(paths["prepared"], "train"),
            "--validation-dir", os.path.join(paths["prepared"], "validation"),
            "--model-dir", paths["model"],
            "--checkpoint-dir", paths["checkpoints"],
            # The pipeline's settings (the config's, else the trainer's defaults, which are the pipeline's) and this
            # run's overrides: training_args. The data seed is not the trainer's: the pipeline trains with its own.
            *train_args,
        ],
        logs,
        timings,
    )  # fmt: skip

    evaluated = paths["model"]
    if compile_for_inferentia2:
        from pipeline_code.training import compile_neuron

        _run_stage("compile", compile_neuron.main,
                   ["--model-dir", paths["model"], "--output-dir", paths["compiled"], "--compiler", CPU_STAND_IN], logs, timings)
        evaluated = paths["compiled"]
    champion = registry.latest_approved(name)
    _run_stage(
        "evaluate",
        evaluate.main,
        [
            "--model-spec", spec_json,
            "--model-dir", evaluated,
            "--test-dir", os.path.join(paths["prepared"], "test"),
            "--champion-dir", champion.model_dir if champion else "",
            # Which version, and the bytes registered: evaluate refuses a champion whose model changed since.
            *(["--champion-version", str(champion.version)] if champion else []),
            *(["--champion-model-sha256", champion.model_sha256] if champion and champion.model_sha256 else []),
            "--output-dir", paths["evaluation"],
            *(["--seal-uri", paths["sealed"] + os.sep] if compile_for_inferentia2 else []),
            *thresholds.to_args(),
            # What the pipeline's execution asks for (its ModelApprovalStatus): the report answers with the rule.
            "--approval-status", approval.APPROVED if auto_approve else approval.PENDING,
        ],
        logs,
        timings,
    )  # fmt: skip
    _run_stage(
        "baseline",
        baseline.main,
        [
            "--model-spec", spec_json,
            "--model-dir", paths["model"],
            "--train-dir", os.path.join(paths["prepared"], "train"),
            "--validation-dir", os.path.join(paths["prepared"], "validation"),
            "--output-dir", paths["baseline"],
        ],
        logs,
        timings,
    )  # fmt: skip

    with open(os.path.join(paths["evaluation"], evaluate.EVALUATION_FILE), encoding="utf-8") as handle:
        report = json.load(handle)
    if champion is not None:
        # What the audit checks of a registered version in AWS: its evidence as registered, and its test set.
        warnings = [*warnings, *(f"champion v{champion.version}: {p}"
                                 for p in [*champion.evidence_problems(), *champion.split_problems()])]
        judged = ((champion.record.get("lineage") or {}).get("data") or {}).get("test_set_sha256")
        # A set Prepare re-froze this run replaced the one the champion was judged on: compare with that one.
        frozen_before = ((prepare_summary.get("test_set_refreeze") or {}).get("previous_test_set") or {}).get("sha256")
        if judged and refrozen and judged != frozen_before:
            warnings.append(f"champion v{champion.version} was judged on test set {judged}, not on the {frozen_before} "
                            "Prepare re-froze this run: the frozen test set was replaced before")
        elif judged and not refrozen and judged != report["test_set"]["sha256"]:
            warnings.append(f"champion v{champion.version} was judged on test set {judged}, this run on "
                            f"{report['test_set']['sha256']}: the frozen test set was replaced since")
    with open(os.path.join(curate_logs, "curate_summary.json"), encoding="utf-8") as handle:
        curate_summary = json.load(handle)
    passed = bool(report["gate"]["passed"])
    headline = report["challenger"]["metrics"]
    # The type's headline metrics and the one the gate judged on (a count model's deviance is no headline metric).
    metric_names = tuple(dict.fromkeys((*problem.HEADLINE_METRICS[spec.problem_type], spec.primary_metric)))
    version = None
    status = "NotRegistered (gate failed)"
    if passed:
        registered_dir = paths["model"]
        if compile_for_inferentia2:
            # The sealed archive, as the registry's ModelDataUrl names it in AWS.
            data_io.extract_tar_safely(report["artifact"]["uri"], paths["registered"])
            registered_dir = paths["registered"]
        registered = registry.register(
            name,
            registered_dir,
            evaluation=report,
            metrics={k: headline.get(k) for k in metric_names},
            # Both jobs' outputs as written, with their digests (the version's evidence, as the package's in AWS).
            artifacts={"baseline": paths["baseline"], "evaluation": paths["evaluation"]},
            lineage={
                "run_id": run_id,
                "environment": environment,
                "code_version": code_version(str(REPO_ROOT)),
                "data": {
                    # Your files or generated records: what the champion's replayed traffic must be drawn from.
                    "source": GENERATED if data is None else data,
                    **({"sha256": origin["sha256"]} if data is not None else {}),
                    "raw": paths["raw"],
                    "curated": paths["curated"],
                    "features": paths["features"],
                    "prepared": paths["prepared"],
                    "test_set_sha256": report["test_set"]["sha256"],
                    # Each split trained with and its digest as Prepare wrote it (ModelVersion.split_problems checks).
                    **{key: os.path.join(paths["prepared"], split) for split, key in SPLIT_PROPERTIES.items()},
                    **{key: prepare_summary["splits"][split]["sha256"] for split, key in SPLIT_SHA256_PROPERTIES.items()},
                },
                "parameters": {
                    "model_spec": spec.to_dict(),
                    **parameters,
                    "hyperparameters": (report["challenger"].get("model_info") or {}).get("hyperparameters"),
                    "gate": thresholds.to_dict(),
                },
                "champion_version": champion.version if champion else None,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            },
            description=f"{name} trained by local run {run_id}",
        )
        version = registered.version
        status = registered.status
        if registration_status(report, auto_approve=auto_approve) == approval.APPROVED:
            status = registry.approve(name, version, by=f"auto-approve ({environment})", comment="gate passed").status

    # What the run was, so runs.jsonl compares like with like: the data, the inputs, the trainer's settings, the gate.
    run_parameters = {
        **parameters,
        "features": list(spec.features),
        "hyperparameters": (report["challenger"].get("model_info") or {}).get("hyperparameters"),
        "gate": thresholds.to_dict(),
    }
    record = {
        "run_id": run_id,
        "group": name,
        "run_dir": run_dir,
        "version": version,
        "status": status,
        "gate_passed": passed,
        "gate_reasons": report["gate"]["reasons"],
        "champion_version": champion.version if champion else None,
        "test_set_sha256": report["test_set"]["sha256"],
        # Equal in two runs on the same data, code, configuration and training seed (docs/training.md "Reproducibility").
        "model_content_sha256": report["artifact"].get("model_content_sha256"),
        "frozen_test_set_created": frozen_created,
        "frozen_test_set_refrozen": refrozen,
        **({"test_set_refreeze_reason": prepare_summary["test_set_refreeze"]["reason"]} if refrozen else {}),
        "metrics": {k: headline.get(k) for k in metric_names},
        "champion_metrics": (
            {k: report["champion"]["metrics"].get(k) for k in metric_names} if report["champion"] else None
        ),
        "fairness": {
            k: report["challenger"]["fairness"].get(k)
            for k in ("demographic_parity_difference", "disparate_impact", "equal_opportunity_difference")
        },
        "data": {
            "source": source,
            **({"sha256": origin["sha256"]} if data is not None else {}),
            "rows_in": rows_in,
            "curated_rows": curate_summary.get("curated_rows"),
            "quarantined_rows": curate_summary.get("quarantined_rows"),
            "quarantine_reasons": curate_summary.get("quarantine_reasons"),
            "notes": notes,
        },
        "parameters": run_parameters,
        "warnings": warnings,
        "timings_s": timings,
        "report": report,
    }
    registry.log_run({k: v for k, v in record.items() if k != "report"})
    return record


def tuning_warning(environment: str, env: Mapping[str, Any], framework: str, spec: Any) -> Optional[str]:
    """What a local run says when its environment tunes the model (``training.hyperparameter_tuning``): the pipeline
    would run a tuning job - the model's ranges (``env["tuning_ranges"]``: its ``tuning_ranges`` over the framework's),
    the environment's budget and strategy (``training.tuning``) - and register its best job; the local run trains once,
    with the trainer's defaults of the hyperparameters the tuning job searches (the config may not set them there),
    and says which of those lie outside the range searched; None when nothing is tuned."""
    from pipeline_code.core import hyperparameters

    training = env.get("training") or {}
    searched = hyperparameters.tuning_ranges(framework, env.get("tuning_ranges") or {})
    if not searched or not training.get("hyperparameter_tuning"):
        return None
    budget = training["tuning"]
    ranges = ", ".join(f"{name} {low:g} to {high:g}" for name, _, low, high, _ in searched)
    how = f"{budget['strategy']}, {budget['max_jobs']} training jobs, {budget['max_parallel_jobs']} at a time"
    known = hyperparameters.of(framework)
    defaults = ", ".join(f"{name}={known[name].default:g}" for name, *_ in searched)
    outside = [f"{name}={known[name].default:g}" for name, _, low, high, _ in searched
               if not low <= known[name].default <= high]
    return (f"{environment} tunes {spec.name} (training.hyperparameter_tuning: its pipeline searches {ranges} ({how}) and "
            f"registers the job best on validation {problem.label(spec.primary_metric)}); this local run does not tune: it "
            f"trained once with {defaults}" + (f" ({', '.join(outside)} outside the range searched)" if outside else "")
            + ", so its metrics are not the tuned model's")


def registration_status(report: Mapping[str, Any], *, auto_approve: bool) -> str:
    """The status a passing version is registered with, by the pipeline's rule
    (:func:`pipeline_code.core.approval.status_to_register`): Approved when the environment auto-approves, unless the
    evaluation found the callers' contract changes (``registration.contract_change``) or could not compare the
    challenger with the serving champion (``registration.champion_not_compared``); PendingManualApproval otherwise.
    This run's own request decides what may be approved: a report never turns a Pending request into Approved."""
    requested = approval.APPROVED if auto_approve else approval.PENDING
    registration = report.get(REGISTRATION_KEY) or {}
    return approval.status_to_register(requested, registration.get("contract_change"),
                                       registration.get("champion_not_compared"))


def _freeze_test_set(prepared_test: str, frozen_dir: str, *, replace: bool = False, replaced_dir: str = "") -> bool:
    """Persist the first run's test set as the model's frozen test set, or with ``replace`` (Prepare re-froze a stale
    one) this run's in its place, as the pipeline's Prepare output overwrites the set's objects; True when created now
    (not when replaced). The replaced set is moved to ``replaced_dir``/<version>-<sha256 prefix>/, as the artifacts
    bucket keeps it as an old object version."""
    from pipeline_code.training import data_io

    created = data_io.is_empty_dir(frozen_dir)
    if not created and not replace:
        return False
    if not created:
        manifest = data_io.read_json(os.path.join(frozen_dir, MANIFEST_FILE), what="frozen test set")
        os.makedirs(replaced_dir, exist_ok=True)
        shutil.move(frozen_dir, os.path.join(replaced_dir, f"{manifest.get('version')}-{str(manifest.get('sha256'))[:12]}"))
    os.makedirs(frozen_dir, exist_ok=True)
    for name in os.listdir(prepared_test):
        shutil.copyfile(os.path.join(prepared_test, name), os.path.join(frozen_dir, name))
    return created


def print_record(record: Mapping[str, Any], out: Any = None) -> None:
    from pipeline_code.training.evaluate import summary_lines

    out = out or sys.stdout
    timings = " | ".join(f"{k} {v:.1f}s" for k, v in record["timings_s"].items())
    print(f"\n== {record['group']}  run {record['run_id']} ==", file=out)
    print(f"stages: {timings}", file=out)
    data = record["data"]
    print(
        f"data: {data['rows_in']} rows ({data['source']}{', sha256 ' + data['sha256'][:12] if data.get('sha256') else ''}), "
        f"{data['curated_rows']} curated, "
        f"{data['quarantined_rows']} quarantined; frozen test set "
        f"{'created' if record['frozen_test_set_created'] else 're-frozen' if record.get('frozen_test_set_refrozen') else 'reused'}",
        file=out,
    )
    if record.get("test_set_refreeze_reason"):
        print(f"note: re-froze the test set: {record['test_set_refreeze_reason']}", file=out)
    if data.get("quarantine_reasons"):
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(data["quarantine_reasons"].items()))
        print(f"quarantine reasons: {reasons}", file=out)
    for note in data.get("notes") or ():
        print(f"note: {note}", file=out)
    for warning in record.get("warnings") or ():
        print(f"WARNING: {warning}", file=out)
    for line in summary_lines(record["report"]):
        if not line.startswith("evaluation-"):  # the metric-definition line, for SageMaker
            print(line, file=out)
    if record["version"] is not None:
        print(f"decision: registered {record['group']} v{record['version']} -> {record['status']}", file=out)
        if record["status"] == approval.PENDING:
            print(f"  a person decides: python -m mlops_cli.local.registry approve|reject --workdir <this run's --workdir> "
                  f"--model {record['group']} --version {record['version']} --comment \"<why>\"", file=out)
    else:
        print("decision: gate failed -> not registered (run kept in runs.jsonl)", file=out)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=".local-run", help="state directory (default %(default)s)")
    parser.add_argument("--rows", type=int, default=20_000, help="raw rows generated per model (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7,
                        help="seed of the generated data (default %(default)s); the trainer's is --training-seed")
    parser.add_argument("--training-seed", type=_seed, default=None,
                        help="the trainer's seed for this run (default: the model's configured hyperparameters.seed, "
                        "else the trainer's default: the seed the pipeline trains with)")
    parser.add_argument("--days", type=positive_int, default=GENERATED_DAYS,
                        help=f"days of event times the generated records span, from {GENERATED_START} (default "
                        "%(default)s; fewer days, fewer event-date partitions for the ETL job to write)")
    parser.add_argument("--model", action="append", default=None, help="model to run (repeatable; default: all of the environment)")
    parser.add_argument("--drift", type=float, default=0.0, help="input drift in [0, 1] (default 0)")
    parser.add_argument("--concept-drift", type=float, default=0.0, help="label-relationship drift in [0, 1] (default 0)")
    parser.add_argument("--bad-record-rate", type=float, default=0.01, help="share of corrupted raw rows (default 0.01)")
    parser.add_argument("--positive-rate", type=float, default=None,
                        help="share of positive labels generated for a dataset without a hand-written simulator "
                        "(default: the dataset's sample_positive_rate, else 0.2; e.g. 0.02 for a rare event)")
    parser.add_argument("--no-auto-approve", action="store_true", help="leave passing versions PendingManualApproval")
    parser.add_argument("--environment", default="dev", help="environment of the YAML for gate/auto-approve (default dev)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="configuration file (default: MLOPS_LOOP_CONFIG's file, else "
                        "config/mlops-loop.yaml)")
    parser.add_argument("--num-round", type=int, default=None,
                        help="override an XGBoost model's training rounds (default: train.py's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override a PyTorch model's training epochs (default: train_torch.py's)")
    parser.add_argument("--data", action="append", default=[], metavar="DATASET=PATH",
                        help="your raw records of a declared dataset instead of generated ones: a CSV, Parquet or "
                        "JSON Lines file, a directory or a glob (repeatable, one per dataset)")
    parser.add_argument("--labels", action="append", default=[], metavar="DATASET=PATH",
                        help="label files of a dataset given with --data (record identifier + label columns), joined "
                        "to its records by record identifier (repeatable, one per dataset)")
    parser.add_argument("--verbose", action="store_true", help="show the ETL/feature jobs' INFO logs")
    return parser


def _seed(text: str) -> int:
    from pipeline_code.core.frameworks import XGBOOST as framework
    from pipeline_code.core.hyperparameters import of

    return of(framework)["seed"].parse(text)  # the trainers' own bounds (both frameworks': an int >= 0)


def training_args(config: Mapping[str, Any], name: str, *, num_round: Optional[int] = None,
                  epochs: Optional[int] = None, training_seed: Optional[int] = None) -> List[str]:
    """The trainer flags of model ``name`` in a local run: the config's hyperparameters (the pipeline's; a setting the
    config leaves out is the trainer's default, which the pipeline passes too), then this run's overrides, each last
    so it wins: ``num_round`` (XGBoost), ``epochs`` (PyTorch), ``training_seed`` (both; default: the configured seed,
    so a local run trains as the pipeline does whatever the data seed)."""
    framework = config["frameworks"][name]
    overrides = {XGBOOST: ["--num-round", str(num_round)] if num_round else [],
                 PYTORCH: ["--epochs", str(epochs)] if epochs else []}[framework]
    if training_seed is not None:
        overrides = [*overrides, *_hyperparameter_flag(framework, "seed", training_seed)]
    return [*config["hyperparameters"][name], *overrides]


def run(argv: Optional[Sequence[str]] = None, *, out: Any = None,
        curated: Optional[Dict[Any, Dict[str, str]]] = None) -> List[Dict[str, Any]]:
    """Parse ``argv``, run every selected model, print the summaries; return the run records.

    ``curated`` (:func:`shared_curation`'s mapping; by default a new one: each dataset's records are curated once per
    call) is what the caller's own jobs curated already, e.g. the replay's window of records its retraining reads again,
    and is added to: a run whose landed raw records are byte for byte one of those reads its curated records and
    features instead of running the Glue and feature jobs again."""
    args = build_parser().parse_args(argv)
    config = load_config(args.config, args.environment)
    env = config["environment"]
    models = args.model or list(env.get("models") or config["models"])
    unknown = [m for m in models if m not in config["models"]]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; configured: {sorted(config['models'])}")
    data, labels = own_files(args.data, args.labels, {config["models"][m]["dataset"]["name"] for m in models})
    auto_approve = bool((env.get("training") or {}).get("auto_approve", False)) and not args.no_auto_approve
    workdir = os.path.abspath(args.workdir)
    registry = LocalRegistry(os.path.join(workdir, "registry"))
    train_args = {name: training_args(config, name, num_round=args.num_round, epochs=args.epochs,
                                      training_seed=args.training_seed) for name in models}

    import logging

    from pipeline_code.job_runtime import LOG, configure_logging, start_spark

    configure_logging()  # the jobs' log handler binds to the real stdout, before any capture
    if not args.verbose:
        LOG.setLevel(logging.WARNING)  # job summaries are written to each run's logs/ anyway
    runtime = start_spark("mlops-loop-local-run", {}, glue=False)  # one session for every model
    runtime.spark.sparkContext.setLogLevel("ERROR")
    records = []
    if curated is None:
        curated = {}  # each dataset's records curated once per invocation: run_model
    try:
        for name in models:
            record = run_model(
                name,
                config["models"][name],
                {**env, "gate": config["gates"][name], "tuning_ranges": config["tuning_ranges"][name]},
                workdir=workdir,
                registry=registry,
                rows=args.rows,
                seed=args.seed,
                drift=args.drift,
                concept_drift=args.concept_drift,
                bad_record_rate=args.bad_record_rate,
                auto_approve=auto_approve,
                train_args=train_args[name],
                framework=config["frameworks"][name],
                compile_for_inferentia2=config["compiled"][name],
                environment=args.environment,
                project=config["project"],
                data=data.get(config["models"][name]["dataset"]["name"]),
                labels=labels.get(config["models"][name]["dataset"]["name"]),
                positive_rate=args.positive_rate,
                days=args.days,
                curated=curated,
            )
            print_record(record, out)
            records.append(record)
    finally:
        runtime.stop()
    return records


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        run(argv)
    except (StageFailed, ValueError, FileExistsError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
