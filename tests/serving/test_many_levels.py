"""A model with categoricals of many levels (ids seen in training: a merchant, a postcode) scored a request at a time:
the stored encoding's levels are indexed once per loaded model, not once per request."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd

from pipeline_code.training import model_io
from pipeline_code.training.model_io import CATEGORICAL, TrainedModel, encode, to_dmatrix

FEATURES, LEVELS = 10, 200_000


def _metadata(prefix: str = "m", features: int = FEATURES, levels: int = LEVELS) -> dict:
    return {"model": prefix, "features": [
        {"name": f"merchant_{i}", "kind": CATEGORICAL, "categories": [f"{prefix}-{j}" for j in range(levels)],
         "categories_source": "training_data", "normalise": "none"} for i in range(features)]}


def test_a_request_to_a_model_of_many_level_categoricals_costs_a_lookup_not_an_index_of_every_level(monkeypatch):
    # GIVEN a loaded model of 10 categoricals of 200,000 training levels each (each request re-indexed every level:
    # about 70 ms per such feature on two cores, 10 s a request at 150 features of 100,000 levels, past the serving
    # container's 60-second timeout under any load) and one-row requests, one of them with values training never saw
    built = []
    build = model_io.categorical_dtypes
    monkeypatch.setattr(model_io, "categorical_dtypes", lambda metadata: built.append(1) or build(metadata))
    model = TrainedModel(estimator=None, metadata=_metadata())
    rows = [pd.DataFrame({f"merchant_{i}": [f"m-{(k * 7919 + i) % LEVELS}"] for i in range(FEATURES)}) for k in range(5)]
    unseen = pd.DataFrame({f"merchant_{i}": ["m-new" if i % 2 else None] for i in range(FEATURES)})
    # WHEN it scores them (the model's input built as serving builds it)
    for row in [*rows, unseen]:
        to_dmatrix(model, row)
    # THEN the levels were indexed once, for the model (kept with it), not once per request
    assert len(built) == 1
    encoded = encode(rows[3], model.metadata, model.categorical_dtypes)
    # and encode as before: each value to its training level's code, an unseen or missing value to missing
    assert [int(encoded[c].cat.codes[0]) for c in encoded] == [(3 * 7919 + i) % LEVELS for i in range(FEATURES)]
    assert list(encoded["merchant_0"].cat.categories[:2]) == ["m-0", "m-1"]
    assert np.all(encode(unseen, model.metadata, model.categorical_dtypes).apply(lambda c: c.cat.codes).to_numpy() == -1)
    assert encoded.equals(encode(rows[3], model.metadata))  # the same encoding as one built for the call alone


def test_the_levels_of_a_model_no_longer_loaded_are_not_kept():
    # GIVEN a process that scores one model of many-level categoricals, then drops it for another (an evaluation of a
    # candidate after the champion, a notebook loading version after version): a process-wide levels cache held every
    # dropped model's levels (lists and indexes, ~100 bytes a level) up to 50M levels, some 5 GB never given back
    old = TrainedModel(estimator=None, metadata=_metadata("old", features=1, levels=5_000))
    to_dmatrix(old, pd.DataFrame({"merchant_0": ["old-7"]}))
    gone = weakref.ref(old.categorical_dtypes["merchant_0"])
    # WHEN the model is dropped and the next one scores its first request
    del old
    gc.collect()
    new = TrainedModel(estimator=None, metadata=_metadata("new", features=1, levels=5_000))
    encoded = encode(pd.DataFrame({"merchant_0": ["new-7"]}), new.metadata, new.categorical_dtypes)
    # THEN the dropped model's levels are gone from memory, the new one's used
    assert gone() is None
    assert int(encoded["merchant_0"].cat.codes[0]) == 7
