"""The report's pictures as inline SVG: self-contained (no script, font or network), readable without colour.

Three kinds, each an ``<svg role="img">`` with a ``<title>`` and an ``aria-label`` saying what it shows:

* :func:`distribution` - a feature's (or the predictions') baseline and window shares per bin, side by side:
  the baseline a hollow outlined bar, the window a solid dark bar, so print and colour-blind readers tell
  them apart by shape; the bin labels underneath.
* :func:`drift_scores` - every scored feature's drift score (PSI / its calibrated threshold) as a ranked
  horizontal bar, with the threshold drawn at 1; drifted bars are solid, the others hatched.
* :func:`trend` - the key drift scores across the earlier runs and this one, one line style per series
  (solid, dashed, dotted) named in a legend beside the plot.

Plain Python (``html.escape`` only): the monitor job runs in the stock image, which has no plotting library.
"""

from __future__ import annotations

import html
import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple

INK, PAPER, GRID = "#222", "#fff", "#bbb"
_FONT = "font-family:system-ui,sans-serif;font-size:11px"


def _svg(width: int, height: int, label: str, body: List[str]) -> str:
    esc = html.escape(label, quote=True)
    return (f'<svg role="img" aria-label="{esc}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="{_FONT}"><title>{esc}</title>' + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{INK}"{extra}>{html.escape(text)}</text>'


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3g}"


def bin_labels(bins: Mapping[str, Any]) -> List[str]:
    """A label per bin: the category level, or the numeric interval cut at the baseline's edges."""
    if "levels" in bins:
        return [str(level) for level in bins["levels"]]
    edges = list(bins.get("bin_edges") or [])
    if not edges:
        return ["all"]
    return [f"< {edges[0]:.3g}"] + [f"{a:.3g}..{b:.3g}" for a, b in zip(edges, edges[1:])] + [f">= {edges[-1]:.3g}"]


def distribution(name: str, bins: Mapping[str, Any], *, psi: Optional[float] = None, threshold: Optional[float] = None) -> str:
    """Baseline vs window shares per bin of one feature (see the module docstring)."""
    base = [float(c) for c in bins.get("baseline") or []]
    window = [float(c) for c in bins.get("window") or []]
    labels = bin_labels(bins)
    k = min(len(base), len(window), len(labels))
    base_total, window_total = sum(base[:k]) or 1.0, sum(window[:k]) or 1.0
    shares = [(base[i] / base_total, window[i] / window_total) for i in range(k)]
    top = max([max(pair) for pair in shares] + [0.01])
    slot, left, plot_h, top_pad = 44, 40, 120, 34
    title = f"{name}: PSI {_num(psi)} (drift above {_num(threshold)})"
    width, height = max(left + slot * k + 20, left + 7 * len(title), 300), top_pad + plot_h + 62
    body = [_text(left, 14, title, extra=' font-weight="bold"'),
            f'<rect x="{left}" y="20" width="10" height="8" fill="{PAPER}" stroke="{INK}"/>',
            _text(left + 14, 28, "baseline (training)"),
            f'<rect x="{left + 130}" y="20" width="10" height="8" fill="{INK}"/>',
            _text(left + 144, 28, "this window")]
    base_y = top_pad + plot_h
    for tick in (0.0, top / 2, top):
        y = base_y - plot_h * tick / top
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="{GRID}" stroke-dasharray="2,2"/>')
        body.append(_text(left - 4, y + 4, f"{tick:.0%}", anchor="end"))
    for i, (b, w) in enumerate(shares):
        x = left + slot * i + 6
        hb, hw = plot_h * b / top, plot_h * w / top
        body.append(f'<rect x="{x:.1f}" y="{base_y - hb:.1f}" width="15" height="{hb:.1f}" fill="{PAPER}" stroke="{INK}"/>')
        body.append(f'<rect x="{x + 17:.1f}" y="{base_y - hw:.1f}" width="15" height="{hw:.1f}" fill="{INK}"/>')
        label = labels[i] if len(labels[i]) <= 12 else labels[i][:11] + "…"
        body.append(f'<text transform="translate({x + 16:.1f},{base_y + 10}) rotate(35)" fill="{INK}">{html.escape(label)}</text>')
    return _svg(width, height, f"Distribution of {name}: baseline and this window per bin", body)


