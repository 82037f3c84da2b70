"""The hyperparameters a model's trainer takes, per framework: names, kinds, bounds and defaults.

One definition for everything that names them: each trainer's flags (``pipeline_code/training/train.py``,
``train_torch.py``), the config's ``models.<name>.hyperparameters`` (checked at synth), the training step's
arguments in the pipeline and the local run. The pipeline passes :data:`PIPELINE_DEFAULTS` and whatever the model's
config sets; a trainer fills in the rest from these defaults. Standard library only.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from pipeline_code.core.frameworks import PYTORCH, XGBOOST


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter: ``kind`` is ``int``, ``float`` or ``widths`` (positive integers, written ``64,32``);
    a number lies in ``low``..``high`` (each bound inclusive unless ``*_open``; no ``high``: unbounded)."""

    name: str
    kind: str
    default: Any
    low: float = 0
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    help: str = ""
    # The range a hyperparameter-tuning job searches (low, high, scaling); None: not tuned.
    tuning: Optional[Tuple[float, float, str]] = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def expected(self) -> str:
        """What a valid value is, as messages say it (``a whole number >= 1``, ``a number in (0, 1]``)."""
        if self.kind == "widths":
            return "a list of layer widths, each a whole number >= 1 (e.g. [64, 32])"
        what = "a whole number" if self.kind == "int" else "a number"
        if self.high is None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return f"{what} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def problem(self, value: Any) -> Optional[str]:
        """Why ``value`` (as the YAML holds it) is not a valid setting; None when it is."""
        if self.kind == "widths":
            ok = (isinstance(value, (list, tuple)) and value
                  and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))
            return None if ok else f"expected {self.expected()}, got {value!r}"
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (self.kind == "int" and not isinstance(value, int)) or not math.isfinite(value):
            hint = ""
            if isinstance(value, str):
                try:
                    float(value)
                    hint = "; YAML read it as text (1e-05 needs a decimal point there: write 1.0e-5, or 0.00001)"
                except ValueError:
                    pass
            return f"expected {self.expected()}, got {value!r}{hint}"
        below = value <= self.low if self.low_open else value < self.low
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return f"expected {self.expected()}, got {value!r}" if below or above else None

    def text(self, value: Any) -> str:
        """``value`` as the trainer's flag takes it (``300``, ``0.002``, ``64,32``)."""
        if self.kind == "widths":
            return ",".join(str(int(v)) for v in value)
        if self.kind == "int":
            return str(int(value))
        written = repr(float(value))
        return written[:-2] if written.endswith(".0") else written

    def parse(self, text: str) -> Any:
        """The trainer's ``type=`` for the flag. An integer may be written ``300.0``: SageMaker passes
        hyperparameters that way."""
        if self.kind == "widths":
            try:
                widths = tuple(int(part) for part in str(text).split(",") if part.strip())
            except ValueError:
                widths = ()
            if not widths or min(widths) < 1:
                raise argparse.ArgumentTypeError(f"expected comma-separated layer widths, each a whole number >= 1 "
                                                 f"(e.g. 64,32), got {text!r}")
            return widths
        try:
            number = float(text)
            value = int(number) if self.kind == "int" and number == int(number) else number
        except (TypeError, ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {self.expected()}, got {text!r}") from None
        if self.problem(value) is not None:
            raise argparse.ArgumentTypeError(f"expected {self.expected()}, got {text!r}")
        return value


HYPERPARAMETERS: Mapping[str, Tuple[Hyperparameter, ...]] = {
    XGBOOST: (
        Hyperparameter("num_round", "int", 300, low=1, help="boosting rounds"),
        Hyperparameter("eta", "float", 0.1, low=0, high=1, low_open=True, help="learning rate",
                       tuning=(0.01, 0.3, "Logarithmic")),
        Hyperparameter("max_depth", "int", 5, low=1, help="maximum tree depth", tuning=(3, 10, "Auto")),
        Hyperparameter("min_child_weight", "float", 1.0, low=0, help="minimum hessian weight per leaf",
                       tuning=(1.0, 10.0, "Auto")),
        Hyperparameter("subsample", "float", 0.8, low=0, high=1, low_open=True, help="row subsample ratio per tree"),
        Hyperparameter("early_stopping_rounds", "int", 20, low=0,
                       help="stop after this many rounds without a better validation metric (0: off)"),
        Hyperparameter("seed", "int", 0, low=0, help="random seed"),
    ),
    PYTORCH: (
        Hyperparameter("epochs", "int", 30, low=1, help="passes over the training data"),
        Hyperparameter("batch_size", "int", 512, low=1, help="records per optimiser step"),
        Hyperparameter("learning_rate", "float", 2e-3, low=0, high=1, low_open=True, help="Adam's learning rate"),
        Hyperparameter("weight_decay", "float", 1e-5, low=0, help="L2 penalty"),
        Hyperparameter("hidden", "widths", (64, 32), help="hidden layer widths"),
        Hyperparameter("embedding_dim", "int", 8, low=1, help="widest embedding of a categorical feature"),
        Hyperparameter("dropout", "float", 0.1, low=0, high=1, high_open=True, help="dropout after each hidden layer"),
        Hyperparameter("patience", "int", 5, low=0, help="stop after this many epochs without a lower validation loss (0: off)"),
        Hyperparameter("seed", "int", 0, low=0, help="random seed"),
    ),
}

# What the pipeline's training step passes when the model's config sets nothing (the rest are the trainer's own
# defaults, the same values).
PIPELINE_DEFAULTS: Mapping[str, Tuple[str, ...]] = {
    XGBOOST: ("num_round", "eta", "max_depth", "min_child_weight", "subsample", "early_stopping_rounds"),
    PYTORCH: ("epochs", "batch_size", "learning_rate", "patience"),
}


def of(framework: str) -> Dict[str, Hyperparameter]:
    """The hyperparameters of ``framework`` by name."""
    return {h.name: h for h in HYPERPARAMETERS[framework]}


def defaults(framework: str) -> Dict[str, Any]:
    """Each hyperparameter's default, by name (the trainer's)."""
    return {h.name: h.default for h in HYPERPARAMETERS[framework]}


def problems(framework: str, settings: Mapping[str, Any]) -> Dict[str, str]:
    """Per setting of a model's ``hyperparameters`` that is not valid for ``framework``, why (a name it does not
    have lists the ones it has)."""
    known = of(framework)
    out = {}
    for name, value in settings.items():
        if name not in known:
            out[name] = f"not a hyperparameter of framework {framework!r}; allowed: {', '.join(sorted(known))}"
        elif (problem := known[name].problem(value)) is not None:
            out[name] = problem
    return out


def training_arguments(framework: str, settings: Mapping[str, Any]) -> Tuple[Tuple[str, str], ...]:
    """The training step's ``(name, value)`` pairs: :data:`PIPELINE_DEFAULTS` at their defaults, then the model's
    ``settings`` (valid ones, :func:`problems`), overriding or adding, each as its flag takes it."""
    known = of(framework)
    values = {name: known[name].default for name in PIPELINE_DEFAULTS[framework]}
    values.update(settings)
    return tuple((name, known[name].text(value)) for name, value in values.items())


def tuned(framework: str) -> Tuple[Hyperparameter, ...]:
    """The hyperparameters a tuning job searches for ``framework`` (none for a network: it is not tuned)."""
    return tuple(h for h in HYPERPARAMETERS[framework] if h.tuning is not None)


def tuning_range_problems(framework: str, ranges: Mapping[str, Any]) -> Dict[str, str]:
    """Per entry of a model's ``tuning_ranges`` (hyperparameter -> ``[lowest, highest]``) that a tuning job of
    ``framework`` cannot search, why: a name it does not search (listing those it does), not two numbers, bounds of
    the wrong kind (an integer hyperparameter is searched over whole numbers), a bound the hyperparameter itself does
    not take, or a lowest value not below the highest."""
    searched = {h.name: h for h in tuned(framework)}
    out = {}
    for name, value in ranges.items():
        h = searched.get(name)
        if h is None:
            out[name] = (f"not a hyperparameter the tuning job searches; tunable: {', '.join(sorted(searched))}"
                         if searched else f"framework {framework!r} is not tuned")
            continue
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            out[name] = f"expected [lowest, highest], two numbers, got {value!r}"
            continue
        low, high = value
        if h.kind == "int" and any(isinstance(v, float) for v in value):
            out[name] = (f"{name} is an integer hyperparameter, searched over whole numbers (IntegerParameterRanges): "
                         f"give whole-number bounds, got {list(value)!r}")
            continue
        problem = next((p for p in (h.problem(low), h.problem(high)) if p is not None), None)
        if problem is not None:
            out[name] = f"each bound must be a value {name} takes: {problem}"
        elif low >= high:
            out[name] = f"the lowest value must be below the highest, got {list(value)!r}"
    return out


def tuning_ranges(framework: str, overrides: Optional[Mapping[str, Any]] = None) -> Tuple[Tuple[str, str, Any, Any, str], ...]:
    """The ranges a tuning job of ``framework`` searches, ``(name, "integer" | "continuous", lowest, highest,
    scaling)`` per tuned hyperparameter: the model's ``overrides`` (valid ones, :func:`tuning_range_problems`) over
    each hyperparameter's own range; the scaling is always the hyperparameter's."""
    overrides = overrides or {}
    out = []
    for h in tuned(framework):
        low, high = overrides.get(h.name, h.tuning[:2])
        cast = int if h.kind == "int" else float
        out.append((h.name, "integer" if h.kind == "int" else "continuous", cast(low), cast(high), h.tuning[2]))
    return tuple(out)
