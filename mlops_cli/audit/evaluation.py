"""The version's evaluation and bias reports, each evidence document checked against the digest recorded at
registration, and the gate thresholds the report judged with against those its pipeline execution ran with."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Dict, Mapping, Optional

from pipeline_code.core import integrity
from pipeline_code.core.contract import EVALUATION_FILE, GATE_PARAMETERS

from .aws import Clients, Gaps, attempt, read_bytes


# The package's ModelMetrics documents: (name in the report, ModelMetrics section, entry).
_METRICS = (
    ("model_quality", "ModelQuality", "Statistics"),
    ("data_statistics", "ModelDataQuality", "Statistics"),
    ("data_constraints", "ModelDataQuality", "Constraints"),
    ("bias", "Bias", "Report"),
    ("explainability", "Explainability", "Report"),
)


def gather_evaluation(clients: Clients, package: Mapping[str, Any], gaps: Gaps) -> Dict[str, Any]:
    """The evaluation and bias reports, and each evidence document checked against the digest recorded at
    registration (``evidence``: name -> uri, recorded and actual sha256, ``verified`` True / False / None).

    A ModelMetrics document's digest is its ContentDigest (SageMaker keeps it as registered); ``evaluation.json``'s
    is in ``bias.json`` (``integrity.EVALUATION_DIGEST_KEY``), trusted once bias.json's own digest holds. Every
    digest is recomputed from the bytes read, the very bytes the report then shows."""
    metrics = package.get("ModelMetrics") or {}
    out: Dict[str, Any] = {"uris": {}, "report": None, "bias": None, "evidence": {}, "evidence_recorded": False}
    sources: Dict[str, Mapping[str, Any]] = {}
    for name, section, kind in _METRICS:
        source = (metrics.get(section) or {}).get(kind) or {}
        if source.get("S3Uri"):
            out["uris"][name] = source["S3Uri"]
            sources[name] = {**source, "where": f"ModelMetrics {section}.{kind}"}
    quality, bias = out["uris"].get("model_quality"), out["uris"].get("bias")
    if not quality and not bias:
        gaps.add("evaluation: the package carries no ModelMetrics (no evaluation or bias report to read)")
        return out
    digested = [name for name, source in sources.items() if source.get("ContentDigest")]
    out["evidence_recorded"] = bool(digested)
    if not digested:
        gaps.add("evidence: not recorded: the version was registered before its reports' digests were (no ContentDigest "
                 "in its ModelMetrics), so the reports below are what S3 holds now, unverified")
    bodies: Dict[str, bytes] = {}
    for name, source in sources.items():
        if not source.get("ContentDigest"):
            if digested:
                gaps.add(f"evidence: {source['S3Uri']}: no digest recorded at registration (not verified)")
            continue
        body = attempt(gaps, f"evidence {source['S3Uri']}", lambda: read_bytes(clients, source["S3Uri"]))
        if body is not None:
            bodies[name] = body
            _verify(out, gaps, name, source["S3Uri"], body, integrity.hex_of_content_digest(source["ContentDigest"]),
                    f"its {source['where']} ContentDigest")
    bias_report = _parse(gaps, f"bias report {bias}", bodies.get("bias"))
    if quality:
        uri = quality.rsplit("/", 1)[0] + "/" + EVALUATION_FILE
        out["uris"]["evaluation"] = uri
        body = attempt(gaps, f"evaluation report {uri}", lambda: read_bytes(clients, uri))
        if body is not None:
            if digested:
                _verify_evaluation(out, gaps, uri, body, bias_report)
            out["report"] = _parse(gaps, f"evaluation report {uri}", body)
    if out["report"] is None and bias:
        if "bias" not in bodies and "bias" not in out["evidence"]:  # not read above: no digest recorded for it
            bias_report = _parse(gaps, f"bias report {bias}",
                                 attempt(gaps, f"bias report {bias}", lambda: read_bytes(clients, bias)))
        out["bias"] = bias_report
    return out


def _parse(gaps: Gaps, what: str, body: Optional[bytes]) -> Optional[Dict[str, Any]]:
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        gaps.add(f"{what}: not JSON ({exc})")
        return None


def _verify(out: Dict[str, Any], gaps: Gaps, name: str, uri: str, body: bytes, recorded: Optional[str], where: str) -> None:
    actual = hashlib.sha256(body).hexdigest()
    verified = None if recorded is None else actual == recorded
    out["evidence"][name] = {"uri": uri, "recorded": recorded, "actual": actual, "verified": verified, "recorded_in": where}
    if verified is False:
        gaps.add(f"evidence: {uri} has sha256 {actual}, not the {recorded} recorded at registration ({where}): it was "
                 "rewritten since")
    elif recorded is None:
        gaps.add(f"evidence: {uri}: the digest recorded at registration is not a sha256 ({where}; not verified)")


def _verify_evaluation(out: Dict[str, Any], gaps: Gaps, uri: str, body: bytes, bias: Optional[Mapping[str, Any]]) -> None:
    """evaluation.json against the digest bias.json carries, once bias.json is the document registered."""
    checked = out["evidence"].get("bias") or {}
    recorded = integrity.hex_of_content_digest((bias or {}).get(integrity.EVALUATION_DIGEST_KEY))
    if checked.get("verified") is True and recorded is not None:
        _verify(out, gaps, "evaluation", uri, body, recorded, f"{integrity.EVALUATION_DIGEST_KEY} in the verified bias report")
        return
    why = ("the bias report that records its digest does not hold the registered bytes" if checked.get("verified") is False
           else "the bias report that records its digest could not be verified" if checked
           else "the bias report records no digest of it")
    out["evidence"]["evaluation"] = {"uri": uri, "recorded": None, "actual": hashlib.sha256(body).hexdigest(),
                                     "verified": None, "recorded_in": None}
    gaps.add(f"evidence: {uri}: not verified ({why})")


def gather_gate_parameters(clients: Clients, execution: Optional[Mapping[str, Any]], report: Optional[Mapping[str, Any]],
                           gaps: Gaps) -> Dict[str, Any]:
    """The evaluation report's gate thresholds against the values the pipeline execution ran with (its parameters;
    a parameter it does not list took the default of the definition it ran: ``DescribePipelineDefinitionForExecution``).
    ``{field: {"report", "execution", "parameter", "matches"}}``; each difference is a gap."""
    thresholds = ((report or {}).get("gate") or {}).get("thresholds") or {}
    if not execution or not thresholds:
        return {}
    given = dict(execution.get("parameters") or {})
    if any(name not in given for name in GATE_PARAMETERS.values()):
        # A run record holds the definition the execution ran.
        described = execution.get("definition") or attempt(
            gaps, f"pipeline definition of execution {execution['arn']}",
            lambda: clients.sagemaker.describe_pipeline_definition_for_execution(PipelineExecutionArn=execution["arn"]))
        try:
            declared = json.loads((described or {}).get("PipelineDefinition") or "{}").get("Parameters") or []
        except ValueError:
            declared = []
        for p in declared:
            if isinstance(p, Mapping) and p.get("Name") not in given and "DefaultValue" in p:
                given[p["Name"]] = p["DefaultValue"]
    out: Dict[str, Any] = {}
    for field, name in GATE_PARAMETERS.items():
        reported, ran = _number(thresholds.get(field)), _number(given.get(name))
        matches = None if reported is None or ran is None else math.isclose(reported, ran, rel_tol=1e-9, abs_tol=1e-12)
        out[field] = {"parameter": name, "report": reported, "execution": ran, "matches": matches}
        if matches is False:
            gaps.add(f"gate thresholds: the evaluation report judged with {field} {reported:g}, but the pipeline "
                     f"execution ran with {name} {ran:g}")
        elif ran is None and reported is not None:
            # Neither holds it: the version was judged before the threshold existed (its gate had no such check).
            gaps.add(f"gate thresholds: the pipeline execution records no {name}; the report's {field} is not checked")
    return out


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