def drift_scores(features: Mapping[str, Mapping[str, Any]], *, limit: int = 25) -> str:
    """Ranked drift scores (PSI / calibrated threshold) of the scored features, threshold at 1."""
    scored: List[Tuple[float, str, Mapping[str, Any]]] = sorted(
        ((float(e["drift_score"]), name, e) for name, e in features.items() if e.get("drift_score") is not None),
        key=lambda t: -t[0])[:limit]
    if not scored:
        return ""
    top = max(2.0, math.ceil(scored[0][0] * 2) / 2)
    left, plot_w, row = 170, 320, 18
    width, height = left + plot_w + 150, 30 + row * len(scored) + 24
    scale = plot_w / top
    body = ['<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="{INK}" stroke-width="1.5"/></pattern></defs>',
            _text(left, 14, "Drift score = PSI / its calibrated threshold (drift at 1)", extra=' font-weight="bold"')]
    for i, (score, name, entry) in enumerate(scored):
        y = 24 + row * i
        drifted = bool(entry.get("drifted"))
        fill = INK if drifted else "url(#hatch)"
        body.append(_text(left - 6, y + 12, name if len(name) <= 26 else name[:25] + "…", anchor="end"))
        body.append(f'<rect x="{left}" y="{y + 2}" width="{max(score * scale, 1):.1f}" height="{row - 5}" fill="{fill}" stroke="{INK}"/>')
        body.append(_text(left + max(score * scale, 1) + 4, y + 12,
                          f"{score:.2f}  (PSI {_num(entry.get('psi'))} / {_num(entry.get('psi_threshold'))})"
                          + ("  DRIFTED" if drifted else "")))
    x1 = left + scale
    body.append(f'<line x1="{x1:.1f}" y1="20" x2="{x1:.1f}" y2="{height - 18}" stroke="{INK}" stroke-width="2" stroke-dasharray="6,3"/>')
    body.append(_text(x1, height - 6, "threshold (1)", anchor="middle"))
    return _svg(width, height, "Drift score of each feature against its threshold, largest first", body)


_STYLES = ("", ' stroke-dasharray="8,4"', ' stroke-dasharray="2,3"', ' stroke-dasharray="10,3,2,3"')


def trend(series: Mapping[str, Sequence[Any]], runs: Sequence[Any], *, title: str) -> str:
    """Lines of each named series over ``runs`` (oldest first), a reference line at 1 for drift scores."""
    named = {k: [None if v is None else float(v) for v in vals] for k, vals in series.items() if any(v is not None for v in vals)}
    if not named or len(runs) < 2:
        return ""
    top = max([1.2] + [v for vals in named.values() for v in vals if v is not None]) * 1.1
    left, plot_w, plot_h, top_pad = 40, 420, 140, 26
    width, height = left + plot_w + 230, top_pad + plot_h + 40
    step = plot_w / max(1, len(runs) - 1)
    y_of = lambda v: top_pad + plot_h - plot_h * v / top  # noqa: E731 - a local scale
    body = [_text(left, 14, title, extra=' font-weight="bold"'),
            f'<line x1="{left}" y1="{y_of(1):.1f}" x2="{left + plot_w}" y2="{y_of(1):.1f}" stroke="{GRID}" stroke-width="2"/>',
            _text(left - 4, y_of(1) + 4, "1", anchor="end"), _text(left - 4, y_of(0) + 4, "0", anchor="end")]
    for s, (name, values) in enumerate(named.items()):
        points = [(left + step * i, y_of(v)) for i, v in enumerate(values) if v is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{INK}" stroke-width="2"{_STYLES[s % len(_STYLES)]}/>')
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{INK}"/>' for x, y in points)
        # The legend: each series' line style beside its name, right of the plot.
        legend_y = top_pad + 8 + 16 * s
        body.append(f'<line x1="{left + plot_w + 16}" y1="{legend_y}" x2="{left + plot_w + 46}" y2="{legend_y}" stroke="{INK}" '
                    f'stroke-width="2"{_STYLES[s % len(_STYLES)]}/>')
        body.append(_text(left + plot_w + 52, legend_y + 4, name))
    body.append(_text(left, height - 8, f"{len(runs)} runs, oldest to this one"))
    return _svg(width, height, title, body)
