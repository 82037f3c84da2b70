"""Raw -> curated ETL: catalog-driven typing, validation, quarantine and de-duplication.

:mod:`pipeline_code.etl.curate` holds the pure PySpark transformation;
:mod:`pipeline_code.etl.glue_curate_job` is the Glue job entry point around it.
"""
