"""Scenario configurations the tests synthesize, independent of the user's ``config/mlops-loop.yaml``.

``sample.yaml`` is a frozen copy of the shipped sample config: snapshots and the derived scenarios
(``modes``, ``pooled``) are built from it, so a user who adds, renames or removes a model in their own
config does not break the suite. Update it (and the snapshots) only when the scenario itself should change.
"""

from pathlib import Path

SAMPLE_CONFIG = Path(__file__).with_name("sample.yaml")
