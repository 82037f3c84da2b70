"""Datasets declared in configuration: one clear line per mistake at synth, naming the dataset and the field.

The declarations are parsed by ``pipeline_code.catalog.parse_dataset`` (the code path every job uses); the
loader reports each problem as ``dataset '<name>': field '<path>': <message>``.
"""

from __future__ import annotations

import pytest
import yaml

from mlops_loop.config import ConfigError, ModelConfig, parse_config
from pipeline_code import catalog
from pipeline_code.training.spec import SpecError, parse_model_spec



# The sample churn declaration's columns, in order: what an "allowed:" list of them reads.
# How a column name that is not one is refused (a message of its own then says what to write).
NAME_RULE = ("names must be lower-case letters, digits and '_' (at most 64), starting with a letter (the Glue Data "
             "Catalog lower-cases column names)")
COLUMNS = ("customer_id, event_time, tenure_months, monthly_charges, total_charges, contract_type, payment_method, "
           "support_calls_90d, region, gender, churned")


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def churn(raw: dict) -> dict:
    return raw["datasets"]["customer_churn"]


def test_a_declared_dataset_is_the_contract_every_job_reads(raw):
    # GIVEN the sample declaration WHEN the config loads
    config = parse_config(raw)
    dataset = config.datasets["customer_churn"]
    # THEN types are inferred from the expressions, columns keep their declared order and constraints
    assert dataset.feature("avg_charge_per_month").feature_type == catalog.FRACTIONAL
    assert dataset.feature("tenure_months").feature_type == catalog.INTEGRAL
    assert dataset.feature("contract_type").feature_type == catalog.FS_STRING
    assert [c.name for c in dataset.columns][:3] == ["customer_id", "event_time", "tenure_months"]
    assert dataset.column("tenure_months") == catalog.Column("tenure_months", catalog.INTEGER, nullable=False,
                                                             minimum=0, maximum=600)
    # AND the model carries the whole declaration to its jobs, which read it back equal
    spec = config.models["churn"].job_spec()
    assert catalog.load_dataset(spec["dataset"]) == dataset


def test_a_model_built_around_the_loader_has_no_dataset_and_says_so():
    """GIVEN a ModelConfig not built by load_config (no dataset resolved) WHEN its dataset is asked THEN it
    raises, naming the one builder (synth runs with python -O, so this is a raise, not an assert)."""
    with pytest.raises(RuntimeError, match=r"^ModelConfig is only built by mlops_loop\.config\.load_config$"):
        ModelConfig.model_construct().catalog_dataset


