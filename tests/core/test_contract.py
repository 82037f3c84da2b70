"""The cross-boundary contract: its names, and that each of its facts is defined in it alone."""

from __future__ import annotations

import ast
import datetime as dt
import fnmatch
import re
import sys
from pathlib import Path

import pytest

from pipeline_code.core import contract
from pipeline_code.core.contract import (
    PACKAGE_ARN,
    endpoint_name,
    environment_prefix,
    monitor_metric,
    multi_model_endpoint_name,
    package_group_name,
    package_parameter_name,
    pascal,
    pipeline_name,
    region_of_arn,
    retrain_alarm_prefix,
    retraining_pause_parameter,
    retraining_paused_models_path,
    serving_stack_name,
    stack_name,
    target_model_parameter_name,
    version_of_arn,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT = REPO_ROOT / "pipeline_code" / "core" / "contract.py"
SOURCES = sorted(
    p for root in ("mlops_loop", "mlops_cli", "pipeline_code") for p in (REPO_ROOT / root).rglob("*.py") if p != CONTRACT
) + [REPO_ROOT / "app.py"]

# Values distinctive enough that a name, key or path holding one outside the contract is a second
# definition. Prose may mention them (an error message naming the file), so a literal with whitespace
# is not a definition.
DISTINCTIVE = (
    contract.EVALUATION_FILE, contract.MODEL_QUALITY_FILE, contract.BIAS_FILE, contract.EXPLAINABILITY_FILE,
    contract.STATISTICS_FILE, contract.CONSTRAINTS_FILE, contract.ATTRIBUTIONS_FILE, contract.GATE_PASSED_PATH,
    contract.VARIANT, contract.CAPTURE_URI_ENV, contract.CAPTURE_PERCENT_ENV,
    contract.CAPTURE_KMS_KEY_ENV, contract.CAPTURE_ENDPOINT_ENV,
)  # fmt: skip
# Metric names are CamelCase words that also occur inside other names: only an equal literal counts.
METRIC_NAMES = (contract.FEATURE_PSI_METRIC, *(m.name for m in contract.MONITOR_METRICS))
# The last piece of a derived name: a formatted string or concatenation ending in one derives a
# contract name again.
NAME_ENDINGS = ("-training", "-serving", "-mme-", "/target-model", contract.PACKAGE_PARAMETER_SUFFIX, "-retrain-",
                "/retraining", "/retraining/paused", "/retraining/paused-models", "/monitoring", "/rollout")


def _strings(tree: ast.AST) -> list[tuple[int, str, bool]]:
    """(line, value, inside a formatted string or concatenation) of every string literal except docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    built = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    built |= {id(side) for node in ast.walk(tree) if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
              for side in (node.left, node.right)}
    return [(node.lineno, node.value, id(node) in built) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_contract_fact_is_defined_a_second_time():
    """A literal or a derivation of a contract name anywhere else fails, naming the file and line to fix."""
    functions = {name for name, value in vars(contract).items() if callable(value) and getattr(value, "__module__", "") == contract.__name__}
    copies = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(REPO_ROOT).as_posix()
        for line, value, built in _strings(tree):
            if not any(c.isspace() for c in value):
                copies += [f"{where}:{line}: {fact!r}" for fact in DISTINCTIVE if fact in value]
            copies += [f"{where}:{line}: {value!r}" for name in METRIC_NAMES if value == name]
            if built:
                copies += [f"{where}:{line}: builds a name ending {end!r}" for end in NAME_ENDINGS if value.endswith(end)]
        copies += [f"{where}:{node.lineno}: defines {node.name}()" for node in ast.walk(tree)
                   if isinstance(node, ast.FunctionDef) and node.name in functions]
    assert not copies, "use pipeline_code.core.contract instead:\n" + "\n".join(copies)


def test_the_scan_finds_a_copy():
    """Non-vacuity: the scan sees a copied file name, a rebuilt parameter name and a redefined helper."""
    tree = ast.parse('"""evaluation.json in a docstring is fine."""\nX = "evaluation.json"\nY = f"{m}ModelPackageArn"\n')
    found = _strings(tree)
    assert (2, "evaluation.json", False) in found and (3, "ModelPackageArn", True) in found
    assert all(value != "evaluation.json in a docstring is fine." for _, value, _ in found)


def test_the_contract_uses_only_the_standard_library_and_the_core():
    tree = ast.parse(CONTRACT.read_text(), feature_version=(3, 9))
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    outside = {m for m in modules if m.split(".")[0] not in set(sys.stdlib_module_names) | {"__future__"}}
    assert all(m.startswith("pipeline_code.core.") for m in outside), outside


@pytest.mark.parametrize(
    "name, expected",
    [("churn", "Churn"), ("credit-risk", "CreditRisk"), ("customer_churn", "CustomerChurn"), ("fraud-v2-eu", "FraudV2Eu")],
)
def test_pascal(name, expected):
    assert pascal(name) == expected
    assert package_parameter_name(name) == f"{expected}ModelPackageArn"


def test_names_of_one_environment():
    prefix = environment_prefix("shop", "prod")
    assert prefix == "shop-prod"
    assert serving_stack_name(prefix) == stack_name(prefix, "serving") == "shop-prod-serving"
    assert package_group_name(prefix, "churn") == endpoint_name(prefix, "churn") == "shop-prod-churn"
    assert pipeline_name(prefix, "churn") == "shop-prod-churn-training"
    assert multi_model_endpoint_name(prefix, "shared") == "shop-prod-mme-shared"
    assert target_model_parameter_name(prefix, "churn") == "/shop-prod/serving/churn/target-model"
    assert retrain_alarm_prefix(prefix, "churn") == "shop-prod-churn-retrain-"
    assert retraining_pause_parameter(prefix) == "/shop-prod/retraining/paused"
    assert retraining_pause_parameter(prefix, "churn") == "/shop-prod/retraining/paused-models/churn"
    assert retraining_paused_models_path(prefix) == "/shop-prod/retraining/paused-models"
    assert contract.retraining_path(prefix) == "/shop-prod/retraining"
    assert contract.environment_stack_names(prefix) == {
        "storage": "shop-prod-storage", "data-pipeline": "shop-prod-data-pipeline", "training": "shop-prod-training",
        "serving": serving_stack_name(prefix), "operations": "shop-prod-operations"}
    assert contract.cfn_exec_role_arn("123456789012", "eu-west-1", "hnb659fds") == (
        "arn:aws:iam::123456789012:role/cdk-hnb659fds-cfn-exec-role-123456789012-eu-west-1")
    assert contract.cfn_exec_role_arn("123456789012", "us-east-1", "corp12345") == (
        "arn:aws:iam::123456789012:role/cdk-corp12345-cfn-exec-role-123456789012-us-east-1")


@pytest.mark.parametrize("model", ["paused", "paused-models", "churn"])
def test_no_models_pause_parameter_lies_below_the_environments_whatever_the_models_name(model):
    """The two switches are independent parameters: neither name is a hierarchy level of the other."""
    environment, own = retraining_pause_parameter("shop-prod"), retraining_pause_parameter("shop-prod", model)
    assert not own.startswith(environment + "/") and not environment.startswith(own + "/")


def test_package_arns():
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-prod-churn/7"
    assert PACKAGE_ARN.match(arn).groups() == ("shop-prod-churn", "7")
    assert version_of_arn(arn) == 7
    assert PACKAGE_ARN.match(arn.replace("/7", "")) is None and version_of_arn(arn.replace("/7", "")) is None
    assert version_of_arn("") is None


def test_monitor_metric_names_and_an_unknown_key():
    assert monitor_metric("auc_drop") == "AucDrop"
    assert len({m.key for m in contract.MONITOR_METRICS}) == len({m.name for m in contract.MONITOR_METRICS}) == len(contract.MONITOR_METRICS)
    with pytest.raises(KeyError, match="no monitor metric for report key 'auc_dropped'"):
        monitor_metric("auc_dropped")


def test_each_model_of_each_environment_has_its_own_monitor_namespace():
    """IAM conditions PutMetricData on the namespace only (not on dimensions): one namespace per project, environment
    and model is what lets a monitor role publish its own model's series and no other's."""
    assert contract.monitor_namespace("acme", "prod", "churn") == "acme/prod/churn/monitoring"
    names = [(p, e, m) for p in ("acme", "acme-x") for e in ("dev", "prod", "x-dev") for m in ("churn", "churn-dev", "x")]
    assert len({contract.monitor_namespace(*n) for n in names}) == len(names)  # '/' is in no name: no two collide
    assert contract.parity_namespace("acme-prod-churn") == "acme-prod-churn/rollout"


def _longest_name() -> int:
    """The longest project, environment or model name NAME_PATTERN allows (a first letter, then up to N more)."""
    more = re.search(r"\{1,(\d+)\}\$$", contract.NAME_PATTERN)
    assert more, contract.NAME_PATTERN
    return 1 + int(more.group(1))


def test_every_team_topic_name_the_names_allow_is_one_sns_accepts():
    """GIVEN project, environment and team names as long as the config allows (NAME_PATTERN, the names' only rule)
    WHEN a team's topic is named (<prefix>-<team>-notifications) THEN it is an SNS topic name (1-256 letters, digits,
    '-' and '_'): the loader needs no check of its own, and the handlers' check of TEAM_TOPICS accepts it."""
    from pipeline_code.handlers.team_topics import team_topics_setting

    longest = "a" * _longest_name()
    assert longest == re.match(contract.NAME_PATTERN, longest).group(0) and not re.match(contract.NAME_PATTERN, longest + "a")
    prefix = contract.environment_prefix(longest, longest)
    for team in (longest, "a-", "a9", longest[:-1] + "-"):
        name = contract.team_topic_name(prefix, team)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", name), name
        assert team_topics_setting(f'{{"{name}": ["g"]}}', ["g"], unknown="", topic_arn="arn:aws:sns:r:1:env",
                                   topic_variable="TOPIC_ARN") == {"g": f"arn:aws:sns:r:1:{name}"}


def test_the_longest_namespaces_the_names_allow_are_ones_cloudwatch_accepts():
    """GIVEN CloudWatch's own bound on a namespace (botocore's service model: PutMetricData's and PutMetricAlarm's
    Namespace) WHEN project, environment and model names are as long as the config allows (and an endpoint name as
    long as SageMaker allows) THEN every namespace the app builds fits, in CloudWatch's pattern: the config can never
    produce one CloudWatch refuses, so the loader needs no check of its own."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("cloudwatch").shape_for("Namespace")
    assert shape.metadata["max"] == contract.MAX_METRIC_NAMESPACE
    longest = "a" * _longest_name()
    assert longest == re.match(contract.NAME_PATTERN, longest).group(0) and not re.match(contract.NAME_PATTERN, longest + "a")
    built = [contract.monitor_namespace(longest, longest, longest), contract.serving_namespace(longest),
             contract.parity_namespace("a" * contract.MAX_NAME)]
    for namespace in built:
        assert 1 <= len(namespace) <= contract.MAX_METRIC_NAMESPACE and re.fullmatch(shape.metadata["pattern"], namespace)
        assert namespace.isascii() and namespace.isprintable() and not namespace.startswith("AWS/")
    assert len(built[0]) == 73


CREATED = dt.datetime(2026, 3, 1, 9, 59, 7, 123456, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("created, expected", [
    (CREATED, "20260301T095907Z"),
    (dt.datetime(2026, 3, 1, 10, 59, 7, tzinfo=dt.timezone(dt.timedelta(hours=1))), "20260301T095907Z"),
    (dt.datetime(2026, 3, 1, 9, 59, 7), "20260301T095907Z"),  # naive: UTC
    ("2026-03-01T09:59:07.5Z", "20260301T095907Z"),
    ("2026-03-01T09:59:07+00:00", "20260301T095907Z"),
    ("20260301T095907Z", "20260301T095907Z"),
])
def test_a_packages_creation_time_reads_the_same_whichever_form_it_comes_in(created, expected):
    # botocore gives a datetime, a ledger record an ISO text, a card or a key the stamp itself
    assert contract.package_created(created) == expected


@pytest.mark.parametrize("created", [None, "", "yesterday", 17])
def test_what_is_not_a_time_is_no_packages_creation_time(created):
    with pytest.raises(ValueError, match="package creation time .* is not"):
        contract.package_created(created)


@pytest.mark.parametrize("length", [2, 40, 41, 46, 50, 55, 56, 58, 60, 61, 62, 63])
def test_every_model_card_name_fits_sagemaker_and_the_groups_patterns_cover_it(length):
    # GIVEN a group of this length (group names are at most 63 characters)
    group = ("shop-prod-churn-risk-" * 4)[:length - 1] + "x"
    patterns = contract.model_card_name_patterns(group)
    exact = contract.model_card_name_regex(group)
    for version in (1, 9, 10, 99, 100, 1000, 12345, 999999):
        name = contract.model_card_name(group, version, CREATED)
        # THEN each version's card name is one SageMaker accepts (botocore's EntityName: 1-63 characters of this
        # pattern), unique to the version and the package's creation, and an IAM pattern of the group covers it (the
        # pipeline's and the approver's grants are these patterns), as does the teardown's regex
        assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), name
        assert name.endswith(f"-v{version}-20260301T095907Z")
        assert any(fnmatch.fnmatchcase(name, p) for p in patterns), (name, patterns)
        assert exact.fullmatch(name), name
        # AND so is the name a card of this version had before names carried the package's creation
        legacy = contract.legacy_model_card_name(group, version)
        assert any(fnmatch.fnmatchcase(legacy, p) for p in patterns) and exact.fullmatch(legacy), (legacy, patterns)
    # AND a group whose every version fits keeps one plain pattern
    if length <= 63 - len("-v999999-20260301T095907Z"):
        assert patterns == (f"{group}-v*",)


def test_a_re_created_groups_version_names_another_card_than_the_version_it_replaces():
    # GIVEN v1 of a group, the group deleted and created again, and its new v1 registered a year later
    old = contract.model_card_name("mlops-loop-prod-churn", 1, dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc))
    new = contract.model_card_name("mlops-loop-prod-churn", 1, dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))
    # THEN each has its own card
    assert (old, new) == ("mlops-loop-prod-churn-v1-20250301T000000Z", "mlops-loop-prod-churn-v1-20260301T000000Z")


def test_a_hashed_card_name_differs_between_groups_that_share_their_first_characters():
    first, second = "a" * 55 + "-first", "a" * 55 + "-other"
    assert contract.model_card_name(first, 3, CREATED) != contract.model_card_name(second, 3, CREATED)
    assert not any(fnmatch.fnmatchcase(contract.model_card_name(second, 3, CREATED), p)
                   for p in contract.model_card_name_patterns(first))
    assert not contract.model_card_name_regex(first).fullmatch(contract.model_card_name(second, 3, CREATED))


def test_the_teardowns_regex_takes_no_card_of_a_model_whose_name_extends_the_groups():
    # GIVEN groups churn and churn-v2: the config refuses such a pair of models within a project (churn's card grant,
    # churn-v*, would cover churn-v2's cards), but the groups of two projects or environments can still meet so
    group = "mlops-loop-dev-churn"
    other = contract.model_card_name("mlops-loop-dev-churn-v2", 1, CREATED)
    # THEN the regex that tells churn's cards takes none of churn-v2's
    assert not contract.model_card_name_regex(group).fullmatch(other)


@pytest.mark.parametrize("record, smoke", [
    ({"a": None, "b": None, "inference_id": contract.SMOKE_TEST_INFERENCE_ID}, True),
    ({"inference_id": contract.SMOKE_TEST_INFERENCE_ID}, True),
    ({"a": None, "b": 0, "inference_id": contract.SMOKE_TEST_INFERENCE_ID}, False),  # a value: traffic
    ({"a": None, "b": None, "inference_id": "other"}, False),
    ({"a": None, "b": None}, False),
    ([None, None], False),
])
def test_the_smoke_record_is_the_smoke_id_with_every_other_field_null(record, smoke):
    """GIVEN a record WHEN asked whether it is the deploy handler's smoke record THEN only the exact shape is."""
    assert contract.is_smoke_record(record) is smoke


@pytest.mark.parametrize("region, partition", [
    ("eu-west-1", "aws"), ("us-east-1", "aws"), ("ap-southeast-2", "aws"), ("il-central-1", "aws"), ("mx-central-1", "aws"),
    ("cn-north-1", "aws-cn"), ("cn-northwest-1", "aws-cn"),
    ("us-gov-west-1", "aws-us-gov"), ("us-gov-east-1", "aws-us-gov"),
])
def test_the_one_partition_rule_names_each_regions_partition(region, partition):
    """One rule for every ARN built outside CloudFormation: the recovery role, the ECR repositories of AWS's images."""
    from mlops_loop.constructs.native_model_monitor import repository_arn as monitor_repository_arn
    from mlops_loop.training.sdk_offline import repository_arn

    assert contract.aws_partition(region) == partition
    assert contract.cfn_exec_role_arn("123456789012", region, "hnb659fds").startswith(f"arn:{partition}:iam::123456789012:role/")
    uri = f"123456789012.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:1.7-1"
    expected = f"arn:{partition}:ecr:{region}:123456789012:repository/sagemaker-xgboost"
    assert repository_arn(uri, region) == expected
    assert monitor_repository_arn(uri, region) == expected


@pytest.mark.parametrize("region", ["us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1", "eusc-de-east-1", "", "eu-west"])
def test_a_region_of_another_partition_is_refused_not_given_a_commercial_arn(region):
    with pytest.raises(ValueError) as raised:
        contract.aws_partition(region)
    assert str(raised.value) == f"region {region!r}: not a region of the aws, aws-cn or aws-us-gov partition"


@pytest.mark.parametrize("qualifier", ["hnb659fds", "corp12345", "a", "ml-team-01", "0123456789"])
def test_a_bootstrap_qualifier_of_lowercase_letters_digits_and_dashes_up_to_ten_is_accepted(qualifier):
    assert contract.cdk_qualifier_problem(qualifier) is None


@pytest.mark.parametrize("qualifier", ["", "corp123456x", "Corp12345", "corp_12345", "corp 1234", "corp.1234", 12345, None,
                                       ["corp12345"]])
def test_a_value_that_is_no_bootstrap_qualifier_is_refused_naming_the_context_key_and_the_fix(qualifier):
    """Capitals and '_' pass the bootstrap template's pattern ([A-Za-z0-9_-]{1,10}) but not the bootstrap bucket's name
    (cdk-<qualifier>-assets-...): no bootstrap the app could deploy through has them."""
    assert contract.cdk_qualifier_problem(qualifier) == (
        f"context '@aws-cdk/core:bootstrapQualifier': {qualifier!r} is not a CDK bootstrap qualifier: give 1-10 lowercase "
        "letters, digits or '-' (the bootstrap template takes at most 10 characters, and the qualifier names the bootstrap "
        "bucket, which takes no capitals or '_'), the one the account was bootstrapped with (cdk bootstrap --qualifier)")


@pytest.mark.parametrize("version, names_a_commit", [
    ("4f2a9c1e7b3d5a6f8e9d0c1b2a3f4e5d6c7b8a90", True),
    ("4f2a9c1e7b3d5a6f8e9d0c1b2a3f4e5d6c7b8a90-dirty", True),
    ("ab" * 32, True),  # a SHA-256 repository's object name
    (f"{'ab' * 32}-dirty", True),
    ("unknown", False),
    ("4f2a9c1", False),  # an abbreviation pins nothing for sure
    ("4F2A9C1E7B3D5A6F8E9D0C1B2A3F4E5D6C7B8A90", False),  # git never prints it so
    ("4f2a9c1e7b3d5a6f8e9d0c1b2a3f4e5d6c7b8a90-dirty-dirty", False),
    ("release-one", False),
])
def test_a_code_version_names_a_commit_only_as_git_prints_one(version, names_a_commit):
    """GIVEN a recorded code version WHEN held to COMMIT_VERSION THEN only git's full object name, maybe -dirty,
    names a commit."""
    assert bool(contract.COMMIT_VERSION.match(version)) is names_a_commit


def test_a_record_pseudonym_is_the_first_12_hex_digits_of_the_sha256_of_the_ids_text():
    """What docs/personal-data.md tells people to compute (``printf %s "$ID" | sha256sum | cut -c1-12``) to find an example."""
    assert contract.record_pseudonym("CUS-1") == "eb579ceb25e3"
    assert contract.record_pseudonym(42) == contract.record_pseudonym("42") == "73475cb40a56"


def test_region_of_arn_is_the_region_field_of_a_full_arn_and_none_otherwise():
    """The --region of every AWS command a message prints comes from here (handlers, monitor, model card, lifecycle)."""
    assert region_of_arn("arn:aws:sagemaker:eu-west-1:111111111111:model-package/churn/7") == "eu-west-1"
    assert region_of_arn("arn:aws:cloudformation:us-east-2:111111111111:stack/s/abc-123") == "us-east-2"
    assert region_of_arn("arn:aws:iam::111111111111:role/r") is None  # a global resource: no region
    assert region_of_arn("churn") is None and region_of_arn("") is None and region_of_arn(None) is None
