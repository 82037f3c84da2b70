"""The local, AWS-free twin of the loop: a directory model registry and the one-command local run.

* :mod:`.registry` - model package groups, versions with approval status, artifacts,
  evaluation reports, lineage and a ``runs.jsonl`` experiment log;
* :mod:`.run_loop` - generate -> Spark ETL -> features -> prepare -> train -> evaluate ->
  gate -> register, using the same job entry points as Glue and SageMaker;
* :mod:`.user_data` - your own files (CSV, Parquet, JSON Lines) checked against the dataset declaration;
* :mod:`.replay` - a window of traffic replayed through a registered model, as data capture + labels;
* :mod:`.replay_loop` - replay -> monitor -> the real retrain guard -> a new run, the loop closed locally;
* :mod:`.declare` - a dataset's declaration as the jobs read it (``--dataset``).
"""
