"""The cost report's ceiling (mlops_loop/tools/cost_floor/ceiling.py): what each endpoint costs a month at the most its
config allows, its change against a base, and the report's price caveats (unverified rates, other regions).

IAM cannot cap instance counts or concurrency, so a raised MaxCapacity or MaxConcurrency must show in the pull-request
report even though the floor does not move. Assemblies are built in tmp_path (``tests.support.assemblies``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_loop.config.instance_types import INSTANCE_TYPES
from mlops_loop.tools.cost_floor import INSTANCE_DIMENSION, PRICES, PROVISIONED_CONCURRENCY_DIMENSION, floor_report, main
from tests.support.assemblies import endpoint, instance_config, serverless_config, template, write_assembly

HOURS = 730.0
ON_DEMAND = PRICES["serverless_inference"].usd
WARM = PRICES["serverless_provisioned_concurrency"].usd
CHURN_ID = "endpoint/mlops-loop-prod-churn/variant/AllTraffic"
RISK_ID = "endpoint/mlops-loop-prod-credit-risk/variant/AllTraffic"


def target(resource_id: str, minimum: int, maximum: int, dimension: str = INSTANCE_DIMENSION) -> dict:
    return {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
        "ServiceNamespace": "sagemaker", "ScalableDimension": dimension, "ResourceId": resource_id,
        "MinCapacity": minimum, "MaxCapacity": maximum}}


def churn(maximum: int | None) -> dict:
    """prod churn: 2 x ml.m5.xlarge, autoscaling 2..maximum (none when None)."""
    out = {"Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn", mode="realtime"),
           "Config": instance_config("ml.m5.xlarge", 2)}
    if maximum is not None:
        out["Target"] = target(CHURN_ID, 2, maximum)
    return out


def credit_risk(max_concurrency: int, provisioned: int | None = 2) -> dict:
    return {"Risk": endpoint("mlops-loop-prod-credit-risk", "RiskConfig", model="credit-risk", mode="serverless"),
            "RiskConfig": serverless_config(2048, provisioned=provisioned, max_concurrency=max_concurrency)}


def assembly(root: Path, resources: dict, region: str = "eu-west-1") -> Path:
    return write_assembly(root, {"prod": {"Serving": template(resources)}}, region=region)


def only_compute(env):
    (line,) = [line for line in env.lines if line.category == "compute"]
    return line


def xlarge(count: int) -> float:
    return count * INSTANCE_TYPES["ml.m5.xlarge"].usd_per_hour * HOURS


# --------------------------------------------------------------------------------------------------------------------
# The ceiling of each serving shape
# --------------------------------------------------------------------------------------------------------------------
def test_an_autoscaled_endpoint_s_ceiling_is_its_max_capacity_all_month(tmp_path):
    """GIVEN churn on 2..6 ml.m5.xlarge WHEN read THEN its floor is 2 instances and its ceiling 6, all month."""
    (env,) = floor_report(assembly(tmp_path / "a", churn(6)))
    line = only_compute(env)
    assert line.monthly_usd == pytest.approx(xlarge(2))
    assert line.ceiling_usd == pytest.approx(xlarge(6))
    assert line.ceiling_basis == "6 x ml.m5.xlarge (autoscaling MaxCapacity) x 730 h x $0.23/h"
    assert env.compute_ceiling_usd == pytest.approx(xlarge(6)) and env.ceiling_usd == pytest.approx(xlarge(6))


def test_an_endpoint_without_autoscaling_has_its_fixed_count_as_ceiling(tmp_path):
    (env,) = floor_report(assembly(tmp_path / "a", churn(None)))
    line = only_compute(env)
    assert line.ceiling_usd == pytest.approx(line.monthly_usd)
    assert line.ceiling_basis == "2 x ml.m5.xlarge (InitialInstanceCount, no autoscaling) x 730 h x $0.23/h"


def test_a_serverless_ceiling_is_max_concurrency_running_all_month_plus_its_provisioned_concurrency(tmp_path):
    (env,) = floor_report(assembly(tmp_path / "a", credit_risk(10)))
    line = only_compute(env)
    assert line.ceiling_usd == pytest.approx(10 * 2 * ON_DEMAND * 3600 * HOURS + 2 * 2 * WARM * 3600 * HOURS)
    assert line.ceiling_basis == (
        "theoretical maximum: 10 concurrent requests (MaxConcurrency) x 2 GB running all 730 h x $0.0720/GB-h (rate "
        "unverified) + 2 provisioned concurrency (ProvisionedConcurrency) x 2 GB x 730 h x $0.01728/GB-h (rate unverified)")


def test_provisioned_concurrency_under_autoscaling_counts_at_its_max_capacity(tmp_path):
    resources = {**credit_risk(20, provisioned=1), "Target": target(RISK_ID, 1, 8, PROVISIONED_CONCURRENCY_DIMENSION)}
    (env,) = floor_report(assembly(tmp_path / "a", resources))
    line = only_compute(env)
    assert line.ceiling_usd == pytest.approx((20 * ON_DEMAND + 8 * WARM) * 2 * 3600 * HOURS)
    assert "+ 8 provisioned concurrency (autoscaling MaxCapacity)" in line.ceiling_basis


def test_a_serverless_endpoint_without_provisioned_concurrency_has_only_the_on_demand_part(tmp_path):
    (env,) = floor_report(assembly(tmp_path / "a", credit_risk(5, provisioned=None)))
    line = only_compute(env)
    assert line.monthly_usd == 0.0
    assert line.ceiling_usd == pytest.approx(5 * 2 * ON_DEMAND * 3600 * HOURS)
    assert "provisioned" not in line.ceiling_basis


def test_an_unknown_instance_type_makes_the_ceiling_unknown_and_says_so(tmp_path, capsys):
    resources = {"Endpoint": endpoint("e", "Config", model="m"), "Config": instance_config("ml.x99.huge", 1)}
    out = assembly(tmp_path / "a", resources)
    (env,) = floor_report(out)
    assert only_compute(env).ceiling_usd is None and env.unknown_ceilings == 1
    assert main([str(out), "--allow-stale"]) == 0
    assert "note: prod: 1 line(s) with unknown ceiling, not in the ceiling\n" in capsys.readouterr().out


def test_the_summary_prints_the_ceiling_next_to_the_floor(tmp_path, capsys):
    out = assembly(tmp_path / "a", {**churn(6), "Key": {"Type": "AWS::KMS::Key", "Properties": {}}})
    floor, ceiling = xlarge(2) + 1, xlarge(6) + 1
    assert main([str(out), "--allow-stale"]) == 0
    text = capsys.readouterr().out
    assert (f"prod         eu-west-1            {xlarge(2):,.2f}          {xlarge(2):,.2f}       1.00     {floor:,.2f}"
            f"       {ceiling:,.2f}            0.00         {floor:,.2f}\n") in text
    assert "** every endpoint at the most its config allows, + fixed: see the notes\n" in text
    assert main([str(out), "--format", "markdown", "--allow-stale"]) == 0
    assert (f"| prod | eu-west-1 | {xlarge(2):,.2f} | {xlarge(2):,.2f} | 1.00 | {floor:,.2f} | {ceiling:,.2f} | 0.00 | "
            f"{floor:,.2f} |\n") in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------------------------
# The change against a base: a raised ceiling is a change even when the floor is not
# --------------------------------------------------------------------------------------------------------------------
def test_raising_max_instances_shows_the_ceiling_rise_though_the_floor_does_not_move(tmp_path, capsys):
    """GIVEN prod churn's max_instances 6 -> 100 (the FinOps trial) WHEN compared THEN the floor is +$0.00 and the
    ceiling +$15,782.60, on the environment's line and on churn's."""
    base, head = assembly(tmp_path / "base", churn(6)), assembly(tmp_path / "head", churn(100))
    rise = xlarge(100) - xlarge(6)
    assert main([str(head), "--base-assembly", str(base), "--allow-stale"]) == 0
    text = capsys.readouterr().out
    assert (f"  prod: floor +$0.00/month (compute +$0.00, fixed +$0.00); ceiling +${rise:,.2f}/month [changed]\n"
            f"    changed  churn / AllTraffic (realtime): {xlarge(2):,.2f} -> {xlarge(2):,.2f} (+$0.00); ceiling "
            f"{xlarge(6):,.2f} -> {xlarge(100):,.2f} (+${rise:,.2f})\n") in text
    assert rise == pytest.approx(15782.60)

    assert main([str(head), "--base-assembly", str(base), "--format", "markdown", "--allow-stale"]) == 0
    assert (f"- **prod**: floor +$0.00/month (compute +$0.00, fixed +$0.00); ceiling +${rise:,.2f}/month\n"
            f"  - changed `churn / AllTraffic` (realtime): {xlarge(2):,.2f} → {xlarge(2):,.2f} (+$0.00); ceiling "
            f"{xlarge(6):,.2f} → {xlarge(100):,.2f} (+${rise:,.2f})\n") in capsys.readouterr().out

    assert main([str(head), "--base-assembly", str(base), "--format", "json", "--allow-stale"]) == 0
    (prod,) = json.loads(capsys.readouterr().out)["delta"]
    assert (prod["status"], prod["delta_total_usd"], prod["delta_ceiling_usd"]) == ("changed", 0.0, round(rise, 2))
    (line,) = prod["lines"]
    assert (line["delta_usd"], line["base_ceiling_usd"], line["head_ceiling_usd"], line["delta_ceiling_usd"]) == (
        0.0, round(xlarge(6), 2), round(xlarge(100), 2), round(rise, 2))


def test_raising_a_serverless_max_concurrency_shows_the_ceiling_rise(tmp_path, capsys):
    """GIVEN credit-risk's max_concurrency 10 -> 200 (the FinOps trial) WHEN compared THEN +$0.00 floor and the
    ceiling's rise: 190 more concurrent 2 GB requests all month at the on-demand rate."""
    base, head = assembly(tmp_path / "base", credit_risk(10)), assembly(tmp_path / "head", credit_risk(200))
    rise = round(190 * 2 * ON_DEMAND * 3600 * HOURS, 2)
    assert main([str(head), "--base-assembly", str(base), "--allow-stale"]) == 0
    assert (f"  prod: floor +$0.00/month (compute +$0.00, fixed +$0.00); ceiling +${rise:,.2f}/month [changed]\n"
            in capsys.readouterr().out)
    assert rise == pytest.approx(19972.80)


