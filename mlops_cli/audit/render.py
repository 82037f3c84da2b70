"""The audit record as Markdown (every untrusted value escaped), as a standalone HTML page and as JSON for a pipeline.

The evaluation and fairness sections follow the model's problem type (``core.problem``): the headline
metrics of its type (:data:`~pipeline_code.core.problem.HEADLINE_METRICS`); fairness as the binary parity
metrics, parity per class (multiclass: the worst class shown, then every class) or error parity (regression).
A binary model's report names no problem type (as before the other types existed).
"""

from __future__ import annotations

import html
from typing import Any, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core import approval, problem
from pipeline_code.core.contract import (
    CODE_VERSION_PROPERTY, FROZEN_TEST_PROPERTY, INPUT_FEATURES_PROPERTY, INPUT_LABELS_PROPERTY, REGISTRATION_KEY,
    SPLIT_PROPERTIES, SPLIT_SHA256_PROPERTIES,
)  # fmt: skip
from pipeline_code.core.markdown import md_text
from pipeline_code.training.metrics_regression import bias_measure_text, error_measure_text

from .aws import SECTIONS



def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—" if value is None else md_text(value)
    return f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines + [""]


def _ledger_markdown(ledger: Mapping[str, Any]) -> List[str]:
    """The approval ledger's records of the version, oldest first, and every record that does not parse, flagged."""
    out = ["### Approval ledger (write-once records of every decision the deploy handler observed)", ""]
    if not ledger.get("location"):
        return out + ["Not located: the version names no sealed artefact, so no artifacts bucket (registered before "
                      "artefacts were sealed, and so before the ledger).", ""]
    out += [f"Location: {md_text(ledger['location'])}", ""]
    # Oldest first, by when each was recorded (a record's key names that time, below its package's prefix).
    rows = sorted([
        (r.get("recorded_at") or r["time"] or "",
         [md_text(r["time"]), md_text(r["status"]), md_text(r["principal"]), md_text(r["description"]),
          md_text(f"{r['outcome']} ({r['trigger']})"), md_text(r["reason"]),
          md_text(", ".join(f"{k}={v}" for k, v in sorted((r.get("set") or {}).items()))), md_text(r["uri"])])
        for r in ledger.get("records", [])
    ] + [
        (u["time"] or "", [md_text(u["time"]), "**does not parse**", "—", md_text(u["problem"]), "—", "—", "—", md_text(u["uri"])])
        for u in ledger.get("unreadable", [])
    ], key=lambda item: item[0])
    # A group deleted and created again reuses its versions' ARNs: what the ledger holds of the package that had this
    # version's number before, or of no package it names, is not this version's history (each is a gap).
    left_out = [f"- {len(o['records'])} record(s) of {md_text(o['arn'])} created {md_text(o['created'])}, not this "
                "version's model package: left out (see Gaps)." for o in ledger.get("other_packages", [])]
    left_out += [f"- {md_text(u['uri'])}: left out, {md_text(u['problem'])}." for u in ledger.get("unattributed", [])]
    if left_out:
        left_out.append("")
    if not rows:
        return out + left_out + ["No record of this version in the approval ledger.", ""]
    return out + left_out + _table(["Time (UTC)", "Approval status", "Principal", "Description", "Handler decision",
                                    "Reason", "Parameters set", "Record"], [row for _, row in rows])