@pytest.mark.parametrize(
    "mistake, expected",
    [
        (lambda d: d["columns"]["tenure_months"].update(type="int"),
         "dataset 'customer_churn': field 'columns.tenure_months.type': 'int' is not a column type; allowed: string, "
         "integer, double, timestamp, boolean, date"),
        (lambda d: d["columns"]["tenure_months"].update(min="0"),
         "dataset 'customer_churn': field 'columns.tenure_months.min': must be a number, got '0'"),
        (lambda d: d["columns"]["tenure_months"].update(min=700),
         "dataset 'customer_churn': field 'columns.tenure_months.min': 700.0 is above max 600.0"),
        (lambda d: d["columns"]["region"].update(allowed=["North", "south"]),
         "dataset 'customer_churn': field 'columns.region.allowed': ['North'] are not in normal form; values are "
         "trimmed and lower-cased before they are checked, so write ['north']"),
        (lambda d: d["columns"]["tenure_months"].update(allowed=["1"]),
         "dataset 'customer_churn': field 'columns.tenure_months.allowed': only string columns have allowed values"),
        (lambda d: d["columns"]["region"].update(nulable=False),
         "dataset 'customer_churn': field 'columns.region.nulable': unknown field; allowed: type, nullable, min, max, "
         "allowed, description, source"),
        # source: the export's header text of a column, when it is not the column's name.
        (lambda d: d["columns"]["tenure_months"].update(source="  "),
         "dataset 'customer_churn': field 'columns.tenure_months.source': must be the header text the files give the "
         "column (e.g. 'Tenure (months)'), a non-empty string; got '  '"),
        (lambda d: d["columns"]["tenure_months"].update(source=12),
         "dataset 'customer_churn': field 'columns.tenure_months.source': must be the header text the files give the "
         "column (e.g. 'Tenure (months)'), a non-empty string; got 12"),
        (lambda d: (d["columns"]["tenure_months"].update(source="Months"),
                    d["columns"]["support_calls_90d"].update(source=" months")),
         "dataset 'customer_churn': field 'columns.support_calls_90d.source': ' months' is also the header of column "
         "'tenure_months' (its source 'Months'); headers are compared trimmed and in any case, and each column is read "
         "from a header of its own"),
        (lambda d: d["columns"]["tenure_months"].update(source="Region"),
         "dataset 'customer_churn': field 'columns.tenure_months.source': 'Region' is also the header of column "
         "'region' (its name); headers are compared trimmed and in any case, and each column is read from a header of "
         "its own"),
        (lambda d: d["columns"].update({'Region': "string"}),
         f"dataset 'customer_churn': field 'columns.Region': {NAME_RULE}"
         "; declare it as 'region' with source: 'Region', the header the files give it (they keep it)"),
        # An export's headers as a spreadsheet or a warehouse writes them: spaces, dots, accents, a leading digit.
        (lambda d: d["columns"].update({'Policy ID': "string"}),
         f"dataset 'customer_churn': field 'columns.Policy ID': {NAME_RULE}"
         "; declare it as 'policy_id' with source: 'Policy ID', the header the files give it (they keep it)"),
        (lambda d: d["columns"].update({'Vehicle.Model': "string"}),
         f"dataset 'customer_churn': field 'columns.Vehicle.Model': {NAME_RULE}"
         "; declare it as 'vehicle_model' with source: 'Vehicle.Model', the header the files give it (they keep it)"),
        (lambda d: d["columns"].update({"Région d'origine": "string"}),
         f"dataset 'customer_churn': field 'columns.Région d'origine': {NAME_RULE}; declare it as 'region_d_origine' "
         "with source: \"Région d'origine\", the header the files give it (they keep it)"),
        (lambda d: d["columns"].update({'2nd Driver Age': "integer"}),
         f"dataset 'customer_churn': field 'columns.2nd Driver Age': {NAME_RULE}"
         "; declare it as 'c_2nd_driver_age' with source: '2nd Driver Age', the header the files give it (they keep "
         "it)"),
        (lambda d: d["columns"].update({'€': "string"}),
         f"dataset 'customer_churn': field 'columns.€': {NAME_RULE}"
         "; name it and give source: '€', the header the files give it"),
        (lambda d: d.update(event_time="signup_time"),
         f"dataset 'customer_churn': field 'event_time': 'signup_time' must name a declared column; allowed: {COLUMNS}"),
        (lambda d: d.update(event_time="tenure_months"),
         "dataset 'customer_churn': field 'event_time': column 'tenure_months' must have type timestamp"),
        (lambda d: d["columns"]["customer_id"].pop("nullable"),
         "dataset 'customer_churn': field 'columns.customer_id.nullable': the record identifier must be declared "
         "nullable: false"),
        (lambda d: d.update(labels=["churned", "cancelled"]),
         f"dataset 'customer_churn': field 'labels': 'cancelled' is not a declared column; allowed: {COLUMNS}"),
        (lambda d: d["features"].update(tenure_years="ratio(tenure_month, 12)"),
         "dataset 'customer_churn': field 'features.tenure_years.expr': ratio takes columns or expressions, not "
         "literals"),
        (lambda d: d["features"].update(tenure_sqrt="sqrt(tenure_months)"),
         "dataset 'customer_churn': field 'features.tenure_sqrt.expr': unknown operator 'sqrt'; allowed: col, ratio, "
         "log1p, clip, coalesce, bucket, product, days_since"),
        (lambda d: d["features"].update(calls_per_month="ratio(support_calls, tenure_months)"),
         f"dataset 'customer_churn': field 'features.calls_per_month.expr': reads unknown column 'support_calls'; "
         f"allowed: {COLUMNS}"),
        (lambda d: d["features"].update(odd="log1p(region)"),
         "dataset 'customer_churn': field 'features.odd.expr': log1p needs numbers but region is text"),
        (lambda d: d["features"].update(when="event_time"),
         "dataset 'customer_churn': field 'features.when.expr': reads the event time 'event_time', which says when a "
         "record happened, not what it describes; days_since(<a date or timestamp column>) counts the days from "
         "another column to it"),
        # days_since: a date or timestamp column, one, by name; not the event time itself
        (lambda d: d["features"].update(x="days_since(region)"),
         "dataset 'customer_churn': field 'features.x.expr': days_since needs a date or timestamp column, but 'region' "
         "is a string column; declare it type: date (yyyy-MM-dd) or type: timestamp"),
        (lambda d: d["features"].update(x="days_since(tenure_months)"),
         "dataset 'customer_churn': field 'features.x.expr': days_since needs a date or timestamp column, but "
         "'tenure_months' is an integer column; declare it type: date (yyyy-MM-dd) or type: timestamp"),
        (lambda d: d["features"].update(x="days_since(licence_issued)"),
         f"dataset 'customer_churn': field 'features.x.expr': reads unknown column 'licence_issued'; allowed: {COLUMNS}"),
        (lambda d: (d["columns"].update(licence_issued="date"), d["features"].update(x="days_since(licence_issued, event_time)")),
         "dataset 'customer_churn': field 'features.x.expr': days_since takes 1 argument(s), got 2"),
        (lambda d: d["features"].update(x="days_since()"),
         "dataset 'customer_churn': field 'features.x.expr': days_since takes 1 argument(s), got 0"),
        (lambda d: d["features"].update(x="days_since(event_time)"),
         "dataset 'customer_churn': field 'features.x.expr': reads the event time 'event_time', which says when a "
         "record happened, not what it describes; days_since(<a date or timestamp column>) counts the days from "
         "another column to it"),
        (lambda d: (d["columns"].update(licence_issued="date"), d["features"].update(x="days_since(log1p(licence_issued))")),
         "dataset 'customer_churn': field 'features.x.expr': days_since takes a column name, got log1p(licence_issued): "
         "write days_since(<date or timestamp column>), and put it inside other operators instead "
         "(clip(days_since(x), 0, 3650))"),
        (lambda d: (d["columns"].update(licence_issued="date"), d["features"].update(x="licence_issued")),
         "dataset 'customer_churn': field 'features.x.expr': reads date column 'licence_issued' as a value; a date is "
         "no feature value: days_since(licence_issued) gives the whole days from it to the record's event time"),
        (lambda d: (d["columns"].update(signup={"type": "timestamp"}), d["features"].update(x="ratio(signup, tenure_months)")),
         "dataset 'customer_churn': field 'features.x.expr': reads timestamp column 'signup' as a value; a timestamp is "
         "no feature value: days_since(signup) gives the whole days from it to the record's event time"),
        (lambda d: d["columns"].update(licence_issued={"type": "date", "min": 0}),
         "dataset 'customer_churn': field 'columns.licence_issued.min': only integer and double columns have bounds"),
        (lambda d: d["features"].update(who="customer_id"),
         "dataset 'customer_churn': field 'features.who.expr': reads the record identifier 'customer_id', which names "
         "a record instead of describing it (a model would learn the training ids); use other columns, or, when an "
         "entity's identity is a real signal, a column of its own with allowed values"),
        (lambda d: d["columns"]["region"].update(allowed=["north", True]),
         "dataset 'customer_churn': field 'columns.region.allowed': must be a non-empty list of quoted strings; YAML "
         "read allowed[1] as the boolean True: quote yes/no/true/false/on/off"),
        (lambda d: d["features"].update(leak="log1p(churned)"),
         "dataset 'customer_churn': field 'features.leak.expr': reads label 'churned' (target leakage)"),
        (lambda d: d["features"].update(churned="tenure_months"),
         "dataset 'customer_churn': field 'features.churned': has the name of a label (target leakage); rename the "
         "feature"),
        (lambda d: d["features"].update(write_time="tenure_months"),
         "dataset 'customer_churn': field 'features.write_time': names must be lower-case letters, digits and '_' "
         "(at most 64), starting with a letter, and not one of the Feature Store's reserved names is_deleted, "
         "write_time, api_invocation_time"),
        (lambda d: d["features"].update({"Log Charges": "log1p(monthly_charges)"}),
         "dataset 'customer_churn': field 'features.Log Charges': names must be lower-case letters, digits and '_' "
         "(at most 64), starting with a letter, and not one of the Feature Store's reserved names is_deleted, "
         "write_time, api_invocation_time; write 'log_charges'"),
        (lambda d: d["features"].update(tenure_months={"expr": "tenure_months", "type": "Fractional"}),
         "dataset 'customer_churn': field 'features.tenure_months.type': declared Fractional but tenure_months "
         "yields Integral; write type: Integral or leave it out"),
        (lambda d: d["features"].update(x={"expr": "clip(tenure_months, 0.5, 24)", "type": "Integral"}),
         "dataset 'customer_churn': field 'features.x.type': declared Integral but clip(tenure_months, 0.5, 24) "
         "yields Fractional; write type: Fractional or leave it out"),
        (lambda d: d["features"].update(x="__import__('os').system('true')"),
         "dataset 'customer_churn': field 'features.x.expr': unknown operator \"__import__('os').system\"; allowed: "
         "col, ratio, log1p, clip, coalesce, bucket, product, days_since"),
        (lambda d: d.update(sample_positive_rate=1.5),
         "dataset 'customer_churn': field 'sample_positive_rate': 1.5 must be a number between 0 and 1 (exclusive), "
         "the share of positive labels in generated sample data, e.g. 0.02 for a rare event"),
        (lambda d: d.update(sample_positive_rate=True),
         "dataset 'customer_churn': field 'sample_positive_rate': True must be a number between 0 and 1 (exclusive), "
         "the share of positive labels in generated sample data, e.g. 0.02 for a rare event"),
        (lambda d: (d.update(sample_positive_rate=0.02), d["columns"]["churned"].update(max=3)),
         "dataset 'customer_churn': field 'sample_positive_rate': only a binary label (a boolean, or an integer with "
         "min: 0 and max: 1) has a positive rate; remove it or declare such a label"),
        (lambda d: d["features"].update(x="tenure_months * 2"),
         "dataset 'customer_churn': field 'features.x.expr': 'tenure_months * 2' is not allowed in a feature "
         "expression (operators, column names, numbers, quoted labels and lists only)"),
    ],
)
def test_each_declaration_mistake_is_one_line_naming_the_dataset_and_field(raw, mistake, expected):
    mistake(churn(raw))
    assert problems_of(raw) == [expected]


