"""Features are defined once: the synthesized FeatureGroups, the catalog and the job's output agree.

This is the one test that crosses the infra/job boundary on purpose: it reads the FeatureGroups
from the synthesized templates and runs the real feature computation on generated data.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline_code.catalog import FRACTIONAL, INTEGRAL
from tests.support.datasets import DATASETS
from pipeline_code.features.compute import compute_features
from pipeline_code.sample_data.generate import generate
from tests.support import datasets as samples
from tests.support.paths import live_project

# How each Feature Store type must look in the frame the feature job writes/puts.
_DTYPE_CHECK = {
    INTEGRAL: lambda s: str(s.dtype) == "Int64",
    FRACTIONAL: lambda s: str(s.dtype) == "float64",
    "String": lambda s: s.dtype == object and s.dropna().map(type).eq(str).all(),
}


# Physical names start with the configured project (a user renames it first).
PROJECT = live_project()


def _synthesized_groups(synthesized, env: str) -> dict[str, list[tuple[str, str]]]:
    groups = {}
    for group in synthesized.resources(env, "Storage", "AWS::SageMaker::FeatureGroup").values():
        props = group["Properties"]
        groups[props["FeatureGroupName"]] = [(d["FeatureName"], d["FeatureType"]) for d in props["FeatureDefinitions"]]
    return groups


@pytest.mark.parametrize("dataset_name", sorted(DATASETS))
def test_feature_group_catalog_and_computed_frame_agree(synthesized, dataset_name):
    """GIVEN the prod FeatureGroup synthesized for a dataset
    WHEN the feature job computes features from generated curated data
    THEN the frame's columns, order and types are exactly the FeatureGroup's definitions."""
    dataset = DATASETS[dataset_name]
    definitions = _synthesized_groups(synthesized, "prod")[f"{PROJECT}-prod-{dataset_name.replace('_', '-')}"]
    assert definitions == list(dataset.feature_store_definitions())

    curated = generate(samples.get_dataset(dataset_name), 500, seed=11)
    frame = compute_features(curated, dataset)
    assert list(frame.columns) == [name for name, _ in definitions]
    for name, feature_type in definitions:
        assert _DTYPE_CHECK[feature_type](frame[name]), (name, feature_type, frame[name].dtype)
    # Event time is an ISO-8601 UTC string, as Feature Store requires for a String event time.
    assert frame[dataset.event_time].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all()
    assert len(frame) == len(curated)


def test_every_model_in_every_environment_uses_features_its_feature_group_has(synthesized):
    for env_name, env in synthesized.config.environments.items():
        groups = _synthesized_groups(synthesized, env_name)
        for model in synthesized.config.models_of(env):
            group = groups[f"{PROJECT}-{env_name}-{model.dataset.replace('_', '-')}"]
            names = {n for n, _ in group}
            assert set(model.features) | {model.sensitive_attribute, *model.slices} <= names, (env_name, model.name)


def test_a_type_mismatch_would_be_caught():
    """The dtype checks above are not vacuous: a float column fails the Integral check."""
    assert not _DTYPE_CHECK[INTEGRAL](pd.Series([1.0, 2.0]))
    assert not _DTYPE_CHECK["String"](pd.Series([1, 2], dtype=object))