def render_markdown(audit: Mapping[str, Any]) -> str:
    """The report as Markdown; every value from AWS or S3 is escaped with :func:`md_text`."""
    p, n = audit["package"], audit["names"]
    d = audit["deployment"]
    out = [f"# Audit report: {md_text(n['group'])} version {p['version']}", ""]
    out.append(
        f"Generated {md_text(audit['generated_at'])} in {md_text(audit.get('region'))} "
        f"(account {md_text(audit['caller'].get('account'))}, by {md_text(audit['caller'].get('arn'))}); "
        f"version chosen by {md_text(audit['resolved_by'])}."
    )
    out.append("")
    approved = [h for h in audit["approvals"] if h["requested_status"] == "Approved" and not h["error"]]
    kept = [r for r in (audit.get("ledger") or {}).get("records", []) if r["status"] == "Approved"]
    checks = audit.get("approval_checks") or []
    if p["approval_status"] == "Approved" and checks and all(c["auto"] for c in checks):
        who = f"{md_text(checks[-1]['verdict'])}, by {md_text(checks[-1]['principal'] or 'unknown principal')} at {md_text(checks[-1]['time'])}"
    elif p["approval_status"] == "Approved":
        # The ledger's record is written once and kept for ever; CloudTrail's event history holds 90 days.
        if kept:
            who = (f"approved by {md_text(kept[-1]['principal'] or 'unknown principal')} at {md_text(kept[-1]['time'])} "
                   "(approval ledger)")
        elif approved:
            who = f"approved by {md_text(approved[-1]['identity'])} at {md_text(approved[-1]['time'])}"
        else:
            who = "approved (approver found neither in the approval ledger nor in CloudTrail)"
    else:
        who = f"**not approved** (status {md_text(p['approval_status'])})"
    if p["approval_status"] == "Approved" and any(c["flagged"] for c in checks):
        who += " — **not every approval was the approver role's** (see gaps)"
    serving = {True: "yes", False: "no", None: "unknown"}[d["serving_now"]]
    rewritten = ((audit["evaluation"].get("evidence") or {}).get("evaluation") or {}).get("verified") is False
    out += ["## Summary", ""]
    out += _table(
        ["Item", "Value"],
        [
            ["Model package", md_text(p["arn"])],
            ["Approval", who],
            ["Serving now", f"{serving} (endpoint {md_text(d['endpoint'])})"],
            [
                "Deployed at",
                md_text(
                    d.get("deployed_at") or (f"no later than {d['deployed_at_latest']}" if d.get("deployed_at_latest") else None)
                ),
            ],
            ["Code commit", md_text(audit["code"]["commit"])],
            ["Pipeline execution", md_text((audit["execution"] or {}).get("arn"))],
            ["Trigger reason", md_text(audit["trigger_reason"])],
            *_problem_rows(audit["evaluation"]),
            ["Gate", _gate_word(audit["evaluation"].get("report"))
             + (" (says a report rewritten since registration: see gaps)" if rewritten else "")],
            ["Evidence as registered", _evidence_word(audit["evaluation"])],
            ["Model card", _card_word(audit.get("model_card") or {})],
            ["Gaps", str(len(audit["gaps"]))],
        ],
    )
    out += ["## Model package", ""]
    out += _table(
        ["Field", "Value"],
        [
            ["Status", md_text(p["status"])],
            ["Approval status", md_text(p["approval_status"])],
            ["Approval description", md_text(p["approval_description"])],
            ["Description", md_text(p["description"])],
            ["Created", md_text(p["created"])],
            ["Last modified", md_text(p["modified"])],
            ["Created by", md_text(p["created_by"])],
            ["Last modified by", md_text(p["modified_by"])],
            ["Generated by", md_text(p["generated_by"])],
        ],
    )
    data = audit["data"]
    out += ["## Data and code", ""]
    rows = [["Model artifact", md_text(u)] for u in data["model_data"]]
    sealed = audit.get("integrity") or {}
    verdict = {True: "yes: the object holds the recorded bytes", False: "NO: the object's bytes differ (see gaps)",
               None: "not checked (see gaps)"}[sealed.get("verified")]
    container = {True: "yes: the image and environment registered", False: "NO: changed after registration (see gaps)",
                 None: "not checked (see gaps)"}[sealed.get("container_verified")]
    rows += [
        ["Artefact sha256 (recorded)", md_text(sealed.get("sha256") or "absent (see gaps)")],
        ["Model sha256 (recorded)", md_text(sealed.get("model_sha256") or "absent (see gaps)")],
        ["Artefact verified", md_text(verdict)],
        ["Container sha256 (recorded)", md_text(sealed.get("container_sha256") or "absent (see gaps)")],
        ["Inference container verified", md_text(container)],
    ]
    code = audit["code"]
    rows += [
        ["Input features", md_text(data["input_features"])],
        ["Input labels", md_text(data["input_labels"])],
        ["Frozen test set", md_text(data["frozen_test"])],
        ["Code commit", md_text(f"{code['commit']} (from {code['commit_source']})" if code.get("commit_source") else code["commit"])],
    ]
    rows += [["Inference image", md_text(i)] for i in code["images"]]
    rows += [["Inference image digest", md_text(i)] for i in code.get("image_digests") or []]
    report = audit["evaluation"].get("report") or {}
    test_set = report.get("test_set") or {}
    if test_set:
        rows.append(["Test set sha256 / rows", f"{md_text(test_set.get('sha256'))} / {md_text(test_set.get('rows'))}"])
    frozen = audit.get("test_set") or {}
    same = (f"no: {frozen['earlier']['text']}" if frozen.get("earlier") else
            {True: "yes: it holds the set this version was judged on", False: "NO: it was replaced since (see gaps)",
             None: "not checked (see gaps)"}[frozen.get("same")])
    rows.append(["Frozen test set now", md_text(same)])
    for split, checked in (audit.get("splits") or {}).items():
        now = ("gone (see gaps)" if checked.get("gone") else
               {True: "yes: it holds the data this version was trained with", False: "NO: rewritten since (see gaps)",
                None: "not checked (see gaps)"}[checked.get("same")])
        rows += [[f"{split.capitalize()} split", md_text(checked.get("uri"))],
                 [f"{split.capitalize()} split digest (recorded)", md_text(checked.get("recorded") or "absent (see gaps)")],
                 [f"{split.capitalize()} split now", md_text(now)]]
    shown = (CODE_VERSION_PROPERTY, INPUT_FEATURES_PROPERTY, INPUT_LABELS_PROPERTY, FROZEN_TEST_PROPERTY,
             *SPLIT_PROPERTIES.values(), *SPLIT_SHA256_PROPERTIES.values())
    for key in sorted(k for k in audit["metadata"] if k not in shown):
        rows.append([f"Metadata {md_text(key)}", md_text(audit["metadata"][key])])
    out += _table(["Item", "Value"], rows)

    ex = audit["execution"]
    out += ["## Pipeline execution", ""]
    if ex is None:
        out += ["Not found (see Gaps).", ""]
    else:
        confirmed = {True: "yes", False: "**no**", None: "unknown"}[ex["registered_this_package"]]
        out += _table(
            ["Field", "Value"],
            [
                ["Execution", md_text(ex["arn"])],
                ["Found by", md_text(ex["found_by"])],
                ["Status", md_text(ex["status"])],
                ["Started / last modified", f"{md_text(ex['started'])} / {md_text(ex['last_modified'])}"],
                ["Started by", md_text(ex.get("started_by") or "not recorded")],
                ["Register step created this version", confirmed],
            ],
        )
        if ex["parameters"]:
            out += ["Parameters:", ""] + _table(
                ["Name", "Value"], [[md_text(k), md_text(v)] for k, v in sorted(ex["parameters"].items())]
            )
        if ex["steps"]:
            out += ["Steps:", ""] + _table(
                ["Step", "Status", "Started", "Ended", "Job / resource", "Cached from"],
                [
                    [
                        md_text(s["name"]),
                        md_text(s["status"]),
                        md_text(s["started"]),
                        md_text(s["ended"]),
                        md_text(s["resource"]),
                        md_text(s["cached_from"]),
                    ]
                    for s in ex["steps"]
                ],
            )
    out += _evaluation_markdown(audit["evaluation"])
    out += _card_markdown(audit.get("model_card") or {})
    out += ["## Approval history", ""]
    out.append(
        f"Current approval status: {md_text(p['approval_status'])}"
        + ("" if p["approval_status"] == "Approved" else " — **not approved**")
        + "."
    )
    out.append("")
    out += _ledger_markdown(audit.get("ledger") or {})
    out += ["### CloudTrail (UpdateModelPackage calls of the last 90 days, denied attempts included)", ""]
    if audit["approvals"]:
        out += _table(
            ["Time (UTC)", "Identity", "Role", "MFA", "Requested status", "Description", "Result"],
            [
                [
                    md_text(h["time"]),
                    md_text(h["identity"]),
                    md_text(h["role"]),
                    md_text(h["mfa"]),
                    md_text(h["requested_status"]),
                    md_text(h["description"]),
                    md_text(h["error"] or "succeeded"),
                ]
                for h in audit["approvals"]
            ],
        )
    else:
        out += ["No UpdateModelPackage call on this version was found in CloudTrail.", ""]
    if checks:
        out += ["### Approvals held to the approver role", ""] + _table(
            ["Time (UTC)", "Principal", "Source", "Verdict"],
            [[md_text(c["time"]), md_text(c["principal"]), md_text(c["source"]),
              f"**{md_text(c['verdict'])}**" if c["flagged"] else md_text(c["verdict"])] for c in checks],
        )
    out += ["## Deployment", ""]
    rows = [
        ["Serving stack / parameter", f"{md_text(d['stack'])} / {md_text(d['parameter'])}"],
        ["Serving now", serving],
        ["Version serving now", md_text(d["serving_arn"])],
        ["Deployed at (endpoint updated)", md_text(d["deployed_at"])],
        ["Stack operation finished", md_text(d["operation_finished"])],
        ["Method", md_text(d["method"] or "see Gaps")],
    ]
    if d.get("deployed_at_latest"):
        rows.append(["Deployed no later than", md_text(d["deployed_at_latest"])])
    rows += [["Rolled-back attempt", f"{md_text(a['time'])} ({md_text(a['status'])})"] for a in d["rolled_back_attempts"]]
    served = d.get("serving_images") or {}
    rows += [[f"Serving image ({md_text(i['variant'])})",
              f"{md_text(i['resolved'])}, resolved from {md_text(i['specified'])} at {md_text(i['resolved_at'])}"]
             for i in served.get("images") or []]
    if served.get("why"):
        rows.append(["Serving image", md_text(served["why"])])
    out += _table(["Item", "Value"], rows)
    lin = audit["lineage"]
    out += ["## Lineage", ""]
    if lin["artifact"]:
        out += [f"Artifact: {md_text(lin['artifact'])}", ""]
        links = [
            [direction, md_text(a["name"]), md_text(a["type"]), md_text(a["association"]), md_text(a["arn"])]
            for direction in ("upstream", "downstream")
            for a in lin[direction]
        ]
        if links:
            out += _table(["Direction", "Entity", "Type", "Association", "ARN"], links)
    else:
        out += ["No lineage artifact (see Gaps).", ""]
    out += ["## Gaps", ""]
    out += [f"- {md_text(g)}" for g in audit["gaps"]] or ["None: every piece was found."]
    out.append("")
    return "\n".join(out)


