"""The model card content as Markdown, for people (the same sections as the SageMaker card)."""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

from pipeline_code.core.markdown import md_text

from .content import CLASS_CONFUSION, CLASS_METRICS, CLASS_PARITY, CLASS_SHARES, ERRORS, GROUP_ERRORS, as_number


def render_markdown(card: Mapping[str, Any], *, title: Optional[str] = None) -> str:
    """The model card content as Markdown (every section of :func:`build_model_card`)."""
    overview, intended = card.get("model_overview") or {}, card.get("intended_uses") or {}
    info = card.get("additional_information") or {}
    package = card.get("model_package_details") or {}
    heading = title or (
        f"{package['model_package_group_name']} v{package['model_package_version']}"
        if package
        else overview.get("model_creator", "model")
    )
    out = [f"# Model card: {md_text(heading)}", ""]
    out += [
        "## Overview",
        "",
        f"- Description: {md_text(overview.get('model_description'))}",
        f"- Problem: {md_text(overview.get('problem_type'))}, algorithm {md_text(overview.get('algorithm_type'))}",
    ]
    out += [f"- Artifact: {md_text(a)}" for a in overview.get("model_artifact") or []]
    if package:
        out += [
            f"- Model package: {md_text(package.get('model_package_arn'))} (approval {md_text(package.get('model_approval_status'))})"
        ]
    out += ["", "## Intended use", "", md_text(intended.get("purpose_of_model")), "", md_text(intended.get("intended_uses")), ""]
    out += [f"**Risk rating: {md_text(intended.get('risk_rating'))}** — {md_text(intended.get('explanations_for_risk_rating'))}", ""]
    out += [md_text(intended.get("factors_affecting_model_efficiency")), ""]
    training = card.get("training_details") or {}
    out += ["## Training", "", md_text(training.get("training_observations")), ""]
    job = training.get("training_job_details") or {}
    for m in job.get("training_metrics") or []:
        out.append(f"- {md_text(m['name'])}: {m['value']:.4f}")
    if job.get("hyper_parameters"):
        out.append("- hyperparameters: " + ", ".join(f"{md_text(h['name'])}={md_text(h.get('value'))}" for h in job["hyper_parameters"]))
    if job.get("training_datasets"):
        out.append("- trained on: " + ", ".join(md_text(d) for d in job["training_datasets"]))
    out.append("")
    for evaluation in card.get("evaluation_details") or []:
        out += [f"## Evaluation: {md_text(evaluation.get('name'))}", "", md_text(evaluation.get("evaluation_observation")), ""]
        groups = {g["name"]: g for g in evaluation.get("metric_groups") or []}
        mine = {m["name"]: m["value"] for m in (groups.get("challenger (this version)") or {}).get("metric_data", [])}
        theirs = {m["name"]: m["value"] for m in (groups.get("champion") or {}).get("metric_data", [])}
        if mine:
            out += ["| Metric | This version | Champion |", "|---|---|---|"]
            out += [
                f"| {md_text(k)} | {v:.4f} | {theirs[k]:.4f} |" if k in theirs else f"| {md_text(k)} | {v:.4f} | — |"
                for k, v in mine.items()
            ]
            out.append("")
        out += _per_type_markdown(groups, (CLASS_METRICS, CLASS_CONFUSION, ERRORS))
        for name, group in groups.items():
            if name.startswith("fairness across"):
                out += [f"### {md_text(name[0].upper() + name[1:])}", "", "| Metric | Value | Threshold / result |", "|---|---|---|"]
                out += [
                    f"| {md_text(m['name'])} | {m['value']:.4f} | {md_text(m.get('notes'))} |"
                    for m in group["metric_data"]
                    if not m["name"].endswith(" threshold")
                ]
                out.append("")
        out += _per_type_markdown(groups, (CLASS_PARITY, CLASS_SHARES, GROUP_ERRORS))
        gate = groups.get("promotion gate")
        if gate:
            out += ["### Promotion gate", "", "| Check | Passed | Detail |", "|---|---|---|"]
            out += [
                f"| {md_text(m['name'])} | {'yes' if m['value'] else '**no**'} | {md_text(m.get('notes'))} |" for m in gate["metric_data"]
            ]
            out.append("")
    out += ["## Limitations", ""]
    out += [
        line if line.startswith("- ") else f"- {line}"
        for line in (
            md_text(x[2:]) if x.startswith("- ") else md_text(x) for x in str(info.get("caveats_and_recommendations") or "").splitlines()
        )
        if line
    ]
    out += ["", "## Ethical considerations", "", md_text(info.get("ethical_considerations")), ""]
    return "\n".join(out)


def _cell(value: Any) -> str:
    """A table cell of a chart or matrix value: counts as integers, the rest with 4 decimals."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.4f}" if as_number(value) is not None else "—"


def _per_type_markdown(groups: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> List[str]:
    """Tables of the multiclass and regression sections (groups named, or prefixed, by ``names``), in that order:
    bar charts sharing their x axis side by side, a matrix as a grid, simple metrics as metric | value | notes."""
    out: List[str] = []
    for prefix in names:
        for name, group in groups.items():
            if not name.startswith(prefix):
                continue
            out += [f"### {md_text(name[0].upper() + name[1:])}", ""]
            data = group.get("metric_data") or []
            charts = [m for m in data if m.get("type") == "bar_chart"]
            if charts:
                labels: List[str] = []
                for chart in charts:
                    labels += [x for x in chart.get("x_axis_name") or [] if x not in labels]
                columns = [dict(zip(chart.get("x_axis_name") or [], chart["value"])) for chart in charts]
                first = "Class" if "by class" in charts[0]["name"] else "Group"
                heads = [c.get("y_axis_name") or c["name"] for c in charts]
                out += ["| " + " | ".join([first, *(md_text(h) for h in heads)]) + " |", "|" + "---|" * (len(charts) + 1)]
                out += ["| " + " | ".join([md_text(x), *(_cell(col.get(x)) for col in columns)]) + " |" for x in labels]
                out.append("")
                notes = [f"- {md_text(c['name'])}: {md_text(c['notes'])}" for c in charts if c.get("notes")]
                out += notes + [""] if notes else []
            for matrix in (m for m in data if m.get("type") == "matrix"):
                heads = [md_text(x) for x in matrix.get("x_axis_name") or []]
                out += [md_text(matrix["name"]), "", "| | " + " | ".join(heads) + " |", "|" + "---|" * (len(heads) + 1)]
                out += [
                    f"| {md_text(row_name)} | " + " | ".join(_cell(v) for v in row) + " |"
                    for row_name, row in zip(matrix.get("y_axis_name") or [], matrix["value"])
                ]
                out += ["", md_text(matrix["notes"]), ""] if matrix.get("notes") else [""]
            simple = [m for m in data if m.get("type") in ("number", "boolean", "string")]
            if simple:
                out += ["| Metric | Value | Notes |", "|---|---|---|"]
                out += [f"| {md_text(m['name'])} | {_cell(m['value'])} | {md_text(m.get('notes'))} |" for m in simple]
                out.append("")
    return out


