"""The embedded-metric line every handler and serving container prints (pipeline_code.core.emf)."""

from __future__ import annotations

from pipeline_code.core.emf import metric_line


def test_a_line_names_each_value_as_a_metric_of_one_dimension_set_and_keeps_other_fields_as_log_members():
    """GIVEN two counts, two dimensions and a log-only field WHEN the line is built THEN the _aws directive (CloudWatch's
    embedded metric format) declares the namespace, the one dimension set and both metrics with their unit, and the
    dimensions' and metrics' values and the field are top-level members."""
    line = metric_line("ns", {"Environment": "prod", "Model": "churn"}, {"Requests": 1, "ServerErrors": 0},
                       at_ms=1_700_000_000_000, Status=200)
    assert line == {
        "_aws": {"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [{
            "Namespace": "ns", "Dimensions": [["Environment", "Model"]],
            "Metrics": [{"Name": "Requests", "Unit": "Count"}, {"Name": "ServerErrors", "Unit": "Count"}]}]},
        "Environment": "prod", "Model": "churn", "Requests": 1, "ServerErrors": 0, "Status": 200,
    }
    assert metric_line("ns", {"D": "x"}, {"Seconds": 2.5}, at_ms=0, unit="Seconds")["_aws"]["CloudWatchMetrics"][0][
        "Metrics"] == [{"Name": "Seconds", "Unit": "Seconds"}]
