"""A network compiled for Inferentia2: the files its artefact adds, and the parity check its rollout runs.

A ``framework: pytorch`` model served on ``ml.inf2.*`` goes through one more pipeline step, *Compile*
(:mod:`pipeline_code.training.compile_neuron`), which traces the network's dense layers with
``torch_neuronx`` for the ``inf2`` target and adds to ``model.tar.gz``, beside the CPU model
(``model.json``, which every job and a CPU endpoint keep using):

* :data:`TRACED_FILE`: the traced TorchScript module, at a fixed batch of :data:`DEFAULT_BATCH`
  rows (Neuron runs static shapes; serving pads a request to whole batches);
* :data:`COMPILED_FILE`: how it was compiled (compiler, target, batch, input width, versions).

The evaluation job then takes :data:`PARITY_RECORDS` records of the frozen test set, scores them
with the CPU model through the serving code, records those answers in its report and puts them in
the archive as :data:`PARITY_FILE` before sealing it. During a rollout's baking window the parity
handler (:mod:`pipeline_code.handlers.parity_check`) sends that request to the endpoint until the
new version answers, compares with :func:`parity_mismatches` and publishes :data:`PARITY_METRIC`;
its alarm is one of the endpoint's rollback alarms. The version an endpoint is created with has no rollout: the
same handler checks it once the endpoint is in service (:data:`ENDPOINT_EVENT`) and, when it does not match,
tells people the approver's command that rejects it (it changes nothing itself).

Standard library only.
"""

from __future__ import annotations

import math
from typing import Any, List, Mapping, Sequence

TRACED_FILE = "model_neuron.pt"
COMPILED_FILE = "compiled.json"
PARITY_FILE = "parity.json"
COMPILED_FORMAT = "mlops-loop/compiled-network/v1"
PARITY_FORMAT = "mlops-loop/parity/v1"

# The compile target of ml.inf2 (neuronx-cc --target).
INF2_TARGET = "inf2"
# Compilers the artefact can name (compiled.json "compiler"): the Neuron one, and the CPU stand-in the tests
# and the local run use (torch.jit.trace of the same module; it runs anywhere, a NeuronCore runs only the former).
NEURON_COMPILER = "torch-neuronx"
CPU_STAND_IN = "cpu-stand-in"
COMPILERS = (NEURON_COMPILER, CPU_STAND_IN)

# Rows per traced call: a real-time request is usually a few records; larger batches pad more.
DEFAULT_BATCH = 8
# Records of the frozen test set in the parity sample (the first ones, in the stored order).
PARITY_RECORDS = 32
# Largest allowed difference between the endpoint's and the CPU model's score (probability, or regression
# value relative to max(1, |value|)): fp32 on both sides (neuronx-cc --auto-cast none) leaves ~1e-6.
DEFAULT_PARITY_TOLERANCE = 1e-3
# Every parity request's records carry this inference id prefix (…-0, …-1, …).
PARITY_INFERENCE_ID = "mlops-loop-parity"

# The serving container's environment variable naming the compiler its artefact must have been built by
# (set on ml.inf2 endpoints to NEURON_COMPILER); unset, the container serves the CPU model.
SERVE_COMPILED_ENV = "MLOPS_LOOP_SERVE_COMPILED"

# The EventBridge detail-type of SageMaker's blue/green deployment events (SageMaker Developer Guide, "Events that
# Amazon SageMaker AI sends to Amazon EventBridge"): the rule that runs the parity check matches it.
DEPLOYMENT_EVENT = "SageMaker Endpoint Deployment State Change"
# The detail-type of an endpoint's own status changes (same guide: ``detail.EndpointStatus`` reads ``IN_SERVICE`` once
# it serves, with ``EndpointConfigName`` and ``CreationTime``). An endpoint's creation has no deployment events, so the
# first version it serves is checked when one of these says it is in service.
ENDPOINT_EVENT = "SageMaker Endpoint State Change"

# What the parity handler publishes per endpoint (namespace contract.parity_namespace, dimension EndpointName): 1 for
# a mismatch or a check that could not run, 0 for a pass. The rollback alarm <endpoint>-rollout-parity watches its
# maximum.
PARITY_METRIC = "ParityMismatch"


def parity_alarm_name(endpoint_name: str) -> str:
    """The rollback alarm of the parity check: ``<endpoint>-rollout-parity``."""
    return f"{endpoint_name}-rollout-parity"


def answer_numbers(answer: Mapping[str, Any]) -> List[float]:
    """The numbers one JSON record answer carries: its ``score`` (or regression ``value``), then its
    class probabilities in class-name order. Non-numbers become NaN (never equal to anything)."""
    numbers: List[Any] = []
    for key in ("score", "value"):
        if key in answer:
            numbers.append(answer[key])
    probabilities = answer.get("probabilities")
    if isinstance(probabilities, Mapping):
        numbers.extend(probabilities[name] for name in sorted(probabilities))
    return [float(n) if isinstance(n, (int, float)) and not isinstance(n, bool) else math.nan for n in numbers]


def parity_mismatches(expected: Sequence[Mapping[str, Any]], answered: Sequence[Mapping[str, Any]], tolerance: float) -> List[str]:
    """Why the endpoint's answers differ from the CPU model's (empty when they agree): a different number of
    records, an answer that is not an object, other classes, or other numbers per record, or a number further
    than ``tolerance`` from the expected one (relative to max(1, |expected|)). Labels are not compared: a score within the tolerance of the decision threshold may
    land on either side of it. At most five records are named."""
    if len(expected) != len(answered):
        return [f"{len(answered)} answers for {len(expected)} parity records"]
    problems: List[str] = []
    worst = 0.0
    for i, (want, got) in enumerate(zip(expected, answered)):
        if not isinstance(got, Mapping):
            problems.append(f"record {i}: {str(got)[:80]!r} is not an answer object")
            continue
        classes = [sorted(x["probabilities"]) if isinstance(x.get("probabilities"), Mapping) else None for x in (want, got)]
        if classes[0] != classes[1]:
            problems.append(f"record {i}: probabilities for classes {classes[1]}, expected {classes[0]}")
            continue
        a, b = answer_numbers(want), answer_numbers(got)
        if len(a) != len(b):
            problems.append(f"record {i}: {len(b)} numbers, expected {len(a)}")
            continue
        for x, y in zip(a, b):
            gap = abs(x - y) / max(1.0, abs(x)) if math.isfinite(x) and math.isfinite(y) else math.inf
            if gap > tolerance:
                worst = max(worst, gap)
                problems.append(f"record {i}: {y!r}, expected {x!r}")
                break
    if len(problems) > 5:
        problems = problems[:5] + [f"... {len(problems) - 5} more"]
    if worst:
        problems.append(f"largest difference {worst:.3g} > tolerance {tolerance:g}")
    return problems