# The JSON document's shape (docs/reviewing-deploying-auditing.md, Audit report): a change to
# what a key means or to its type is a new number; keys may be added.
JSON_FORMAT = "mlops-loop-audit/1"


def render_json(audit: Mapping[str, Any]) -> Dict[str, Any]:
    """The report for a pipeline to read: the version, the summary's facts as values, each section's gaps, every gap
    with its section, and the whole record the Markdown is written from (values as gathered, unescaped)."""
    p, n, d = audit["package"], audit["names"], audit["deployment"]
    sections = list(audit.get("gap_sections") or ["model_package"] * len(audit["gaps"]))
    gaps = [{"section": section, "message": message} for section, message in zip(sections, audit["gaps"])]
    by_section = {name: [g["message"] for g in gaps if g["section"] == name] for name in SECTIONS}
    approved_by, approved_at, source = _approver(audit)
    evaluation = audit["evaluation"]
    gate = ((evaluation.get("report") or {}).get("gate")) or {}
    card = audit.get("model_card") or {}
    return {
        "format": JSON_FORMAT,
        "ok": not gaps,
        "generated_at": audit["generated_at"],
        "region": audit.get("region"),
        "caller": dict(audit["caller"]),
        "resolved_by": audit["resolved_by"],
        "model_package": {"arn": p["arn"], "version": p["version"], "group": n["group"], "project": n["project"],
                          "env": n["env"], "model": n["model"]},
        "summary": {
            "approval_status": p["approval_status"],
            "approved_by": approved_by,
            "approved_at": approved_at,
            "approval_source": source,
            "approvals_not_by_approver_role": any(c["flagged"] for c in audit.get("approval_checks") or []),
            "serving_now": d["serving_now"],
            "endpoint": d["endpoint"],
            "deployed_at": d.get("deployed_at"),
            "deployed_no_later_than": d.get("deployed_at_latest"),
            "code_commit": audit["code"]["commit"],
            "pipeline_execution": (audit["execution"] or {}).get("arn"),
            "trigger_reason": audit["trigger_reason"],
            "problem_type": _problem_type(evaluation),
            "gate": ("passed" if gate.get("passed") else "failed") if gate else "unknown",
            "evidence_verified": _evidence_verified(evaluation),
            "model_card_status": card.get("status") if card.get("name") else None,
            "gaps": len(gaps),
        },
        "sections": {name: {"complete": not found, "gaps": found} for name, found in by_section.items()},
        "gaps": gaps,
        "record": {k: v for k, v in audit.items() if k not in ("gaps", "gap_sections")},
    }