def test_an_unchanged_ceiling_adds_no_line(tmp_path, capsys):
    base = assembly(tmp_path / "base", churn(6))
    assert main([str(base), "--base-assembly", str(base), "--format", "json", "--allow-stale"]) == 0
    (prod,) = json.loads(capsys.readouterr().out)["delta"]
    assert (prod["status"], prod["lines"], prod["delta_ceiling_usd"]) == ("unchanged", [], 0.0)


# --------------------------------------------------------------------------------------------------------------------
# Price caveats: unverified rates and other regions
# --------------------------------------------------------------------------------------------------------------------
def test_a_basis_priced_at_an_unverified_rate_says_so_and_the_notes_name_the_rate(tmp_path, capsys):
    out = assembly(tmp_path / "a", credit_risk(10))
    (env,) = floor_report(out)
    assert only_compute(env).basis.endswith("x $0.01728/GB-h (rate unverified)")
    assert main([str(out), "--allow-stale"]) == 0
    (note,) = [n for n in capsys.readouterr().out.splitlines() if n.startswith("note: (rate unverified)")]
    assert "$4.8e-06/GB-second (serverless_provisioned_concurrency, " in note
    assert "$2e-05/GB-second (serverless_inference, " in note


def test_verified_rates_carry_no_caveat(tmp_path, capsys):
    out = assembly(tmp_path / "a", {"Key": {"Type": "AWS::KMS::Key", "Properties": {}}}, region="us-east-1")
    assert main([str(out), "--allow-stale"]) == 0
    assert "unverified" not in capsys.readouterr().out


