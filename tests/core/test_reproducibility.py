"""What a report says about a training resumed from a spot checkpoint (pipeline_code.core.reproducibility)."""

from __future__ import annotations

import pytest

from pipeline_code.core.reproducibility import resumed_note


@pytest.mark.parametrize("info", [{}, {"resumed_from_round": None}, {"resumed_from_epoch": None, "epochs_trained": 4}])
def test_a_run_that_did_not_resume_or_does_not_say_gets_no_note(info):
    assert resumed_note(info) is None


def test_a_resumed_xgboost_run_is_not_bit_reproducible():
    note = resumed_note({"resumed_from_round": 20, "rounds_trained": 60})
    assert note == ("resumed from a spot checkpoint after round 20: a resumed XGBoost training is not bit-reproducible "
                    "(it samples other rows after the resume than an uninterrupted run), so its model differs from one "
                    "trained without interruption")


def test_a_resumed_network_continues_its_random_state():
    note = resumed_note({"resumed_from_epoch": 2, "epochs_trained": 4})
    assert note is not None and note.startswith("resumed from a spot checkpoint after epoch 2: it continued the run's "
                                                "random state, so on a CPU it is the model an uninterrupted run trains")


@pytest.mark.parametrize("info", [{"resumed_from_round": 300, "rounds_trained": 300},
                                  {"resumed_from_epoch": 30, "epochs_trained": 30}])
def test_a_run_that_resumed_from_its_last_checkpoint_trained_nothing_more(info):
    """The pipeline's checkpoints are keyed by data and configuration: a later run on the same ones finds the finished
    run's last checkpoint and keeps its model."""
    assert resumed_note(info).endswith("its last: the model the run that wrote the checkpoint trained, unchanged")