def _approver(audit: Mapping[str, Any]) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """(who, when, from where) the summary names as the approver: the auto-approval, the approval ledger's last
    Approved record, else CloudTrail's last successful approval; all None when not approved or not found."""
    if audit["package"]["approval_status"] != "Approved":
        return None, None, None
    checks = audit.get("approval_checks") or []
    if checks and all(c["auto"] for c in checks):
        return checks[-1]["principal"], checks[-1]["time"], "auto-approval"
    kept = [r for r in (audit.get("ledger") or {}).get("records", []) if r["status"] == "Approved"]
    if kept:
        return kept[-1]["principal"], kept[-1]["time"], "approval ledger"
    approved = [h for h in audit["approvals"] if h["requested_status"] == "Approved" and not h["error"]]
    if approved:
        return approved[-1]["identity"], approved[-1]["time"], "CloudTrail"
    return None, None, None


def _evidence_verified(evaluation: Mapping[str, Any]) -> Optional[bool]:
    """True when every report holds the bytes recorded at registration, False when one does not, else None (as
    :func:`_evidence_word` words it)."""
    if not evaluation.get("evidence_recorded"):
        return None
    evidence = evaluation.get("evidence") or {}
    states = [(evidence.get(name) or {}).get("verified") for name in evaluation.get("uris") or {}]
    if False in states:
        return False
    return True if states and all(states) else None


