"""Feature computation (:mod:`.compute`) and Feature Store ingestion (:mod:`.ingest`)."""
