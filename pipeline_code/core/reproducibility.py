"""What a model's record says about whether a run can be repeated: where a training resumed from a spot checkpoint.

Each trainer records, in its artefact's training summary (``feature_metadata.json`` ``training``), the checkpoint it
resumed from (None: it ran uninterrupted): :data:`RESUMED_FROM` names the field per trainer. The evaluation report's
``model_info`` carries it, and its summary and the model card say what it means (:func:`resumed_note`; docs/training.md
"Reproducibility").

Standard library only: the jobs and the model card import it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

# The training summary's field -> the unit it counts: XGBoost's rounds, the network's epochs.
RESUMED_FROM = {"resumed_from_round": "round", "resumed_from_epoch": "epoch"}
# ... and the summary's field counting the rounds or epochs the run ended with, resumed ones included: a run that
# resumed from its last one (the pipeline's checkpoints are keyed by data and configuration, so a later run on the
# same ones finds the finished run's) trained nothing more.
TRAINED = {"resumed_from_round": "rounds_trained", "resumed_from_epoch": "epochs_trained"}


def resumed_note(model_info: Mapping[str, Any]) -> Optional[str]:
    """What ``model_info`` (an evaluation report's, or a training summary) says about a training resumed from a spot
    checkpoint, as a clause; None when it ran uninterrupted or the artefact does not say.

    An XGBoost booster resumed from a checkpoint draws its row samples (``subsample``) afresh from the seed, so it is
    not bit for bit the model an uninterrupted run trains; the network restores its random state from the checkpoint,
    and on the CPU it is."""
    for key, unit in RESUMED_FROM.items():
        if model_info.get(key) is not None:
            where = f"resumed from a spot checkpoint after {unit} {model_info[key]}"
            if model_info.get(TRAINED[key]) == model_info[key]:
                return f"{where}, its last: the model the run that wrote the checkpoint trained, unchanged"
            if unit == "round":
                return (f"{where}: a resumed XGBoost training is not bit-reproducible (it samples other rows after the "
                        "resume than an uninterrupted run), so its model differs from one trained without interruption")
            return (f"{where}: it continued the run's random state, so on a CPU it is the model an uninterrupted run "
                    "trains (on a GPU or Neuron device, not guaranteed bit for bit)")
    return None