def _card_word(card: Mapping[str, Any]) -> str:
    """The summary's word on the model card: its status, or that there is none."""
    if not card.get("name"):
        return "**none found** (see gaps)" if card.get("looked_for") else "not looked for"
    status = md_text(card.get("status"))
    if card.get("status") != "Approved":
        return (f"{status} (auto-approved version: no review asked)" if card.get("auto_approved")
                else f"**{status}**, not Approved (see gaps)")
    changes = {v.get("change") for v in card.get("changed_after_approval") or []}
    if changes - {"status"}:
        return f"{status}, **changed after the version's approval** (see gaps)"
    version = f"card version {md_text(card.get('version'))}"
    if card.get("approved_after"):
        return f"{status} ({version}), approved after the version was: its content is the one the approval saw"
    if changes:
        return f"{status} ({version}), its status changed after the version's approval: its content did not"
    return f"{status} ({version})"


def _card_markdown(card: Mapping[str, Any]) -> List[str]:
    """The model card section: which card, its status, what package it describes, and each version SageMaker kept."""
    out = ["## Model card", ""]
    if not card.get("name"):
        looked = ", ".join(md_text(n) for n in card.get("looked_for") or [])
        return out + [f"Not found (looked for {looked}; see Gaps).", ""]
    describes = card.get("describes") or {}
    out += _table(["Field", "Value"], [
        ["Name", md_text(card["name"]) + (" (named as cards were before names carried the package's creation time)"
                                          if card.get("legacy") else "")],
        ["Status", md_text(card.get("status"))],
        ["Current card version", md_text(card.get("version"))],
        ["Describes model package", md_text(describes.get("arn"))],
        ["Package created (as the card records it)", md_text(describes.get("created"))],
        ["Created / last modified", f"{md_text(card.get('created'))} / {md_text(card.get('modified'))}"],
        ["Last modified by", md_text(card.get("modified_by"))],
    ])
    changed = {v["version"]: v.get("change") for v in card.get("changed_after_approval") or []}
    if card.get("versions"):
        out += ["Versions (SageMaker keeps each edit as a version):", ""] + _table(
            ["Card version", "Status", "Saved (UTC)", "After the version's approval"],
            [[md_text(v["version"]), md_text(v["status"]), md_text(v["saved"]),
              _CARD_CHANGE.get(changed[v["version"]], "**yes**") if v["version"] in changed else "no"]
             for v in card["versions"]],
        )
    return out


# How a card version saved after the version's approval differs from the one current at the approval
# (model_card._card_after_approval); only a status change is no gap.
_CARD_CHANGE = {
    "content": "**yes: content changed**",
    "status": "yes: status only (content as approved)",
    "unread": "**yes: content not read**",
    "written": "**yes: no card before**",
}


def _problem_type(evaluation: Mapping[str, Any]) -> str:
    """The model's problem type: the evaluation report's; without a report, what the bias report's fairness
    block measures (parity per class: multiclass; error parity: regression); else binary."""
    report = evaluation.get("report")
    if report:
        kind = str(report.get("problem_type") or problem.BINARY)
        return kind if kind in problem.PROBLEM_TYPES else problem.BINARY
    fairness = (evaluation.get("bias") or {}).get("challenger") or {}
    if "error_parity_ratio" in fairness:
        return problem.REGRESSION
    if "per_class" in fairness:
        return problem.MULTICLASS
    return problem.BINARY


def _problem_rows(evaluation: Mapping[str, Any]) -> List[List[str]]:
    """The summary's problem-type row (none for a binary model: its report is unchanged)."""
    kind = _problem_type(evaluation)
    if kind == problem.BINARY:
        return []
    return [["Problem type", _problem_words(kind, evaluation.get("report") or {})]]


def _problem_words(kind: str, report: Mapping[str, Any]) -> str:
    words = problem.DISPLAY_NAME[kind]
    classes = report.get("classes") or []
    if classes:
        words += f" ({len(classes)} classes: {', '.join(md_text(c) for c in classes)})"
    if report.get("primary_metric"):
        words += f"; primary metric {md_text(report['primary_metric'])}"
    return words


