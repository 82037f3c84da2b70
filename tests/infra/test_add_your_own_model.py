"""docs/add-your-own-model.md's "Add your own model" walk-through, step by step: a new dataset and model through configuration
alone synthesize clean and run through the local loop on the user's files.

The config is the frozen sample plus exactly the blocks of docs/add-your-own-model.md, so this is also the proof that adding a
model to the sample config leaves the app synthesizing clean (cfn-lint, both nag packs). Its dev environment is
synthesized with the problem-type models too (tests/support/added_models.py: one synth for both modules).
"""

from __future__ import annotations

import io

import pytest

from mlops_loop.config import ConfigError, parse_config
from mlops_loop.tools.cloud_assembly import stacks
from mlops_loop.tools.lint import lint_cache, lint_stacks
from mlops_cli.local import run_loop
from mlops_cli.local.registry import LocalRegistry
from pipeline_code.sample_data.generate import generate

from tests.support.added_models import ADDED_MODELS, added_models_config
from tests.support.local_run import DAYS, lenient_local_run
from tests.support import docs
from tests.support.walkthrough import config_with_walkthrough, run_arguments


@pytest.fixture(scope="module")
def walkthrough():
    """GIVEN the sample config with the walk-through's dataset and model blocks added WHEN it is loaded."""
    return parse_config(config_with_walkthrough(), source="walk-through config")


@pytest.fixture(scope="module")
def dev_assembly(synthesize_once):
    """WHEN its dev environment (which the walk-through adds the model to) is synthesized, nag packs on (once per
    test run: raises on any unacknowledged cdk-nag finding). Together with the problem-type models
    (tests.support.added_models): the tests here read only what the walk-through's model adds, by name."""
    return list(stacks(synthesize_once(ADDED_MODELS, added_models_config(), ["dev"])))


def test_step_2_the_model_is_trained_on_the_declared_dataset(walkthrough):
    model = walkthrough.models["fraud"]
    dataset = walkthrough.datasets["transactions"]
    assert model.catalog_dataset is dataset
    assert model.job_spec()["dataset"] == dataset.to_declaration()
    assert dataset.feature("amount_per_transaction_24h").feature_type == "Fractional"  # inferred, never written


def test_step_4_the_new_model_synthesizes_clean_with_its_own_resources(dev_assembly):
    # THEN cfn-lint finds nothing, and the model has its feature group, workflow, pipeline and registry group
    result = lint_stacks(dev_assembly, cache=lint_cache())
    assert (result.errors, result.warnings) == (0, 0), result.lines
    resources = [r for s in dev_assembly for r in s.template["Resources"].values()]
    names = {(r["Type"], r["Properties"].get(key)) for r in resources
             for key in ("FeatureGroupName", "PipelineName", "ModelPackageGroupName", "Name") if key in r.get("Properties", {})}
    assert ("AWS::SageMaker::FeatureGroup", "mlops-loop-dev-transactions") in names
    assert ("AWS::Glue::Job", "mlops-loop-dev-transactions-curate") in names
    assert ("AWS::SageMaker::Pipeline", "mlops-loop-dev-fraud-training") in names
    assert ("AWS::SageMaker::ModelPackageGroup", "mlops-loop-dev-fraud") in names


@pytest.mark.parametrize("mistake, line", [
    (lambda raw: raw["datasets"]["transactions"]["features"].update(amount_per_transaction_24h="ratio(amount, transactions_1h)"),
     "dataset 'transactions': field 'features.amount_per_transaction_24h.expr': reads unknown column 'transactions_1h'; "
     "allowed: transaction_id, event_time, amount, "),
    (lambda raw: raw["datasets"]["transactions"]["columns"]["channel"].update(allowed=["chip", "contactless", "Online", "phone"]),
     "dataset 'transactions': field 'columns.channel.allowed': ['Online'] are not in normal form; values are trimmed and "
     "lower-cased before they are checked, so write ['online']"),
    (lambda raw: raw["models"]["fraud"].update(target="fraud"),
     "model 'fraud': field 'target': 'fraud' is not a label of dataset 'transactions'; allowed: is_fraud"),
])
def test_the_readme_example_mistakes_read_as_the_readme_shows(mistake, line):
    raw = config_with_walkthrough()
    mistake(raw)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    (problem,) = caught.value.problems
    assert problem.startswith(line)
    assert problem[:100] in docs.section("## Add your own model").text  # the walk-through shows this very line


@pytest.mark.spark
@pytest.mark.slow
def test_step_3_the_local_run_takes_the_users_files(walkthrough, spark, tmp_path):
    # GIVEN the user's transactions as CSV, Parquet and JSON Lines files (~2 % fraud, over ten days), one of them with
    # a column the declaration does not know and one bad record
    dataset = walkthrough.datasets["transactions"]
    records = generate(dataset, 6000, seed=5, positive_rate=0.02, as_text=True, days=int(DAYS))
    files = tmp_path / "data" / "transactions"
    files.mkdir(parents=True)
    first, second, third = records.iloc[:2000].copy(), records.iloc[2000:4000], records.iloc[4000:]
    first["loaded_by"] = "export-job"
    first.loc[first.index[0], "amount"] = "a lot"
    first.to_csv(files / "part-1.csv", index=False)
    second.to_json(files / "part-2.jsonl", orient="records", lines=True)
    third.to_parquet(files / "part-3.parquet", index=False)
    # WHEN step 3 runs as the walk-through writes it, pointed at those files
    arguments = [a.replace("data/transactions/*.csv", f"{files}/*") for a in run_arguments()]
    out = io.StringIO()
    with lenient_local_run(tmp_path, raw=config_with_walkthrough()) as path:
        (record,) = run_loop.run([*arguments, "--config", path, "--workdir", str(tmp_path / "run"), "--num-round", "30"],
                                 out=out)
    # THEN every record went through the real ETL: the bad one is quarantined with its reason, the rest trained on
    assert record["data"]["rows_in"] == 6000
    assert record["data"]["quarantined_rows"] == 1
    assert record["data"]["quarantine_reasons"] == {"amount: not a number": 1}
    printed = out.getvalue()
    assert "6000 rows (3 file(s) from" in printed and "quarantine reasons: amount: not a number 1" in printed
    assert f"note: {files / 'part-1.csv'}: column(s) ['loaded_by'] not declared for 'transactions', ignored" in printed
    assert record["report"]["challenger"]["metrics"]["auc"] > 0.65
    assert record["warnings"] == [] and "WARNING" not in printed  # every categorical generalises to the test records
    # AND the version registered says it was trained on those files (a replay of its traffic must be drawn from them)
    version = LocalRegistry(str(tmp_path / "run" / "registry")).get(record["group"], record["version"])
    assert version.record["lineage"]["data"]["source"] == f"{files}/*"
    # AND its record keeps only the parameters that applied (the generator's drift and error rate did not), with what
    # makes runs comparable: the inputs, the trainer's settings, the gate, and the files' content hash
    assert set(record["parameters"]) == {"seed", "features", "hyperparameters", "gate"}
    assert len(record["data"]["sha256"]) == 64
    assert set(version.record["lineage"]["parameters"]) == {"model_spec", "seed", "hyperparameters", "gate"}

