"""A model with categoricals of many levels (ids seen in training: a merchant, a postcode) scored a request at a time:
the stored encoding's levels are indexed once per loaded model, not once per request."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from pipeline_code.training.model_io import CATEGORICAL, encode

FEATURES, LEVELS = 10, 200_000


def _metadata() -> dict:
    return {"model": "m", "features": [
        {"name": f"merchant_{i}", "kind": CATEGORICAL, "categories": [f"m-{j}" for j in range(LEVELS)],
         "categories_source": "training_data", "normalise": "none"} for i in range(FEATURES)]}


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def test_a_request_to_a_model_of_many_level_categoricals_costs_a_lookup_not_an_index_of_every_level():
    # GIVEN a loaded model of 10 categoricals of 200,000 training levels each (each request re-indexed every level:
    # about 70 ms per such feature on two cores, 10 s a request at 150 features of 100,000 levels, past the serving
    # container's 60-second timeout under any load) and one-row requests, one of them with values training never saw
    metadata = _metadata()
    rows = [pd.DataFrame({f"merchant_{i}": [f"m-{(k * 7919 + i) % LEVELS}"] for i in range(FEATURES)}) for k in range(5)]
    unseen = pd.DataFrame({f"merchant_{i}": ["m-new" if i % 2 else None] for i in range(FEATURES)})
    # WHEN it scores them, after its first request
    first = _seconds(lambda: encode(rows[0], metadata))
    later = sorted(_seconds(lambda r=r: encode(r, metadata)) for r in rows[1:])
    # THEN a request costs a small fraction of that first one (which indexes the levels once)
    assert later[len(later) // 2] < first / 10, (first, later)
    # and encodes as before: each value to its training level's code, an unseen or missing value to missing
    encoded = encode(rows[3], metadata)
    assert [int(encoded[c].cat.codes[0]) for c in encoded] == [(3 * 7919 + i) % LEVELS for i in range(FEATURES)]
    assert list(encoded["merchant_0"].cat.categories[:2]) == ["m-0", "m-1"]
    assert np.all(encode(unseen, metadata).apply(lambda c: c.cat.codes).to_numpy() == -1)


def test_the_levels_of_a_model_no_longer_loaded_are_not_kept_by_the_cache(monkeypatch):
    # GIVEN a process that scores one model of many-level categoricals, then drops it for another (an evaluation of a
    # candidate after the champion, a notebook loading version after version): the levels cache held every dropped
    # model's levels (lists and indexes, ~100 bytes a level) up to 50M levels, some 5 GB never given back
    import gc
    import weakref

    from pipeline_code.training import model_io

    monkeypatch.setattr(model_io, "_LEVEL_INDEXES", {})

    def metadata(prefix: str) -> dict:
        return {"model": prefix, "features": [{"name": "merchant", "kind": CATEGORICAL, "normalise": "none",
                                              "categories": [f"{prefix}-{j}" for j in range(5_000)]}]}

    old = metadata("old")
    encode(pd.DataFrame({"merchant": ["old-7"]}), old)
    gone = weakref.ref(model_io._LEVEL_INDEXES[id(old["features"][0]["categories"])][1])
    del old
    gc.collect()
    # WHEN the next model scores its first request
    new = metadata("new")
    encoded = encode(pd.DataFrame({"merchant": ["new-7"]}), new)
    gc.collect()
    # THEN the dropped model's levels are gone from memory, the new one's cached and used
    assert gone() is None
    assert [entry[0] for entry in model_io._LEVEL_INDEXES.values()] == [new["features"][0]["categories"]]
    assert int(encoded["merchant"].cat.codes[0]) == 7