def _evidence_word(evaluation: Mapping[str, Any]) -> str:
    """Whether every report holds the bytes recorded at registration (summary row)."""
    if not evaluation.get("evidence_recorded"):
        return "not recorded (registered before evidence digests; see gaps)"
    evidence = evaluation.get("evidence") or {}
    states = [(evidence.get(name) or {}).get("verified") for name in evaluation.get("uris") or {}]
    if False in states:
        return f"**NO**: {states.count(False)} report(s) rewritten since registration (see gaps)"
    if states and all(states):
        return "yes: every report holds the bytes recorded at registration"
    return "not verified (see gaps)"


def _verified_word(entry: Optional[Mapping[str, Any]], recorded: Any) -> str:
    if not entry:
        return "not verified (see gaps)" if recorded else "not recorded"
    if entry.get("verified") is None:
        return "not verified (see gaps)"
    return f"yes (sha256 {md_text(entry['actual'])})" if entry["verified"] else "**NO**: rewritten (see gaps)"


def _gate_word(report: Optional[Mapping[str, Any]]) -> str:
    gate = (report or {}).get("gate")
    if not gate:
        return "unknown"
    return "passed" if gate.get("passed") else "**failed**"


def _evaluation_markdown(evaluation: Mapping[str, Any]) -> List[str]:
    out = ["## Evaluation against the champion", ""]
    report = evaluation.get("report")
    if evaluation.get("uris"):
        evidence = evaluation.get("evidence") or {}
        out += _table(
            ["Report", "S3 URI", "As registered"],
            [[md_text(k), md_text(v), _verified_word(evidence.get(k), evaluation.get("evidence_recorded"))]
             for k, v in sorted(evaluation["uris"].items())],
        )
    kind = _problem_type(evaluation)
    if report:
        challenger = (report.get("challenger") or {}).get("metrics") or {}
        champion_block = report.get("champion")
        champion = (champion_block or {}).get("metrics") or {}
        if kind != problem.BINARY:
            out += [f"Problem type: {_problem_words(kind, report)}.", ""]
        rows = []
        # The type's headline metrics and the one the gate judged on (a count model's deviance is no headline metric).
        judged_on = str(report.get("primary_metric") or problem.default_primary_metric(kind))
        for name in dict.fromkeys((*problem.HEADLINE_METRICS[kind], judged_on)):
            a, b = challenger.get(name), champion.get(name)
            delta = a - b if _is_number(a) and _is_number(b) else None
            rows.append([name, _num(a), _num(b) if champion_block else "no champion", _num(delta)])
        out += _table(["Metric", "Challenger (this version)", "Champion", "Delta"], rows)
        out += _type_metrics_markdown(kind, challenger)
        source = (champion_block or {}).get("source") or {}
        if champion_block:
            out += [f"Champion: {md_text(source.get('model_package_arn') or source.get('location') or source)}", ""]
        if report.get("champion_not_compared"):
            out += [f"Champion not compared: {md_text(report['champion_not_compared'])}; judged as the first model.", ""]
        held = approval.registration_note(report.get(REGISTRATION_KEY), shown=report.get("champion_not_compared"))
        if held:
            out += [f"Registration: {md_text(held)}.", ""]
        gate = report.get("gate") or {}
        out += [f"Gate: {_gate_word(report)}.", ""]
        out += [f"- {md_text(r)}" for r in gate.get("reasons") or []] + [""]
        held = evaluation.get("gate_parameters") or {}
        if held:
            out += ["Gate thresholds against the pipeline execution's parameters:", ""] + _table(
                ["Threshold", "In the report", "Execution parameter", "Execution value", "Same"],
                [
                    [md_text(field), _num(h["report"]), md_text(h["parameter"]), _num(h["execution"]),
                     {True: "yes", False: "**NO**", None: "not checked"}[h["matches"]]]
                    for field, h in held.items()
                ],
            )
        checks = gate.get("checks") or []
        if checks:
            out += _table(
                ["Check", "Passed", "Value", "Threshold"],
                [
                    [
                        md_text(c.get("name") + (f" {c['slice']}" if c.get("slice") else "")),
                        "yes" if c.get("passed") else "**no**",
                        _num(c.get("value")),
                        _num(c.get("threshold")),
                    ]
                    for c in checks
                ],
            )
        fairness = (report.get("challenger") or {}).get("fairness")
        champion_fairness = (champion_block or {}).get("fairness")
        thresholds = gate.get("thresholds") or {}
    else:
        bias = evaluation.get("bias") or {}
        fairness, champion_fairness, thresholds = bias.get("challenger"), bias.get("champion"), bias.get("gate") or {}
        out += ["Metrics not available (see Gaps).", ""]
    out += ["## Fairness", ""]
    if not fairness:
        return out + ["Not available (see Gaps).", ""]
    if kind == problem.MULTICLASS:
        return out + _class_fairness_markdown(fairness, champion_fairness, thresholds, (report or {}).get("classes"))
    if kind == problem.REGRESSION:
        checked = {c.get("name") for c in ((report.get("gate") or {}).get("checks") or [])} if report else None
        return out + _error_parity_markdown(fairness, champion_fairness, thresholds, checked)
    out += [
        f"Sensitive attribute: {md_text(fairness.get('attribute'))} (not a model input); decision threshold {_num(fairness.get('threshold'), 2)}.",
        "",
    ]
    limits = {
        "demographic_parity_difference": ("<=", thresholds.get("max_demographic_parity_difference")),
        "disparate_impact": (">=", thresholds.get("min_disparate_impact")),
        "equal_opportunity_difference": ("", None),
    }
    rows = []
    for name, (op, limit) in limits.items():
        value = fairness.get(name)
        if limit is None or value is None:
            verdict = "not gated" if limit is None else "cannot be assessed"
        else:
            ok = value <= limit if op == "<=" else value >= limit
            verdict = "pass" if ok else "**FAIL**"
        rows.append(
            [
                name,
                _num(value),
                _num((champion_fairness or {}).get(name)) if champion_fairness else "no champion",
                f"{op} {_num(limit)}" if limit is not None else "—",
                verdict,
            ]
        )
    out += _table(["Metric", "This version", "Champion", "Threshold", "Result"], rows)
    groups = fairness.get("groups") or {}
    if groups:
        out += _table(
            ["Group", "Rows", "Base rate", "Positive rate", "TPR", "Used"],
            [
                [
                    md_text(g),
                    md_text(v.get("rows")),
                    _num(v.get("base_rate")),
                    _num(v.get("positive_rate")),
                    _num(v.get("true_positive_rate")),
                    "yes" if v.get("eligible") else "no (too few rows)",
                ]
                for g, v in sorted(groups.items())
            ],
        )
    if fairness.get("note"):
        out += [md_text(fairness["note"]), ""]
    return out


