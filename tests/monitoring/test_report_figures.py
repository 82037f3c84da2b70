"""The HTML report leads with a plain-language verdict and shows what moved: figures, not only tables."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline_code.monitoring import figures, report
from tests.support.monitoring import run, write_window


class Figures(HTMLParser):
    """The report's ``<svg role="img">`` figures: their titles, and every fill and stroke they paint with."""

    def __init__(self) -> None:
        super().__init__()
        self.titles, self.paints, self.verdict = [], set(), []
        self._in_svg = self._in_title = self._in_verdict = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "svg":
            assert attrs.get("role") == "img" and attrs.get("aria-label")
            self._in_svg = True
        if self._in_svg:
            self.paints |= {attrs[k] for k in ("fill", "stroke") if k in attrs}
        self._in_title = self._in_svg and tag == "title"
        if tag == "ul" and attrs.get("class") == "verdict":
            self._in_verdict = True

    def handle_endtag(self, tag):
        if tag == "svg":
            self._in_svg = False
        if tag == "ul":
            self._in_verdict = False

    def handle_data(self, data):
        if self._in_title:
            self.titles.append(data)
            self._in_title = False
        if self._in_verdict and data.strip():
            self.verdict.append(data.strip())


@pytest.fixture(scope="module")
def drifted_runs(tmp_path_factory, spec, reference):
    """Three daily runs, the last one drifted, each reading the earlier reports."""
    root = tmp_path_factory.mktemp("report")
    history = root / "history"
    for day, drift in enumerate((0.0, 0.1, 0.8)):
        window = write_window(root / f"w{day}", spec, reference["model"], seed=600 + day, drift=drift, label_coverage=1.0)
        last = run(spec, reference, window, str(history / f"run-{day}"), extra=["--history-dir", str(history)])
    return {"report": last, "html": history / "run-2" / "report.html"}


def test_the_page_leads_with_a_verdict_then_shows_the_drift_the_distributions_and_the_trend(drifted_runs):
    result = drifted_runs["report"]
    page = Figures()
    page.feed(drifted_runs["html"].read_text())
    drifted = result["sections"]["data_drift"]["drifted_features"]
    assert drifted, "the 0.8 drift moves some features"
    # the verdict names what drifted and what the loop does about it
    assert page.verdict[0].startswith("Drifted: ") and all(name in page.verdict[0] for name in drifted)
    assert page.verdict[-1].startswith("What the loop does: the data-drift")
    # one ranked drift-score figure, a distribution per drifted feature (up to the cap), the predictions', the trend
    expected = (["Drift score of each feature against its threshold, largest first"]
                + [f"Distribution of {name}: baseline and this window per bin" for name in
                   sorted(drifted, key=lambda n: -result["sections"]["data_drift"]["features"][n]["drift_score"])[:report.MAX_DISTRIBUTIONS]]
                + ["Distribution of predictions: baseline and this window per bin",
                   "Drift scores across the last runs (drift at 1)"])
    assert page.titles == expected
    # readable without colour: ink, paper, grid grey and the hatch pattern only
    assert page.paints <= {figures.INK, figures.PAPER, figures.GRID, "url(#hatch)", "none"}


@pytest.mark.parametrize("status, healthy, errors, expected", [
    ("unhealthy", False, [{"kind": "malformed_records", "message": "x"}], "The monitor could not trust this window (malformed_records"),
    ("quiet", True, [], "No traffic in this window"),
    ("not_serving", True, [], "No model version serves yet"),
])
def test_the_verdict_of_a_window_without_findings_says_why(status, healthy, errors, expected):
    assert report.verdict({"status": status, "healthy": healthy, "errors": errors, "summary": {}, "sections": {}})[0].startswith(expected)


def test_a_stable_window_says_nothing_drifted_and_nothing_is_done():
    features = {"a": {"psi": 0.01, "drift_score": 0.4, "drifted": False}, "b": {"psi": 0.02, "drift_score": 0.7, "drifted": False}}
    lines = report.verdict({"status": "ok", "healthy": True, "errors": [], "summary": {"data_drift_score": 0.7},
                            "sections": {"data_drift": {"features": features}}})
    assert lines == ["No feature drifted (closest: b at 70% of its threshold).",
                     "What the loop does: nothing - no retrain alarm fires."]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed on this machine")
def test_the_report_renders_in_a_headless_browser_with_its_figures(drifted_runs, tmp_path):
    # The flags that keep Chromium off the (closed) network; a fresh profile per run.
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    url = Path(drifted_runs["html"]).resolve().as_uri()
    dom = subprocess.run(["chromium", *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    assert len(re.findall(r'<svg role="img"', dom)) >= 4 and "What moved" in dom
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", *flags, "--window-size=1000,2000", f"--screenshot={shot}", url], capture_output=True, timeout=120,
                   check=True)
    assert shot.stat().st_size > 20_000  # a page with figures, not a blank one