def test_each_environment_outside_the_prices_region_gets_its_own_caveat(tmp_path, capsys):
    """GIVEN prod in eu-west-1 and dev in us-east-1 (the prices' region) WHEN printed THEN only prod is flagged, in the
    notes and in its own heading."""
    key = template({"Key": {"Type": "AWS::KMS::Key", "Properties": {}}})
    eu = write_assembly(tmp_path / "eu", {"prod": {"Storage": key}})
    us = write_assembly(tmp_path / "us", {"dev": {"Storage": key}}, region="us-east-1")
    # One assembly with both: the stage manifests of the two, under one top-level manifest.
    merged = tmp_path / "both"
    merged.mkdir()
    for source in (eu, us):
        for child in source.iterdir():
            if child.is_dir():
                child.rename(merged / child.name)
    top = json.loads((eu / "manifest.json").read_text())
    top["artifacts"].update(json.loads((us / "manifest.json").read_text())["artifacts"])
    (merged / "manifest.json").write_text(json.dumps(top))

    assert main([str(merged), "--allow-stale"]) == 0
    text = capsys.readouterr().out
    assert ("note: prod runs in eu-west-1 but is priced at us-east-1's list prices: eu-west-1's differ; read them on "
            "each service's pricing page\n") in text
    assert "note: dev runs in" not in text
    assert "\nprod (eu-west-1, priced at us-east-1 list prices)\n" in text and "\ndev (us-east-1)\n" in text