def test_a_model_on_an_undeclared_dataset_names_the_section_to_declare_it_in(raw):
    raw["models"]["churn"]["dataset"] = "subscribers"
    assert problems_of(raw) == [
        "model 'churn': field 'dataset': unknown dataset 'subscribers'; allowed: credit_risk, customer_churn — "
        "declare it under 'datasets'"
    ]


def test_a_broken_dataset_is_reported_once_not_again_by_every_model_on_it(raw):
    churn(raw)["labels"] = []
    assert problems_of(raw) == ["dataset 'customer_churn': field 'labels': must be a non-empty list of column names"]


def test_a_model_target_that_is_not_a_label_of_the_declared_dataset(raw):
    raw["models"]["churn"]["target"] = "tenure_months"
    assert problems_of(raw) == [
        "model 'churn': field 'target': 'tenure_months' is not a label of dataset 'customer_churn'; allowed: churned"
    ]


@pytest.mark.parametrize("label, shape", [
    ({"type": "integer", "min": 0, "max": 3}, "integer in [0, 3]"),
    ({"type": "string", "allowed": ["stayed", "left"]}, "string"),
    ({"type": "double"}, "double"),
])
def test_a_target_that_is_not_binary_fails_synth_not_the_first_pipeline_run(raw, label, shape):
    churn(raw)["columns"]["churned"] = label
    assert problems_of(raw) == [
        f"model 'churn': field 'target': column 'churned' is {shape}; a binary target is a boolean column or an "
        "integer column declared with min: 0 and max: 1 (or declare problem_type: multiclass_classification or regression)"
    ]


