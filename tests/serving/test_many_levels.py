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
    # The levels' text is made once and each feature given its own copy of the list (as a metadata file read back
    # holds): the same metadata as one text per feature and level, without formatting 2,000,000 strings.
    categories = [f"{prefix}-{j}" for j in range(levels)]
    return {"model": prefix, "features": [
        {"name": f"merchant_{i}", "kind": CATEGORICAL, "categories": list(categories),
         "categories_source": "training_data", "normalise": "none"} for i in range(features)]}


def _identical(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two encoded frames hold the same columns and index and, per column, the same levels in the same order,
    the same ordered flag and the same codes: what DataFrame.equals holds them to and more (it allows the levels in
    another order), without hashing every column's 200,000 levels twice as it does to allow that."""
    return a.columns.equals(b.columns) and a.index.equals(b.index) and all(
        a[c].cat.categories.equals(b[c].cat.categories) and a[c].cat.ordered == b[c].cat.ordered
        and np.array_equal(a[c].cat.codes.to_numpy(), b[c].cat.codes.to_numpy()) for c in a.columns)


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
    assert _identical(encoded, encode(rows[3], model.metadata))  # the same encoding as one built for the call alone


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


def _booster_on(encoded: pd.DataFrame, y: np.ndarray):
    """An XGBoost booster trained, as train.py trains one, on the encoded frame itself (its categoricals' levels)."""
    import xgboost as xgb

    data = xgb.DMatrix(encoded, label=y, enable_categorical=True, missing=np.nan)
    return xgb.train({"objective": "binary:logistic", "max_depth": 4, "max_cat_to_onehot": 1, "nthread": 1}, data, 20)


def test_an_xgboost_models_input_gives_the_scores_and_shap_values_of_the_encoded_frame_itself():
    # GIVEN a model of a many-level categorical (training levels in their stored order) and a number, trained on the
    # encoded frame, and requests holding known levels, a value training never saw, missing values and numbers
    import xgboost as xgb

    levels = 5_000
    metadata = _metadata(features=1, levels=levels)
    metadata["features"].append({"name": "amount", "kind": model_io.NUMERIC})
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"merchant_0": [f"m-{j}" for j in rng.integers(0, levels, 3000)],
                          "amount": rng.normal(size=3000)})
    y = ((frame["merchant_0"].str[2:].astype(int) % 3 == 0) ^ (frame["amount"] > 0.5)).to_numpy(dtype=int)
    model = TrainedModel(estimator=_booster_on(encode(frame, metadata), y), metadata=metadata)
    requests = pd.concat([frame.iloc[:200], pd.DataFrame({"merchant_0": ["m-new", None, "m-3"],
                                                          "amount": [0.1, None, np.nan]})], ignore_index=True)
    # WHEN the model's input is built for them THEN its scores and SHAP values are, bit for bit, xgboost's own on the
    # encoded frame (the categorical frame it was trained from)
    reference = xgb.DMatrix(encode(requests, metadata), enable_categorical=True, missing=np.nan)
    for options in ({}, {"pred_contribs": True}):
        expected = model.estimator.predict(reference, validate_features=True, **options)
        assert np.array_equal(model.estimator.predict(to_dmatrix(model, requests), validate_features=True, **options),
                              expected)
    assert model_io.predict(model, requests).tolist() == model.estimator.predict(reference).astype(np.float64).tolist()
