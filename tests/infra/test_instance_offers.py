"""Instance types a region does not offer for a use fail synth, one line per field (mlops_loop/config/instance_offers.py).

The table here is the tests' own (eu-west-1 offering a few types per use), so no test depends on what the shipped
table holds; the shipped table is only checked for shape."""

from __future__ import annotations

import json
import re

import pytest

from mlops_loop.config import ConfigError, parse_config
from mlops_loop.config import cross_checks
from mlops_loop.config.instance_offers import OFFERS_PATH, RegionOffers, definition_instance_types, load_offers, parse_offers
from tests.support.construct_configs import returns_config

PRICE_LIST = "(AWS Price List 20261201000000, published 2026-12-01T00:00:00Z)"
EU_WEST_1 = RegionOffers(
    region="eu-west-1",
    source="https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonSageMaker/20261201000000/eu-west-1/index.csv",
    offer_version="20261201000000",
    publication_date="2026-12-01T00:00:00Z",
    sha256="0" * 64,
    types={
        "training": frozenset({"ml.m5.xlarge", "ml.m5.2xlarge", "ml.p9.unknown"}),
        "processing": frozenset({"ml.m5.xlarge"}),
        "hosting": frozenset({"ml.m5.large", "ml.m5.xlarge", "ml.inf2.xlarge"}),
    },
)


@pytest.fixture()
def offered(monkeypatch):
    """GIVEN the tests' table: eu-west-1 only."""
    monkeypatch.setattr(cross_checks, "load_offers", lambda: {"eu-west-1": EU_WEST_1})


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(raw, source="test config")
    return error.value.problems


def test_a_type_the_region_offers_for_every_use_passes(offered):
    config = parse_config(returns_config({"mode": "realtime", "realtime": {"instance_type": "ml.m5.xlarge"}}),
                          source="test config")
    assert config.environments["dev"].region == "eu-west-1"


def test_a_hosting_type_the_region_does_not_offer_fails_naming_the_field_the_use_and_what_is_offered(offered):
    """GIVEN an environment override serving on ml.c5.xlarge WHEN the config is read THEN one line names the
    environment, the field as the file names it, the region, the types offered that the app sizes (not the
    table's unknown ones) and the Price List it comes from."""
    problems = _problems(returns_config({"mode": "realtime", "realtime": {"instance_type": "ml.c5.xlarge"}}))
    assert problems == [
        "environment 'dev': field 'serving.returns.realtime.instance_type': ml.c5.xlarge is not offered for hosting in "
        f"eu-west-1; offered: ml.inf2.xlarge, ml.m5.large, ml.m5.xlarge {PRICE_LIST}"]


def test_training_processing_and_a_models_own_serving_block_are_named_as_the_file_names_them(offered):
    raw = returns_config(model_serving={"mode": "async", "async": {"instance_type": "ml.c5.2xlarge"}},
                         training={"instance_type": "ml.c5.xlarge", "processing_instance_type": "ml.m5.large"})
    assert _problems(raw) == [
        f"environment 'dev': field 'training.instance_type': ml.c5.xlarge is not offered for training in eu-west-1; "
        f"offered: ml.m5.2xlarge, ml.m5.xlarge {PRICE_LIST}",
        f"environment 'dev': field 'training.processing_instance_type': ml.m5.large is not offered for processing in "
        f"eu-west-1; offered: ml.m5.xlarge {PRICE_LIST}",
        f"environment 'dev': model 'returns': field 'serving.async.instance_type': ml.c5.2xlarge is not offered for "
        f"hosting in eu-west-1; offered: ml.inf2.xlarge, ml.m5.large, ml.m5.xlarge {PRICE_LIST}",
    ]


def test_an_override_that_leaves_the_type_alone_names_the_models_own_field(offered):
    """GIVEN a model served on ml.c5.xlarge by its own block and an environment override of its capture only WHEN
    the config is read THEN the line names the model's field (the override holds no instance type)."""
    raw = returns_config({"data_capture_percent": 50},
                         model_serving={"mode": "realtime", "realtime": {"instance_type": "ml.c5.xlarge"}})
    assert _problems(raw) == [
        "environment 'dev': model 'returns': field 'serving.realtime.instance_type': ml.c5.xlarge is not offered for "
        f"hosting in eu-west-1; offered: ml.inf2.xlarge, ml.m5.large, ml.m5.xlarge {PRICE_LIST}"]