@pytest.mark.parametrize("problem_type, label, message", [
    ("multiclass_classification", {"type": "double"},
     "column 'churned' is double; a multiclass target is a string column with 'allowed' values or an integer column "
     "with min and max (its classes)"),
    ("multiclass_classification", {"type": "string", "allowed": ["stayed", "left"]},
     "column 'churned' has 2 classes; a multiclass target has at least 3 (two classes: declare problem_type: "
     "binary_classification with a boolean or 0/1 target)"),
    ("multiclass_classification", {"type": "integer", "min": 0, "max": 100},
     "column 'churned' has 101 classes; a multiclass target has at most 100"),
    ("regression", {"type": "string", "allowed": ["a", "b", "c"]},
     "column 'churned' is string; a regression target is an integer or double column"),
])
def test_a_target_that_does_not_fit_the_declared_problem_type_fails_synth(raw, problem_type, label, message):
    churn(raw)["columns"]["churned"] = label
    raw["models"]["churn"]["problem_type"] = problem_type
    assert problems_of(raw) == [f"model 'churn': field 'target': {message}"]


@pytest.mark.parametrize("problem_type, label", [
    ("multiclass_classification", {"type": "string", "allowed": ["stayed", "paused", "left"]}),
    ("multiclass_classification", {"type": "integer", "min": 1, "max": 5}),
    ("regression", {"type": "double", "min": 0}),
    ("regression", {"type": "integer"}),
])
def test_a_multiclass_or_regression_target_is_accepted_and_reaches_the_job_spec(raw, problem_type, label):
    churn(raw)["columns"]["churned"] = label
    raw["models"]["churn"]["problem_type"] = problem_type
    spec = parse_config(raw).models["churn"].job_spec()
    assert spec["problem_type"] == problem_type
    assert parse_model_spec(spec).problem_type == problem_type


