"""The per-request shortcuts of serving give the answers of the general code they stand in for.

Three helpers on every request's path have a cheaper form for the frames serving builds: the feature interpreter's
text columns with their nulls as ``None`` (:func:`pipeline_code.features.compute._nulls_as_none`, numpy instead of a
pandas ``where`` per column), a raw record's features computed on numpy arrays
(:func:`pipeline_code.features.compute.compute_arrays`, instead of ``compute_features``' Series per column and
operation) and the encoding's codes of a text column among the training levels
(:func:`pipeline_code.training.model_io._text_codes`, instead of a categorical of the request's values first). Each
request of a varied set (valid, missing and blank fields, wrong types, unseen and unnormalised levels, extra and
misspelt fields, CSV, JSON and JSON Lines, one and many records, raw and precomputed) is answered through the
shortcuts and through the general code (the shortcuts switched off), and the answers must be the same bytes, content
type, status and message. The model's input is built without the encoded frame
(:func:`pipeline_code.training.model_io.encoded_matrix`, instead of :func:`~pipeline_code.training.model_io.encode`'s
Series and categoricals), a few text values are looked up one by one (``_few_text_codes``) and a request's frame is
scored without copying its feature columns first (``ServingModel.frame_holds_features``): the general code is the
encoded frame's codes and numbers, stacked, scored on the copy.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, List, Optional, Tuple

import numpy as np
import pandas as pd
import pytest

from pipeline_code.features import compute
from pipeline_code.serving import inference as inf
from pipeline_code.training import model_io

Request = Tuple[str, str, str, Optional[str]]


def _where_nulls_as_none(values: np.ndarray, like: pd.Series, missing: Optional[np.ndarray] = None) -> pd.Series:
    """The general code: the pandas ``where`` the interpreter used per text column."""
    series = pd.Series(np.asarray(values, dtype=object), index=like.index, name=like.name, dtype=object)
    keep = series.notna() if missing is None else pd.Series(~missing, index=like.index)
    return series.where(keep, None).astype(object)


def _frame_dmatrix(model, frame, label=None):
    """The general code: :func:`model_io.encode`'s frame (its Series and categoricals), then each column's codes (NaN
    for -1) or numbers as float32, stacked, with the names and types read off the frame."""
    import xgboost as xgb

    encoded = model_io.encode(frame, model.metadata, model.categorical_dtypes)
    columns, types = [], []
    for name in encoded.columns:
        column = encoded[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy().astype(np.float32)
            codes[codes < 0] = np.nan
            columns.append(codes)
            types.append("c")
        else:
            columns.append(column.to_numpy(dtype=np.float32))
            types.append("float")
    data = np.column_stack(columns) if columns else np.empty((len(encoded), 0), dtype=np.float32)
    return xgb.DMatrix(data, label=label, feature_names=list(encoded.columns), feature_types=types,
                       enable_categorical=True, missing=np.nan)


def _general_code(patch) -> None:
    """Every shortcut switched off: the answers of the general code."""
    patch.setattr(compute, "_nulls_as_none", _where_nulls_as_none)
    patch.setattr(model_io, "_text_codes", lambda series, levels, normalise: None)
    patch.setattr(compute, "compute_arrays", lambda *_: None)
    patch.setattr(model_io, "to_dmatrix", _frame_dmatrix)
    # The model scores the frame's feature_order columns (a copy), as it did (a property outranks the cached value).
    patch.setattr(inf.ServingModel, "frame_holds_features", property(lambda self: False))


def _requests(trained, served) -> List[Request]:
    raw, features = trained.raw_records(60), trained.feature_records(40)
    with_extras = trained.feature_records(20, with_extras=True)
    order = list(served.feature_order)
    column = trained.dataset.column
    fields = [*served.required_raw_fields, *served.optional_raw_fields]
    texts = [c for c in fields if column(c).dtype == "string"]
    numbers = [c for c in served.required_raw_fields if column(c).dtype in ("integer", "double")]
    categorical = [f for f in order if served.is_categorical(f)]
    lines = io.StringIO()
    csv.writer(lines).writerows([["" if r[f] is None else r[f] for f in order] for r in features[:25]])
    requests: List[Request] = [
        ("one raw", json.dumps(raw[:1]), inf.JSON, None),
        ("many raw", json.dumps(raw), inf.JSON, None),
        ("one precomputed", json.dumps(features[:1]), inf.JSON, None),
        ("many precomputed", json.dumps(features), inf.JSON, None),
        ("with extras", json.dumps(with_extras), inf.JSON, inf.JSONLINES),
        ("lists", json.dumps([[r[f] for f in order] for r in features[:5]]), inf.JSON, None),
        ("json lines", "\n".join(json.dumps(r) for r in raw[:7]), inf.JSONLINES, inf.JSONLINES),
        ("raw and precomputed", json.dumps(raw[:3] + features[:3]), inf.JSON, None),
        ("csv", lines.getvalue(), inf.CSV, None),
        ("one csv line", lines.getvalue().splitlines()[0], inf.CSV, inf.CSV),
        ("extra fields and ids", json.dumps([dict(r, surprise=1, inference_id=f"id-{i}") for i, r in enumerate(raw[:3])]),
         inf.JSON, inf.JSONLINES),
    ]

    def changed(base: List[dict], at: int, name: str, value: Any) -> str:
        records = [dict(r) for r in base]
        records[at][name] = value
        return json.dumps(records)

    for name in texts:
        for value in ("an unseen level", f"  {str(raw[0][name]).upper()}  ", None, "", 5):
            requests.append((f"raw {name}={value!r}", changed(raw[:4], 1, name, value), inf.JSON, None))
    for name in categorical:
        for value in ("an unseen level", "  A  ", None, 3):
            requests.append((f"precomputed {name}={value!r}", changed(features[:4], 2, name, value), inf.JSON, None))
    for name in numbers[:2]:
        for value in ("abc", None, True, "12", 1e39):
            requests.append((f"raw {name}={value!r}", changed(raw[:3], 0, name, value), inf.JSON, None))
    required = served.required_raw_fields[0]
    missing = [dict(r) for r in raw[:3]]
    del missing[0][required]
    misspelt = [dict(r) for r in raw[:2]]
    misspelt[0][required + "x"] = misspelt[0].pop(required)
    requests += [("missing field", json.dumps(missing), inf.JSON, None),
                 ("misspelt field", json.dumps(misspelt), inf.JSON, None)]
    return requests


def _answers(served, requests: List[Request]) -> List[Tuple[Any, ...]]:
    answers: List[Tuple[Any, ...]] = []
    for _, body, content_type, accept in requests:
        try:
            answers.append(("answered", *inf.invoke(served, body, content_type=content_type, accept=accept)))
        except inf.InvocationError as exc:
            answers.append(("refused", exc.status_code, str(exc)))
    return answers


def test_every_answer_is_the_general_codes(trained, monkeypatch):
    served = inf.model_fn(trained.model_dir)
    requests = _requests(trained, served)
    fast = _answers(served, requests)
    assert served.frame_holds_features
    _general_code(monkeypatch)
    general = _answers(served, requests)
    for (name, *_), mine, expected in zip(requests, fast, general):
        assert mine == expected, name
    # The set holds both kinds of answer, so both paths were compared.
    assert {"answered", "refused"} <= {answer[0] for answer in fast}


def test_text_codes_are_those_of_a_categorical_of_the_values(monkeypatch):
    levels = pd.Index(["a", "b", "c d"], dtype=object)
    feature = {"name": "x", "categories": list(levels)}
    dtype = pd.CategoricalDtype(levels)
    for values in (["a", None, "zz", "b", "a"], [None, np.nan, pd.NA], [], ["c d", "C D "], ["b"]):
        for normalise in (False, True):
            series = pd.Series(values, dtype=object, name="x")
            shown = dict(feature, normalise="strip_lower") if normalise else feature
            mine = model_io._encode_categorical(series, shown, dtype)
            with monkeypatch.context() as patch:
                patch.setattr(model_io, "_text_codes", lambda *_: None)
                general = model_io._encode_categorical(series, shown, dtype)
            assert list(mine.codes) == list(general.codes) and mine.dtype == general.dtype, (values, normalise)
    # Anything but text and nulls goes the general way.
    assert model_io._text_codes(pd.Series([1, "a"], dtype=object), levels, False) is None
    assert model_io._text_codes(pd.Series([1.0, 2.0]), levels, False) is None


def test_few_values_are_coded_as_their_factorised_column_is(monkeypatch):
    """A few values (a one-row request's) are looked up one by one in the levels' hash table: the codes of factorising
    them first; a value that is neither str nor None goes that way too."""
    levels = pd.Index(["a", "b", "c d", ""], dtype=object)
    cases = (["a"], ["zz"], [None], [" A "], ["C D"], [""], ["  "], ["b", None, "b", "zz", " a"], [], ["a"] * 16,
             ["a", np.nan], ["a", pd.NA], [np.nan], ["a", 1], [True], ["b", pd.NaT])
    for values in cases:
        series = pd.Series(values, dtype=object)
        for normalise in (False, True):
            few = model_io._text_codes(series, levels, normalise)
            with monkeypatch.context() as factorised:
                factorised.setattr(model_io, "_FEW_VALUES", 0)
                general = model_io._text_codes(series, levels, normalise)
            assert (few is None) == (general is None), (values, normalise)
            if few is not None:
                assert few.tolist() == general.tolist(), (values, normalise)
    assert model_io._few_text_codes(np.array(["a", np.nan], dtype=object), levels, False) is None
    assert model_io._few_text_codes(np.array(["c d", None, "x"], dtype=object), levels, False).tolist() == [2, -1, -1]


def test_the_model_input_is_the_encoded_frames(trained_models, problem_models):
    """encoded_matrix (the DMatrix's values, names and types) against encode()'s frame turned into codes and numbers,
    for every problem type, on a frame with unseen, unnormalised and missing levels and missing numbers; one row and
    many."""
    from pipeline_code.serving import records

    for built in (trained_models["churn"], trained_models["credit-risk"], *problem_models.values()):
        served = inf.model_fn(built.model_dir)
        if served.trained.framework != model_io.XGBOOST:
            continue
        frame = records.feature_rows(served.contract, built.raw_records(30) + built.feature_records(10)).frame
        for name in served.feature_order:
            if served.is_categorical(name):
                frame.loc[[1, 4], name] = [" " + str(frame[name][0]).upper(), "an unseen level"]
            frame.loc[[2, 5], name] = None
        for rows in (frame.iloc[:1], frame.iloc[1:2], frame.iloc[2:3], frame):
            mine, general = model_io.to_dmatrix(served.trained, rows), _frame_dmatrix(served.trained, rows)
            assert (mine.feature_names, mine.feature_types) == (general.feature_names, general.feature_types)
            values, expected = mine.get_data().toarray(), general.get_data().toarray()
            assert values.tobytes() == expected.tobytes(), built.name
            assert served.trained.estimator.predict(mine).tobytes() == served.trained.estimator.predict(general).tobytes()


def test_text_codes_normalise_each_distinct_value_once_as_the_general_path_does(monkeypatch):
    """A big text column (a batch transform, an evaluation's test set) is looked up by its distinct values, as the
    categorical path did: normalising (and hashing against the levels) every row made the encoding of a 1M-row column
    ~10 times slower than the path the one-row shortcut replaced."""
    levels = pd.Index(["a", "b"], dtype=object)
    series = pd.Series([" A", "b", None, "B ", "zz"] * 200, dtype=object)
    normalised = []

    def counting(value):
        normalised.append(value)
        return value.strip().lower()

    monkeypatch.setattr(model_io.catalog, "normalise_category", counting)
    codes = model_io._text_codes(series, levels, True)
    assert sorted(normalised) == [" A", "B ", "b", "zz"]
    assert list(codes[:5]) == [0, 1, -1, 1, -1] and len(codes) == 1000


def test_nulls_as_none_is_the_where_it_replaced():
    cases = [pd.Series(["a", None, np.nan, "b"], name="x", index=[3, 5, 7, 9]), pd.Series([1.0, 2.0], dtype=object),
             pd.Series([True, None], dtype=object), pd.Series([], dtype=object, name="e"),
             pd.Series(["a", pd.NA], dtype="string", name="s"), pd.Series([None, None], dtype=object),
             pd.Series(pd.to_datetime(["2020-01-01", None], utc=True), name="t"),
             pd.Series(["a", None], dtype="category"), pd.Series([pd.NaT, "x"], dtype=object)]
    for series in cases:
        values = series.to_numpy(dtype=object)
        mine, general = compute._nulls_as_none(values, series), _where_nulls_as_none(values, series)
        pd.testing.assert_series_equal(mine, general, check_exact=True)
        assert [type(v) for v in mine] == [type(v) for v in general], list(series)
    for series in (pd.Series([1, None, 3], dtype="Int64", name="i"), pd.Series([0.1, np.nan], name="f"), cases[0]):
        missing = series.isna().to_numpy(dtype=bool)
        values = series.astype(object).to_numpy()
        pd.testing.assert_series_equal(compute._nulls_as_none(values, series, missing),
                                       _where_nulls_as_none(values, series, missing), check_exact=True)


# Every operator, both kinds of clip and of coalesce, nulls and zeros where they matter, booleans and free text.
OPERATORS_DECLARATION = {
    "record_identifier": "id",
    "event_time": "event_time",
    "labels": ["label"],
    "columns": {
        "id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "n": {"type": "integer", "min": -50, "max": 50},
        "m": {"type": "integer"},
        "x": {"type": "double"},
        "y": {"type": "double", "nullable": False},
        "b": {"type": "boolean"},
        "c": {"type": "string", "allowed": ["a", "b", "c"]},
        "d": {"type": "string"},
        "day": {"type": "date"},
        "label": {"type": "integer"},
    },
    "features": {
        "n": "n", "x": "x", "b": "b", "c": "c", "d": "d",
        "r": "ratio(x, n)", "ri": "ratio(n, m)", "l": "log1p(x)", "lc": "log1p(clip(n, 0, 10))",
        "cl": "clip(n, -5, 5)", "clf": "clip(x, -1.5, 2)",
        "co_int": "coalesce(n, m)", "co_mix": "coalesce(x, n)", "co_num": "coalesce(x, y)",
        "co_txt": "coalesce(d, c)", "co_bool": "coalesce(b, n)",
        "bk": 'bucket(x, [-1, 0, 1], ["lo", "mid", "hi", "top"])', "bki": 'bucket(n, [0], ["neg", "pos"])',
        "pr": "product(x, n)", "pri": "product(n, m)", "nested": "ratio(coalesce(x, product(y, n)), log1p(m))",
    },
}


def test_the_operators_dataset_reads_every_operator_the_arrays_compute():
    """The comparison below holds the two interpreters to the same values for each operator it reads: it reads every
    one of the catalog's but days_since (which always goes to compute_features), so an operator added or changed in one
    interpreter only is compared."""
    from pipeline_code import catalog

    def ops(arg: object) -> set:
        return {arg.op}.union(*(ops(a) for a in arg.args)) if isinstance(arg, catalog.Expr) else set()

    read = set().union(*(ops(f.expr) for f in catalog.parse_dataset("operators", OPERATORS_DECLARATION).features))
    assert read == set(catalog.OPERATORS) - {"days_since"}


def _operator_records(count: int, seed: int) -> List[dict]:
    rng = np.random.default_rng(seed)

    def pick(*values):
        return values[int(rng.integers(len(values)))]

    return [{"id": f"r{k}", "event_time": "2026-01-05T13:00:00Z", "n": pick(None, 0, -7, 3, 50, int(rng.integers(-50, 51))),
             "m": pick(None, 0, 1, -1, 2**40, int(rng.integers(-9, 9))), "x": pick(None, 0.0, -0.5, -3.0, 0.1, 1e30,
                                                                             float(rng.normal())),
             "y": pick(0.0, 2.5, -1.0), "b": pick(None, True, False, "yes", 0), "c": pick(None, "a", " B ", "c"),
             "d": pick(None, "", "free text", "  ", "x"), "day": pick(None, "2019-04-12", "2026-02-28")}
            for k in range(count)]


def test_raw_features_on_arrays_are_compute_features_values_for_every_operator(monkeypatch):
    """compute_arrays against compute_features on the same raw records: every operator and cast, one record and many;
    the frame serving scores must be equal, value for value and type for type."""
    from pipeline_code import catalog
    from pipeline_code.serving import records

    dataset = catalog.parse_dataset("operators", OPERATORS_DECLARATION)
    contract = records.FeatureContract.create(dataset, [f.name for f in dataset.features])
    calls = []
    arrays = compute.compute_arrays
    monkeypatch.setattr(compute, "compute_arrays", lambda *args: calls.append(1) or arrays(*args))
    for count, seed in ((1, 1), (1, 2), (1, 3), (2, 4), (50, 5), (400, 6)):
        raw = _operator_records(count, seed)
        fast = records.feature_rows(contract, raw).frame
        with monkeypatch.context() as general_path:
            general_path.setattr(compute, "compute_arrays", lambda *_: None)
            general = records.feature_rows(contract, raw).frame
        pd.testing.assert_frame_equal(fast, general, check_exact=True)
        for name in fast.columns:
            assert [type(v) for v in fast[name]] == [type(v) for v in general[name]], name
    assert len(calls) == 6  # every request took the arrays' path


def test_a_feature_the_arrays_cannot_compute_is_refused_in_compute_features_words(monkeypatch):
    """An error of compute_features is left to it by the arrays' path, so the 400 is word for word the same; the other
    records of the batch are computed. The catalog refuses every declaration known to end that way (clip(n, 0.5, 3) of
    an integer column is Fractional), so the dataset here is built past it: clh marked Integral, which clips 0 to 0.5."""
    import dataclasses

    from pipeline_code import catalog
    from pipeline_code.serving import records
    from pipeline_code.serving.errors import BadRequestError

    declaration = {**OPERATORS_DECLARATION, "features": {"x": "x", "clh": "clip(n, 0.5, 3)"}}
    dataset = catalog.parse_dataset("operators", declaration)
    features = tuple(dataclasses.replace(f, feature_type=catalog.INTEGRAL) if f.name == "clh" else f
                     for f in dataset.features)
    contract = records.FeatureContract.create(dataclasses.replace(dataset, features=features), ["x", "clh"])
    raw = [{"id": "a", "x": 1.0, "y": 2.0, "n": 2}, {"id": "b", "x": 1.0, "y": 2.0, "n": 0}]
    messages, frames = [], []
    for arrays in (compute.compute_arrays, lambda *_: None):
        monkeypatch.setattr(compute, "compute_arrays", arrays)
        with pytest.raises(BadRequestError) as refused:
            records.feature_rows(contract, raw)
        messages.append(str(refused.value))
        frames.append(records.feature_rows(contract, raw[:1]).frame)
    assert messages[0] == messages[1] == ("records [0, 1]: cannot compute features: feature 'clh': Integral feature has "
                                          "non-integer values (e.g. np.float64(0.5))")
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
    assert frames[0]["clh"].tolist() == [2.0]


def test_every_answer_of_each_problem_type_is_the_general_codes(problem_models, monkeypatch):
    """The multiclass and regression models' answers (raw, precomputed, refused) through the arrays' path and through
    compute_features."""
    for built in problem_models.values():
        served = inf.model_fn(built.model_dir)
        raw, features = built.raw_records(40), built.feature_records(10)
        order = list(served.feature_order)
        categorical = [f for f in order if served.is_categorical(f)]
        lines = io.StringIO()
        csv.writer(lines).writerows([["" if r[f] is None else r[f] for f in order] for r in features])
        requests: List[Request] = [
            ("one raw", json.dumps(raw[:1]), inf.JSON, None), ("many raw", json.dumps(raw), inf.JSON, None),
            ("raw and precomputed", json.dumps(raw[:3] + features[:3]), inf.JSON, inf.JSONLINES),
            ("unseen level", json.dumps([dict(raw[0], region="atlantis")]), inf.JSON, None),
            ("missing optional", json.dumps([dict(raw[1], support_calls_90d=None, gender=None)]), inf.JSON, inf.CSV),
            ("wrong type", json.dumps([dict(raw[2], tenure_months="abc")]), inf.JSON, None),
            ("one precomputed", json.dumps(features[:1]), inf.JSON, inf.CSV),
            ("many precomputed", json.dumps(features), inf.JSON, inf.JSONLINES),
            ("precomputed unseen and missing", json.dumps([dict(r, **{name: value}) for r in features[:2]
                                                           for name in categorical for value in ("atlantis", None)]),
             inf.JSON, None),
            ("json lines", "\n".join(json.dumps(r) for r in raw[:5]), inf.JSONLINES, inf.JSONLINES),
            ("csv", lines.getvalue(), inf.CSV, inf.CSV),
            ("one csv line", lines.getvalue().splitlines()[0], inf.CSV, None),
        ]
        fast = _answers(served, requests)
        with monkeypatch.context() as general_path:
            _general_code(general_path)
            general = _answers(served, requests)
        for (name, *_), mine, expected in zip(requests, fast, general):
            assert mine == expected, (built.name, name)
        assert {"answered", "refused"} <= {answer[0] for answer in fast}
