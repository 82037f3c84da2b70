"""The local, AWS-free twin of the loop: a directory model registry and the one-command local run.

* :mod:`.registry` - model package groups, versions with approval status, artifacts,
  evaluation reports, lineage and a ``runs.jsonl`` experiment log;
* :mod:`.run_loop` - generate -> Spark ETL -> features -> prepare -> train -> evaluate ->
  gate -> register, using the same job entry points as Glue and SageMaker.
"""