@pytest.mark.parametrize("change, message", [
    ({"problem_type": "ranking"}, "field 'problem_type': Input should be 'binary_classification', "
                                  "'multiclass_classification' or 'regression' (got 'ranking')"),
    ({"primary_metric": "r2"}, "field 'primary_metric': 'r2' is not a metric of a binary_classification model; allowed: "
                               "auc, pr_auc, log_loss, f1"),
    ({"min_quality": True}, "field 'min_quality': must be a number, not the boolean true"),
    ({"gate": {"min_disparate_impact": 1.5}}, "field 'gate.min_disparate_impact': Input should be less than or equal to 1 "
                                              "(got 1.5)"),
    ({"gate": {"min_aucc": 0.8}}, "field 'gate.min_aucc': unknown field; check the spelling against the documented fields "
                                  "(docs/configuration.md: Configuration)"),
])
def test_a_problem_type_mistake_names_the_field_and_the_allowed_values(raw, change, message):
    raw["models"]["churn"].update(change)
    assert problems_of(raw) == [f"model 'churn': {message}"]


def test_decision_and_class_weight_are_refused_for_a_model_that_is_not_binary(raw):
    churn(raw)["columns"]["churned"] = {"type": "double"}
    raw["models"]["churn"].update(problem_type="regression", class_weight="balanced")
    assert problems_of(raw) == [
        "model 'churn': field 'class_weight': applies to binary_classification models only (this one is regression); "
        "remove it"
    ]


def test_a_models_gate_overrides_the_environments_keys_it_names_only(raw):
    raw["models"]["churn"]["gate"] = {"min_disparate_impact": 0.6}
    config = parse_config(raw)
    environment_gate = config.environments["dev"].gate
    gate = config.models["churn"].gate_in(environment_gate)
    assert gate.min_disparate_impact == 0.6
    assert gate.model_dump() == {**environment_gate.model_dump(), "min_disparate_impact": 0.6}
    assert config.models["credit-risk"].gate_in(environment_gate) is environment_gate


def test_a_date_column_feeds_a_days_since_feature_of_type_integral_that_reaches_the_job_spec(raw):
    # GIVEN a date column and a feature counting the days from it to each record's event time
    churn(raw)["columns"]["contract_start"] = {"type": "date", "description": "when the contract began"}
    churn(raw)["features"]["contract_age_days"] = "days_since(contract_start)"
    raw["models"]["churn"]["features"].append("contract_age_days")
    # WHEN the config is parsed
    model = parse_config(raw).models["churn"]
    # THEN the feature is an Integral one reading the date column and the event time, and the declaration round-trips
    ds = catalog.parse_dataset("customer_churn", churn(raw))
    feature = ds.feature("contract_age_days")
    assert (feature.feature_type, feature.expr.source_columns(), feature.expr.reads_event_time()) == (
        catalog.INTEGRAL, ("contract_start",), True)
    assert ds.column("contract_start").dtype == catalog.DATE
    assert catalog.parse_dataset("customer_churn", ds.to_declaration()) == ds
    assert "contract_age_days" in model.features


def test_a_config_without_datasets_says_where_they_go(raw):
    del raw["datasets"]
    problems = problems_of(raw)
    assert "top-level key 'datasets' must be a non-empty mapping of name -> settings" in problems


@pytest.mark.parametrize("text", [
    "tenure_months",
    "ratio(coalesce(total_charges, product(monthly_charges, tenure_months)), tenure_months)",
    'bucket(applicant_age, [25.0, 40.0, 60.0], ["18-24", "25-39", "40-59", "60+"])',
    "clip(num_open_accounts, 0.0, 50.0)",
    "clip(balance, -100.0, 100.0)",
    "days_since(licence_issued)",
    "clip(days_since(licence_issued), 0.0, 3650.0)",
])
def test_expressions_round_trip_through_their_text_form(text):
    assert catalog.format_expression(catalog.parse_expression(text)) == text


# A raw request and precomputed features are told apart by the feature names an object holds (docs/invocation-
# contract.md "Which one?"): a model whose features all have raw column names must not transform one of them.
def _shadow_message(dataset: str, listed: str, renamed: str, plural: bool = False) -> str:
    it = "them" if plural else "it"
    return (f"every feature has the name of a raw column of dataset {dataset!r}, so serving reads a raw request, which "
            f"holds those columns, as precomputed features: the model would score the raw "
            f"{'values' if plural else 'value'} of {listed} instead of computing {it} as training did; rename {it} "
            f"(e.g. {renamed}) or add to the model a feature whose name is not a column")