def test_a_per_model_training_type_and_a_shared_endpoint_in_use_are_checked_and_an_unused_endpoint_is_not(offered):
    """GIVEN a per-model training type, a multi-model endpoint the model is served on and one no model uses (as
    one inherited from defaults would be) WHEN the config is read THEN the first two are refused, each on its
    field, and the unused endpoint (which is not built) is not."""
    raw = returns_config({"mode": "multi_model", "multi_model": {"endpoint": "shared"}},
                         training={"instance_types": {"returns": "ml.c5.xlarge"}},
                         multi_model_endpoints={"shared": {"instance_type": "ml.c5.xlarge"},
                                                "spare": {"instance_type": "ml.c5.2xlarge"}})
    assert _problems(raw) == [
        "environment 'dev': field 'training.instance_types.returns': ml.c5.xlarge is not offered for training in "
        f"eu-west-1; offered: ml.m5.2xlarge, ml.m5.xlarge {PRICE_LIST}",
        "environment 'dev': field 'multi_model_endpoints.shared.instance_type': ml.c5.xlarge is not offered for "
        f"hosting in eu-west-1; offered: ml.inf2.xlarge, ml.m5.large, ml.m5.xlarge {PRICE_LIST}",
    ]


def test_a_region_the_table_does_not_hold_and_batch_transform_are_not_checked(offered):
    """GIVEN a region absent from the table, and in eu-west-1 a batch model WHEN the config is read THEN neither
    is refused: nothing is known about the first, and the table does not cover transform jobs."""
    elsewhere = returns_config({"mode": "realtime", "realtime": {"instance_type": "ml.c5.xlarge"}})
    elsewhere["environments"]["dev"]["region"] = "us-east-1"
    parse_config(elsewhere, source="test config")
    parse_config(returns_config({"mode": "batch", "batch": {"instance_type": "ml.c5.xlarge"}}), source="test config")


def test_the_shipped_table_is_well_formed_and_says_where_it_comes_from():
    document = json.loads(OFFERS_PATH.read_text())
    assert "python -m mlops_cli.instance_offers" in document["about"] and "AmazonSageMaker" in document["about"]
    for region, offers in load_offers().items():
        assert offers.source.endswith(f"/{region}/index.csv") and all(offers.types.values()), region


def test_a_table_entry_missing_a_field_is_refused_naming_it():
    with pytest.raises(ValueError, match=re.escape("t.json: region 'eu-west-1': missing sha256, hosting")):
        parse_offers({"regions": {"eu-west-1": {"source": "s", "offer_version": "v", "publication_date": "d",
                                                "training": [], "processing": []}}}, source="t.json")


def test_a_definition_yields_each_type_its_steps_run_on_with_the_use_of_the_place_it_is_given():
    """GIVEN a definition whose steps take types from parameters (one parameter in two steps, one parameter no step
    uses, one named for training but given to a processing step), a literal type inside a condition's branch, a
    tuning job and a transform WHEN its types are listed THEN each comes once with where it is and the use of the
    place it is given; the transform's and the unused parameter's are not listed."""
    definition = {
        "Parameters": [{"Name": "TrainingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
                       {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.large"},
                       {"Name": "UnusedInstanceType", "Type": "String", "DefaultValue": "ml.c5.xlarge"},
                       {"Name": "TrainingInstanceCount", "Type": "Integer", "DefaultValue": 1}],
        "Steps": [
            {"Name": "Train", "Type": "Training", "Arguments": {"ResourceConfig": {
                "InstanceType": {"Get": "Parameters.TrainingInstanceType"}, "InstanceCount": 1}}},
            {"Name": "Prepare", "Type": "Processing", "Arguments": {"ProcessingResources": {"ClusterConfig": {
                "InstanceType": {"Get": "Parameters.ProcessingInstanceType"}}}}},
            {"Name": "Check", "Type": "Condition", "Arguments": {"IfSteps": [
                {"Name": "Compile", "Type": "Processing", "Arguments": {"ProcessingResources": {"ClusterConfig": {
                    "InstanceType": "ml.c5.xlarge"}}}},
                {"Name": "Evaluate", "Type": "Processing", "Arguments": {"ProcessingResources": {"ClusterConfig": {
                    "InstanceType": {"Get": "Parameters.ProcessingInstanceType"}}}}},
                {"Name": "Odd", "Type": "Processing", "Arguments": {"ProcessingResources": {"ClusterConfig": {
                    "InstanceType": {"Get": "Parameters.TrainingInstanceType"}}}}}], "ElseSteps": []}},
            {"Name": "Score", "Type": "Transform", "Arguments": {"TransformResources": {"InstanceType": "ml.m5.large"}}},
            {"Name": "Tune", "Type": "Tuning", "Arguments": {"TrainingJobDefinition": {"ResourceConfig": {
                "InstanceType": "ml.g5.xlarge"}}}},
        ],
    }
    assert list(definition_instance_types(json.dumps(definition))) == [
        ("parameter TrainingInstanceType", "training", "ml.m5.xlarge"),
        ("parameter ProcessingInstanceType", "processing", "ml.m5.large"),
        ("step Compile", "processing", "ml.c5.xlarge"),
        ("parameter TrainingInstanceType", "processing", "ml.m5.xlarge"),
        ("step Tune", "training", "ml.g5.xlarge"),
    ]
