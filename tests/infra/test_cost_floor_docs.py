"""The cost floor example of the documentation (docs/serving.md, **Cost floor**) is the tool's output for the frozen sample config
(``tests/support/configs/sample.yaml``): every line of the example is a line the tool prints for it, so a change to
the prices, the templates or the report's format that changes a shown number fails here until the example is
regenerated (``python -m mlops_loop.tools.cost_floor <the sample's cdk.out>``)."""

from __future__ import annotations

import pytest

from mlops_loop.tools.cost_floor import floor_report, render_text
from mlops_loop.tools.cost_floor.report import DEFAULT_HOURS_PER_MONTH
from tests.support import docs

SECTION = "**Cost floor**"


def readme_example() -> list[str]:
    """The lines of the first plain code block (a bare ```, no language) after the **Cost floor** paragraph."""
    lines = docs.section(SECTION).text.splitlines()
    inside = False
    for number in range(len(lines)):
        if not lines[number].startswith("```"):
            continue
        if not inside and lines[number] == "```":
            end = lines.index("```", number + 1)
            return lines[number + 1:end]
        inside = not inside
    raise AssertionError(f"{docs.section(SECTION).name} ({SECTION}) has no plain code block")


def test_the_readme_example_has_the_summary_and_an_environment_s_lines():
    example = readme_example()
    assert example[0].startswith("environment  region") and "ceiling** $/mo" in example[0]
    assert any(line.startswith("prod (") for line in example)


@pytest.mark.synth
def test_every_line_of_the_readme_example_is_the_tool_s_output_for_the_sample_config(sample):
    printed = render_text(floor_report(sample.outdir), assembly="cdk.out", hours=DEFAULT_HOURS_PER_MONTH).splitlines()
    missing = [line for line in readme_example() if line.strip() and line not in printed]
    assert not missing, (f"{docs.section(SECTION).name} ({SECTION}) shows lines the tool does not print for the sample config; regenerate "
                         f"the example: {missing}")