def test_a_model_whose_features_all_have_column_names_may_not_transform_one_of_them(raw):
    # GIVEN a model whose features are all named like raw columns, one of them a transformed column
    raw["models"]["churn"]["features"] = ["tenure_months", "monthly_charges", "total_charges", "contract_type"]
    # WHEN the config loads THEN it is refused, naming the model, the feature, its expression and the fix
    assert problems_of(raw) == ["model 'churn': field 'features': " + _shadow_message(
        "customer_churn", "'total_charges' = coalesce(total_charges, product(monthly_charges, tenure_months))",
        "'total_charges' to 'total_charges_filled'")]


def test_every_transformed_column_of_such_a_model_is_named(raw):
    churn(raw)["features"]["tenure_months"] = "clip(tenure_months, 0, 120)"
    raw["models"]["churn"]["features"] = ["tenure_months", "monthly_charges", "total_charges"]
    assert problems_of(raw) == ["model 'churn': field 'features': " + _shadow_message(
        "customer_churn", "'tenure_months' = clip(tenure_months, 0.0, 120.0), "
        "'total_charges' = coalesce(total_charges, product(monthly_charges, tenure_months))",
        "'tenure_months' to 'tenure_months_clipped'", plural=True)]


def test_a_feature_named_like_one_column_reading_another_is_a_transformed_column(raw):
    # GIVEN monthly_charges read from another column: a raw request's monthly_charges is not that feature
    churn(raw)["features"]["monthly_charges"] = "total_charges"
    raw["models"]["churn"]["features"] = ["tenure_months", "monthly_charges"]
    assert problems_of(raw) == ["model 'churn': field 'features': " + _shadow_message(
        "customer_churn", "'monthly_charges' = total_charges", "'monthly_charges' to 'monthly_charges_feature'")]


def test_a_sensitive_attribute_or_slice_such_a_model_reads_by_name_may_not_transform_its_column(raw):
    # GIVEN a model of columns as they are, whose sensitive attribute (read by name with them) transforms its column
    churn(raw)["features"]["gender"] = "coalesce(gender, region)"
    raw["models"]["churn"]["features"] = ["tenure_months", "monthly_charges", "contract_type"]
    assert problems_of(raw) == ["model 'churn': field 'features': " + _shadow_message(
        "customer_churn", "'gender' = coalesce(gender, region)", "'gender' to 'gender_filled'")]


def test_the_local_run_refuses_such_a_model_as_synth_does(raw, tmp_path):
    from mlops_cli.local import run_loop

    raw["models"]["churn"]["features"] = ["tenure_months", "monthly_charges", "total_charges"]
    path = tmp_path / "mlops-loop.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"model 'churn': field 'features': every feature has the name of a raw column "
                                          r"of dataset 'customer_churn'"):
        run_loop.load_config(str(path), "dev")


@pytest.mark.parametrize("features, gender", [
    # Columns as they are: a raw request read as precomputed gives the model the same values.
    (["tenure_months", "monthly_charges", "contract_type", "region"], "gender"),
    # Transformed columns beside a feature named like no column (as the sample's models have them): a raw request
    # lacks that feature, so it is computed, sensitive attribute included.
    (["tenure_months", "total_charges", "avg_charge_per_month"], "coalesce(gender, region)"),
])
def test_a_model_a_raw_request_cannot_be_mistaken_for_is_accepted(raw, features, gender):
    churn(raw)["features"]["gender"] = gender
    raw["models"]["churn"]["features"] = features
    assert parse_config(raw).models["churn"].features == tuple(features)


def test_a_job_spec_of_such_a_model_is_refused_by_every_job(raw):
    """GIVEN a model spec written by hand (not by the loader) WHEN a job reads it THEN it is refused as synth refuses."""
    spec = parse_config(raw).models["churn"].job_spec()
    spec["features"] = ["tenure_months", "monthly_charges", "total_charges"]
    with pytest.raises(SpecError) as caught:
        parse_model_spec(spec)
    assert str(caught.value) == "invalid --model-spec for model 'churn': features: " + _shadow_message(
        "customer_churn", "'total_charges' = coalesce(total_charges, product(monthly_charges, tenure_months))",
        "'total_charges' to 'total_charges_filled'")