_PER_CLASS = ("precision", "recall", "f1", "predicted_share", "actual_share")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_metrics_markdown(kind: str, metrics: Mapping[str, Any]) -> List[str]:
    """A multiclass model's metrics per class; a regression model's absolute error quantiles."""
    if kind == problem.MULTICLASS:
        per_class = metrics.get("per_class") or {}
        classes = metrics.get("classes") or list(per_class)
        if not per_class:
            return []
        return ["Per class (test set):", ""] + _table(
            ["Class", "Rows", "Precision", "Recall", "F1", "Predicted share", "Actual share"],
            [
                [
                    md_text(c),
                    md_text((per_class.get(c) or {}).get("rows")),
                    *(_num((per_class.get(c) or {}).get(k)) for k in _PER_CLASS),
                ]
                for c in classes
            ],
        )
    if kind == problem.REGRESSION:
        quantiles = metrics.get("abs_error_quantiles") or {}
        if not quantiles and metrics.get("mean_target") is None:
            return []
        return [
            f"Absolute error p50 / p90 / p99: {_num(quantiles.get('p50'))} / {_num(quantiles.get('p90'))} / "
            f"{_num(quantiles.get('p99'))}; mean target {_num(metrics.get('mean_target'))}, mean prediction "
            f"{_num(metrics.get('mean_prediction'))}.",
            "",
        ]
    return []


def _verdict(value: Any, op: str, limit: Any) -> str:
    if limit is None or value is None:
        return "not gated" if limit is None else "cannot be assessed"
    ok = value <= limit if op == "<=" else value >= limit
    return "pass" if ok else "**FAIL**"


def _limit_table(fairness: Mapping[str, Any], champion: Optional[Mapping[str, Any]], limits: Any) -> List[str]:
    """One row per fairness metric ``(name, class key or None, operator, limit)``: this version, the champion, the
    threshold and the verdict (a multiclass metric names the class it comes from)."""
    rows = []
    for name, which, op, limit in limits:
        value = fairness.get(name)
        label = f"{name} (class {md_text(fairness[which])})" if which and fairness.get(which) else name
        rows.append([label, _num(value), _num((champion or {}).get(name)) if champion else "no champion",
                     f"{op} {_num(limit)}" if limit is not None else "—", _verdict(value, op, limit)])
    return _table(["Metric", "This version", "Champion", "Threshold", "Result"], rows)


