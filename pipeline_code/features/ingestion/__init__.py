"""The parts of the feature job (:mod:`pipeline_code.features.ingest`, its Glue script and ``python -m`` entry):
:mod:`.writer` (the Feature Store writer), :mod:`.plan` (incremental ingestion: digests, state, plan),
:mod:`.pandas_engine` and :mod:`.spark_engine` (the two engines), :mod:`.run` (what the engines share).
Nothing is imported here: each engine imports only what it runs."""