def test_the_catalog_names_the_features_that_transform_a_column_of_their_name():
    # GIVEN a dataset with a column as it is, a transformed column, a column read under another's name and a feature
    # named like no column
    ds = catalog.parse_dataset("payments", {
        "record_identifier": "payment_id", "event_time": "event_time", "labels": ["fraud"],
        "columns": {"payment_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
                    "amount": {"type": "double"}, "fee": {"type": "double"}, "channel": "string",
                    "fraud": {"type": "integer", "min": 0, "max": 1}},
        "features": {"amount": "log1p(amount)", "fee": "amount", "channel": "channel", "log_fee": "log1p(fee)"},
    })
    # THEN the features that transform a column of their name are those two, in the order asked
    assert ds.shadowing_features(["log_fee", "fee", "channel", "amount"]) == ("fee", "amount")
    # AND a model of them alone is refused, naming both; with a feature named like no column, or of channel alone, not
    assert ds.raw_request_problem(["amount", "fee", "channel"]) == _shadow_message(
        "payments", "'amount' = log1p(amount), 'fee' = amount", "'amount' to 'amount_log1p'", plural=True)
    assert ds.raw_request_problem(["amount", "fee", "log_fee"]) is None
    assert ds.raw_request_problem(["channel"]) is None
    # AND a model of channel whose extra (sensitive attribute, slice) transforms its column is refused too
    assert ds.raw_request_problem(["channel"], ["amount", "log_fee"]) == _shadow_message(
        "payments", "'amount' = log1p(amount)", "'amount' to 'amount_log1p'")


def _wide_orders(features: int) -> dict:
    """The construct tests' one-model config whose dataset ``orders`` declares ``features`` more numeric features."""
    from tests.support.construct_configs import returns_config

    raw = returns_config()
    orders = raw["datasets"]["orders"] = {**raw["datasets"]["orders"]}
    orders["columns"] = {**orders["columns"], **{f"x{i:04d}": {"type": "double"} for i in range(features)}}
    orders["features"] = {**orders["features"], **{f"x{i:04d}": f"x{i:04d}" for i in range(features)}}
    return raw


def test_a_dataset_of_more_features_than_a_feature_group_holds_is_refused_at_synth_naming_the_limit_and_the_fix():
    # GIVEN a dataset whose features with its record identifier and event time are 2,501 Feature Store definitions
    # (CreateFeatureGroup takes at most 2,500: the deploy of the Storage stack would fail)
    raw = _wide_orders(2497)
    # WHEN the config is loaded THEN it is refused, naming the dataset, the field, the count, the limit and the fix
    assert problems_of(raw) == [
        "dataset 'orders': field 'features': 2,499 features with the record identifier and the event time make 2,501 "
        "Feature Store definitions, over the 2,500 a feature group holds (CreateFeatureGroup's limit): the deploy "
        "would fail; declare at most 2,498 features, e.g. split them over two datasets of the same records (each is "
        "its own feature group)"]


def test_a_dataset_of_as_many_features_as_a_feature_group_holds_is_accepted():
    parse_config(_wide_orders(2496))


def _visits(column: str, feature: str) -> dict:
    """A dataset of its own (none of the sample's models reads it): a ``column`` and a ``feature`` of it."""
    return {"record_identifier": "visit_id", "event_time": "event_time", "labels": ["bought"],
            "columns": {"visit_id": {"type": "string", "nullable": False},
                        "event_time": {"type": "timestamp", "nullable": False},
                        column: "double", "pages": "double", "bought": {"type": "integer", "min": 0, "max": 1}},
            "features": {feature: f"log1p({column})", "pages": "pages"}}


# Each key serving's requests give a role of their own, in the words the refusal of a column or feature of its name uses.
REQUEST_KEY_ROLES = {
    "instances": 'the key of the request envelope {"instances": [...]}, which serving reads before any field of that '
                 "name",
    "inference_id": "a record's own id, which serving reads (and echoes in its answer) instead of a feature of that name",
    "inference_time": "a record's own request time, which the drift monitor reads instead of a feature of that name",
    **{key: "provenance the by-id front writes into each record it sends, over any field of that name"
       for key in ("entity_id", "feature_source", "feature_event_time", "feature_lookup")},
    "score": "the model's score, which the drift monitor reads from the capture into a column of that name, over the "
             "field",
    "answered_by": "the version that answered, which the drift monitor reads from the capture into a column of that "
                   "name, over the field",
    "label": "the ground truth the drift monitor joins to each request as a column of that name, which the field would "
             "stand in for",
    "label_time": "the ground truth's time the drift monitor joins to each request as a column of that name, which the "
                  "field would stand in for",
}


@pytest.mark.parametrize("name", sorted(REQUEST_KEY_ROLES))
def test_a_column_or_feature_named_like_a_key_of_serving_requests_is_refused_naming_the_dataset_and_the_fix(raw, name):
    # GIVEN a dataset with a column a feature reads and a feature, each named like a key serving's requests or the
    # monitor's request frames use for something else (a single-object JSON request {"instances": 3, ...} was read as
    # an envelope and answered 400; a feature named score was measured on the model's output)
    visits = raw["datasets"]["visits"] = _visits(name, f"log_{name}")
    visits["features"][name] = "pages"
    # WHEN the config is loaded THEN both are refused, naming the dataset, the field, the key's role and the fix
    assert problems_of(raw) == [
        f"dataset 'visits': field 'columns.{name}': {name!r} is reserved in requests: {REQUEST_KEY_ROLES[name]}; "
        f"declare the column as '{name}_value' with source: '{name}', the header the files give it (they keep it), and "
        "read it by that name in the features",
        f"dataset 'visits': field 'features.{name}': {name!r} is reserved in requests: {REQUEST_KEY_ROLES[name]}; "
        f"rename the feature, e.g. '{name}_value'",
    ]