def _class_fairness_markdown(
    fairness: Mapping[str, Any],
    champion: Optional[Mapping[str, Any]],
    thresholds: Mapping[str, Any],
    classes: Optional[Sequence[str]] = None,
) -> List[str]:
    """Parity per class: the worst class's metrics against the gate, every class's, and each group's predicted shares
    (classes in the model's order when the evaluation report names them)."""
    out = [
        f"Sensitive attribute: {md_text(fairness.get('attribute'))} (not a model input); parity of the predicted classes "
        "across its groups, per class (the gate judges the worst class).",
        "",
    ]
    limits = (
        ("demographic_parity_difference", "demographic_parity_class", "<=", thresholds.get("max_demographic_parity_difference")),
        ("disparate_impact", "disparate_impact_class", ">=", thresholds.get("min_disparate_impact")),
        ("equal_opportunity_difference", None, "", None),
    )
    out += _limit_table(fairness, champion, limits)
    per_class = fairness.get("per_class") or {}
    if per_class:
        out += _table(
            ["Class", "Demographic parity difference", "Disparate impact", "Equal opportunity difference",
             "Predicted (compared groups)"],  # fmt: skip
            [
                [
                    md_text(c),
                    _num(v.get("demographic_parity_difference")),
                    _num(v.get("disparate_impact")),
                    _num(v.get("equal_opportunity_difference")),
                    md_text(v.get("predicted")),
                ]
                for c, v in _in_order(per_class, classes)
            ],
        )
    groups = fairness.get("groups") or {}
    if groups:
        out += _table(
            ["Group", "Rows", "Predicted class shares", "Used"],
            [
                [
                    md_text(g),
                    md_text(v.get("rows")),
                    ", ".join(f"{md_text(c)} {_num(share)}" for c, share in _in_order(v.get("predicted_shares") or {}, classes)),
                    "yes" if v.get("eligible") else "no (too few rows)",
                ]
                for g, v in sorted(groups.items())
            ],
        )
    if fairness.get("note"):
        out += [md_text(fairness["note"]), ""]
    return out


def _in_order(by_class: Mapping[str, Any], classes: Optional[Sequence[str]]) -> List[Any]:
    """``by_class``'s items, the model's classes first in its order."""
    first = [c for c in classes or [] if c in by_class]
    return [(c, by_class[c]) for c in first + [c for c in by_class if c not in first]]


def _error_parity_markdown(
    fairness: Mapping[str, Any], champion: Optional[Mapping[str, Any]], thresholds: Mapping[str, Any],
    checked: Optional[Collection[str]] = None,
) -> List[str]:
    """Error parity and the bias gap against the gate's minimum and maximum, and each group's errors. ``checked``
    (default None: not known, as from the bias report alone): the names of the checks the version's gate made; a
    version gated before its bias gap was (no ``bias_parity`` check) shows the gap as not gated."""
    measure = error_measure_text(fairness, long=True)
    gated = checked is None or "bias_parity" in checked
    bias_limit = thresholds.get("max_demographic_parity_difference") if gated else None
    out = [
        f"Sensitive attribute: {md_text(fairness.get('attribute'))} (not a model input); error parity: the lowest over the "
        f"highest {measure} of its groups; bias gap: how much more one group is over-estimated than another "
        f"({bias_measure_text(fairness)}).",
        "",
    ]
    out += _limit_table(fairness, champion, (("error_parity_ratio", None, ">=", thresholds.get("min_disparate_impact")),
                                             ("bias_gap", None, "<=" if bias_limit is not None else "", bias_limit),
                                             ("mae_difference", None, "", None)))
    groups = fairness.get("groups") or {}
    if groups:
        out += _table(
            ["Group", "Rows", "MAE", "Bias", "Mean target", "Mean prediction", "Used"],
            [
                [
                    md_text(g),
                    md_text(v.get("rows")),
                    _num(v.get("mae")),
                    _num(v.get("bias")),
                    _num(v.get("mean_target")),
                    _num(v.get("mean_prediction")),
                    "yes" if v.get("eligible") else "no (too few rows)",
                ]
                for g, v in sorted(groups.items())
            ],
        )
    if fairness.get("note"):
        out += [md_text(fairness["note"]), ""]
    return out


def render_html(markdown_text: str, *, title: str) -> str:
    """A standalone HTML page of the Markdown report; raw HTML in the Markdown is never passed through."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
        "text-align:left;vertical-align:top;word-break:break-all}</style></head><body>\n"
        f"{body}</body></html>\n"
    )
