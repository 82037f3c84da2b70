"""Deterministic sample data for every dataset in :mod:`pipeline_code.catalog`.

See :mod:`pipeline_code.sample_data.generate` for the generator and its CLI.
"""