def test_a_nullable_event_time_is_refused_naming_the_column_and_why(raw):
    """GIVEN a dataset whose event time may be blank WHEN the config is loaded THEN it is refused: a curated record
    without its time had no place in time (the feature store refuses it, the point-in-time join cannot place it), and
    the curate job's partition of no date was overwritten, its earlier rows lost, by the next run curating another."""
    visits = raw["datasets"]["visits"] = _visits("pages_seen", "log_pages_seen")
    visits["columns"]["event_time"] = {"type": "timestamp"}
    assert problems_of(raw) == [
        "dataset 'visits': field 'columns.event_time.nullable': the event time must be declared nullable: false (a "
        "record without one is quarantined, as the feature store and the point-in-time join need it)"]


def test_a_label_column_whose_header_is_label_is_told_the_name_it_may_take(raw):
    """GIVEN a label column written as the export's header ``Label`` WHEN the config is loaded THEN the refusal suggests
    ``label`` (a label no feature reads may take a reserved name), not nothing."""
    visits = raw["datasets"]["visits"] = _visits("pages_seen", "log_pages_seen")
    visits["columns"]["Label"] = visits["columns"].pop("bought")
    visits["labels"] = ["Label"]
    assert problems_of(raw)[0] == (
        "dataset 'visits': field 'columns.Label': names must be lower-case letters, digits and '_' (at most 64), starting "
        "with a letter (the Glue Data Catalog lower-cases column names); declare it as 'label' with source: 'Label', the "
        "header the files give it (they keep it)")


@pytest.mark.parametrize("role", ["record_identifier", "labels"])
def test_a_key_or_label_column_no_feature_reads_may_take_a_reserved_name(raw, role):
    """GIVEN a record identifier (e.g. ``entity_id``, a natural Feature Store name) or a label named like a reserved key,
    which no feature reads, so no request carries it WHEN the config is loaded THEN it is accepted."""
    name = {"record_identifier": "entity_id", "labels": "label"}[role]
    visits = raw["datasets"]["visits"] = _visits("pages_seen", "log_pages_seen")
    old = visits[role] if role == "record_identifier" else visits[role][0]
    visits["columns"][name] = visits["columns"].pop(old)
    visits[role] = name if role == "record_identifier" else [name]
    dataset = parse_config(raw).datasets["visits"]
    assert (dataset.record_identifier, dataset.labels) == (
        (name, ("bought",)) if role == "record_identifier" else ("visit_id", (name,)))


def test_a_column_of_another_name_read_from_a_header_named_like_a_request_key_is_accepted(raw):
    # GIVEN the fix the refusal names: the column under another name, read from the files' header "instances"
    visits = raw["datasets"]["visits"] = _visits("instances_value", "log_instances")
    visits["columns"]["instances_value"] = {"type": "double", "source": "instances"}
    # WHEN the config is loaded THEN the dataset is accepted, its column keeping its header
    assert parse_config(raw).datasets["visits"].column("instances_value").header == "instances"


def test_every_key_serving_reads_in_a_request_besides_its_fields_is_reserved():
    """GIVEN the keys serving and its by-id front give a role of their own: the request envelope (a single object holding
    it is read as an envelope, not as a record), a record's own id and time and the by-id front's provenance WHEN the
    catalog's reserved request keys are read THEN they are exactly those."""
    from pipeline_code.core.online_features import PROVENANCE_KEYS
    from pipeline_code.serving.errors import BadRequestError
    from pipeline_code.serving.records import META_KEYS
    from pipeline_code.serving.request_body import parse_request

    with pytest.raises(BadRequestError, match=r"^field 'instances' must be a list of records, got int$"):
        parse_request('{"instances": 3, "pages": 1}', "application/json")
    from pipeline_code.monitoring.capture import ANSWERED, SCORE
    from pipeline_code.monitoring.quality import LABEL, LABEL_TIME

    assert set(dict(catalog.REQUEST_KEYS)) == {"instances", *META_KEYS, *PROVENANCE_KEYS, SCORE, ANSWERED, LABEL,
                                               LABEL_TIME} == set(REQUEST_KEY_ROLES)
    assert dict(catalog.REQUEST_KEYS) == REQUEST_KEY_ROLES
