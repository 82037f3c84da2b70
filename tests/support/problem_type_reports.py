"""Real evaluation reports of a multiclass and a regression model, for the model card and audit tests.

The dataset ``shop_orders`` and its models are those of :mod:`tests.support.problem_types` (not the sample
config): ``segment`` (which of three customer segments: multiclass) and ``basket_value`` (regression), judged
for fairness across ``age_band`` and sliced by ``channel``. Records come from the schema simulator
(:func:`tests.support.training.write_inputs`, the label following the model's inputs), then the project's own jobs
run on them: prepare (a new frozen test set), train (a realistic and a deliberately weak model), and
evaluate - whose ``evaluation.json`` and ``bias.json`` the tests read.

``shop_zones`` has one integer label with 24 classes: more than a model card's matrix holds (20 x 20).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Optional

from pipeline_code import catalog
from pipeline_code.core import problem
from pipeline_code.training import evaluate, prepare
from pipeline_code.training.spec import GateThresholds, ModelSpec, parse_model_spec
from tests.support.problem_types import dataset, make_spec
from tests.support.training import train_model, write_inputs

CLASSES = ["bronze", "silver", "gold"]

MANY_CLASSES = 24
ZONES: Dict[str, Any] = {
    "record_identifier": "order_id",
    "event_time": "event_time",
    "labels": ["zone"],
    "columns": {
        "order_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "visits_30d": {"type": "integer", "min": 0, "max": 500},
        "session_minutes": {"type": "double", "min": 0, "max": 1000},
        "channel": {"type": "string", "nullable": False, "allowed": ["web", "app", "store"]},
        "age_band": {"type": "string", "allowed": ["young", "middle", "senior"]},
        "zone": {"type": "integer", "min": 1, "max": MANY_CLASSES},
    },
    "features": {"visits_30d": "visits_30d", "log_session_minutes": "log1p(session_minutes)", "channel": "channel",
                 "age_band": "age_band"},
}  # fmt: skip

# A permissive gate the realistic model passes against the weak champion; tests tighten single thresholds. Its parity
# gap also bounds the regression model's bias gap, which on ~200 test rows per group is noise of about 0.2.
GATE = GateThresholds(
    min_auc=0.6, challenger_margin=0.0, max_slice_regression=0.05, max_demographic_parity_difference=0.3, min_disparate_impact=0.5
)
ROWS = 4000


@dataclasses.dataclass
class Trained:
    """Prepared splits and two trained models of one spec; :meth:`evaluate` runs the evaluate job."""

    spec: ModelSpec
    prepared: Dict[str, str]
    strong: str
    weak: str

    def evaluate(
        self,
        out: Path,
        *,
        gate: GateThresholds = GATE,
        spec: Optional[ModelSpec] = None,
        challenger: str = "strong",
        champion: Optional[str] = "weak",
        shap_rows: Optional[int] = None,
    ) -> Dict[str, Any]:
        """The evaluate job's report (``out`` also holds its ``bias.json`` and the other files); ``shap_rows``: its
        ``--shap-sample-rows`` (default: the job's)."""
        models = {"strong": self.strong, "weak": self.weak}
        code = evaluate.main(
            ["--model-spec", (spec or self.spec).to_json(), "--model-dir", models[challenger], "--test-dir",
             self.prepared["test"], "--champion-dir", models[champion] if champion else "", "--output-dir", str(out),
             *gate.to_args(), *(["--shap-sample-rows", str(shap_rows)] if shap_rows else [])]
        )  # fmt: skip
        assert code == 0
        return json.loads((out / "evaluation.json").read_text())


def _prepare(spec: ModelSpec, inputs: Dict[str, str], root: Path) -> Dict[str, str]:
    code = prepare.main(
        ["--model-spec", spec.to_json(), "--features-dir", inputs["features"], "--labels-dir", inputs["labels"],
         "--frozen-test-dir", str(root / "no-frozen-test"), "--output-dir", str(root / "prepared")]
    )  # fmt: skip
    assert code == 0
    return {s: str(root / "prepared" / s) for s in ("train", "validation", "test")}


def train(problem_type: str, root: Path) -> Trained:
    """GIVEN :data:`ROWS` generated ``shop_orders`` records, prepared for the ``problem_type`` model: a realistic
    model (60 rounds) and a weak one (2 stumps)."""
    spec = make_spec(problem_type)
    inputs = write_inputs(root / "inputs", dataset(), ROWS, seed=3, signal_features=spec.features)
    prepared = _prepare(spec, inputs, root)
    strong = train_model(spec, prepared, root / "strong")
    weak = train_model(spec, prepared, root / "weak", "--num-round", "2", "--max-depth", "1", "--eta", "0.05")
    return Trained(spec, prepared, strong, weak)


_SHARED: Dict[tuple, Trained] = {}


def shared(problem_type: str, tmp_path_factory: Any) -> Trained:
    """:func:`train` of ``problem_type`` once per test process (per pytest session), for the tests that only read the
    prepared splits and the two models (each writes its evaluations, champions and copies elsewhere): the model card,
    audit and problem-type tests train the same seeded data, the same way."""
    key = (str(tmp_path_factory.getbasetemp()), problem_type)
    if key not in _SHARED:
        _SHARED[key] = train(problem_type, tmp_path_factory.mktemp(f"shared-{problem_type}"))
    return _SHARED[key]


def many_classes_report(root: Path, *, shap_rows: Optional[int] = None) -> tuple:
    """(spec, report) of a :data:`MANY_CLASSES`-class model of ``shop_zones``, evaluated as the first model
    (``shap_rows``: as :meth:`Trained.evaluate`'s)."""
    dataset = catalog.parse_dataset("shop_zones", ZONES)
    spec = parse_model_spec({
        "name": "shop-zone", "dataset": dataset.to_declaration(), "target": "zone",
        "features": ["visits_30d", "log_session_minutes", "channel"], "sensitive_attribute": "age_band",
        "slices": ["channel"], "problem_type": problem.MULTICLASS,
    })  # fmt: skip
    inputs = write_inputs(root / "inputs", dataset, 3000, seed=3)
    prepared = _prepare(spec, inputs, root)
    model = train_model(spec, prepared, root / "model", "--num-round", "10")
    trained = Trained(spec, prepared, model, model)
    return spec, trained.evaluate(root / "evaluation", champion=None, shap_rows=shap_rows)
