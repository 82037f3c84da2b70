"""A trained model, whatever its framework: the stored feature encoding, loading, saving and scoring.

Every job that reads a model after training (evaluation, baseline, the drift monitor, the serving
hooks, the local run) goes through this module, so a PyTorch challenger is scored exactly like an
XGBoost champion. The artefact is the same for both: ``model.json`` and ``feature_metadata.json``
(tarred to ``model.tar.gz``), the metadata's ``framework`` naming what ``model.json`` holds:

* ``xgboost`` (also artefacts from before frameworks): an XGBoost booster in its JSON format;
* ``pytorch``: the tabular network in :mod:`.network`'s format, scored with numpy (no torch needed).

**Encoding.** Numeric features become float32 with NaN for missing; categorical features a pandas
``category`` with a *fixed* level list (from the catalog's allowed values or bucket labels; else the
sorted training values). Values outside the levels are treated as missing. The feature order, types
and levels are written with the model and :func:`predict` re-applies them, so evaluation and serving
encode identically.

xgboost is imported only when an XGBoost model is loaded or scored.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.core import problem
from pipeline_code.core.frameworks import FRAMEWORKS, PYTORCH, XGBOOST  # noqa: F401 - re-exported
from pipeline_code.core.integrity import METADATA_FILE, MODEL_ARCHIVE, MODEL_FILE
from pipeline_code.training import data_io, network as network_lib
from pipeline_code.training import metrics as metric_lib
from pipeline_code.training import metrics_multiclass, metrics_regression
from pipeline_code.training.data_io import InputError
from pipeline_code.training.spec import ModelSpec

METADATA_FORMAT = "mlops-loop/feature-metadata/v1"
NUMERIC = "numeric"
CATEGORICAL = "categorical"
DEFAULT_THRESHOLD = 0.5


@dataclass
class TrainedModel:
    """A fitted model plus the feature encoding it was trained with.

    ``estimator`` is an ``xgboost.Booster`` for framework ``xgboost`` and a
    :class:`~pipeline_code.training.network.TabularNetwork` for ``pytorch``.
    """

    estimator: Any
    metadata: Dict[str, Any]

    @functools.cached_property
    def categorical_dtypes(self) -> Dict[str, pd.CategoricalDtype]:
        """Its categoricals' dtypes (:func:`categorical_dtypes`), built at the first use and kept with the model."""
        return categorical_dtypes(self.metadata)

    @functools.cached_property
    def xgboost_columns(self) -> Tuple[List[str], List[str]]:
        """The names and XGBoost feature types (``c`` categorical, ``float``) of :func:`encoded_matrix`'s columns, built
        at the first use and kept with the model (a request no longer rebuilds them)."""
        names = [f["name"] for f in self.metadata["features"]]
        types = ["c" if f["kind"] == CATEGORICAL else "float" for f in self.metadata["features"]]
        return names, types

    @property
    def framework(self) -> str:
        """What trained the model (``xgboost`` for artefacts from before frameworks)."""
        return str(self.metadata.get("framework", XGBOOST))

    @property
    def feature_names(self) -> List[str]:
        return [f["name"] for f in self.metadata["features"]]

    @property
    def threshold(self) -> float:
        return float(self.metadata.get("threshold", DEFAULT_THRESHOLD))

    @property
    def problem_type(self) -> str:
        """What the model predicts (``core.problem``); artefacts from before problem types are binary."""
        return str(self.metadata.get("problem_type", problem.BINARY))

    @property
    def classes(self) -> List[str]:
        """The classes in label-code order (``["0", "1"]`` for binary, ``[]`` for regression)."""
        return [str(c) for c in self.metadata.get("classes", ["0", "1"] if self.problem_type == problem.BINARY else [])]

    @property
    def outputs(self) -> Optional[int]:
        """Numbers the model gives per record (the classes of a multiclass model, else 1); None when the
        stored model does not say."""
        if self.framework == PYTORCH:
            return self.estimator.outputs
        try:
            classes = int(json.loads(self.estimator.save_config())["learner"]["learner_model_param"]["num_class"])
        except (KeyError, TypeError, ValueError):
            return None
        return max(classes, 1)

    def size(self) -> Dict[str, int]:
        """How big the fitted model is, for reports: boosting rounds, or a network's parameters."""
        if self.framework == PYTORCH:
            return {"parameters": self.estimator.parameters, "layers": len(self.estimator.layers)}
        return {"rounds": int(self.estimator.num_boosted_rounds())}


def category_levels(spec: ModelSpec, name: str, observed: Optional[Sequence[str]] = None) -> Tuple[List[str], str]:
    """The fixed levels of a categorical feature and where they came from.

    ``catalog``: the allowed values of the raw column (``col``) or the bucket labels;
    ``training_data``: the sorted distinct training values (features without a closed set).
    """
    dataset = spec.catalog_dataset
    expr = dataset.feature(name).expr
    source = dataset.feature(name).source_column
    if source:
        column = dataset.column(source)
        if column.allowed:
            return list(column.allowed), "catalog"
    if expr.op == "bucket":
        return [str(v) for v in expr.args[2]], "catalog"
    values = sorted({str(v) for v in (observed or []) if v is not None and not pd.isna(v)})
    return values, "training_data"


def build_feature_metadata(spec: ModelSpec, train: pd.DataFrame, **framework_fields: Any) -> Dict[str, Any]:
    """The artefact's ``feature_metadata.json``: the feature encoding (order, kinds, fixed levels) and what the
    model predicts; ``framework_fields`` are the trainer's own (``framework``, its library version)."""
    features = []
    for name in spec.features:
        entry: Dict[str, Any] = {"name": name, "feature_type": spec.feature_type(name)}
        if spec.is_categorical(name):
            observed = train[name].astype("category").cat.categories if name in train else []
            levels, source = category_levels(spec, name, list(observed))
            entry.update({"kind": CATEGORICAL, "categories": levels, "categories_source": source})
            # The ETL trims and lower-cases catalog categoricals; serving inputs get the same.
            entry["normalise"] = "strip_lower" if source == "catalog" else "none"
        else:
            entry.update({"kind": NUMERIC, "dtype": "float32"})
        features.append(entry)
    return {
        "format": METADATA_FORMAT,
        "model": spec.name,
        "dataset": spec.catalog_dataset.to_declaration(),
        "target": spec.target,
        "record_identifier": spec.record_identifier,
        "event_time": spec.event_time,
        "sensitive_attribute": spec.sensitive_attribute,
        "slices": list(spec.slices),
        "feature_order": [f["name"] for f in features],
        "features": features,
        "problem_type": spec.problem_type,
        "classes": list(spec.classes),
        "primary_metric": spec.primary_metric,
        "threshold": DEFAULT_THRESHOLD,
        **framework_fields,
    }


def encode(frame: pd.DataFrame, metadata: Dict[str, Any],
           dtypes: Optional[Mapping[str, pd.CategoricalDtype]] = None) -> pd.DataFrame:
    """The model's input frame: columns in training order, float32 numbers, fixed categories.

    Extra columns of ``frame`` are ignored; a missing feature column is an error. ``dtypes``: the categoricals' dtypes
    built once (:func:`categorical_dtypes`); without them each call builds its own.
    """
    _check_features_present(frame, metadata)
    out: Dict[str, Any] = {}
    for feature in metadata["features"]:
        series = frame[feature["name"]]
        if feature["kind"] == CATEGORICAL:
            out[feature["name"]] = _encode_categorical(series, feature, (dtypes or {}).get(feature["name"]))
        else:
            out[feature["name"]] = _encode_numeric(series, feature["name"])
    return pd.DataFrame(out, index=frame.index)


def _check_features_present(frame: pd.DataFrame, metadata: Dict[str, Any]) -> None:
    """Raises :class:`InputError` naming the model's feature columns ``frame`` lacks (extra columns are ignored)."""
    missing = [f["name"] for f in metadata["features"] if f["name"] not in frame.columns]
    if missing:
        raise InputError(f"input frame lacks feature columns {missing} (model {metadata.get('model')!r})")


def _encode_numeric(series: pd.Series, name: str) -> np.ndarray:
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object:
        try:
            series = pd.to_numeric(series.astype(object), errors="raise")
        except (TypeError, ValueError) as exc:
            raise InputError(f"feature {name!r} must be numeric: {exc}") from None
    if pd.api.types.is_bool_dtype(series.dtype):
        raise InputError(f"feature {name!r} must be numeric, got booleans")
    return series.to_numpy(dtype=np.float32, na_value=np.nan)


def categorical_dtypes(metadata: Dict[str, Any]) -> Dict[str, pd.CategoricalDtype]:
    """Each categorical feature's dtype of its fixed training levels (an index and its hash: about 70 ms per feature of
    200,000 levels). :attr:`TrainedModel.categorical_dtypes` builds them once per loaded model, so a request looks up
    only the values it holds (rebuilt per request, 150 features of 100,000 levels took 10 s a request)."""
    return {f["name"]: pd.CategoricalDtype(pd.Index(f["categories"], dtype=object))
            for f in metadata["features"] if f["kind"] == CATEGORICAL}


def _encode_categorical(series: pd.Series, feature: Dict[str, Any],
                        dtype: Optional[pd.CategoricalDtype] = None) -> pd.Categorical:
    dtype = dtype if dtype is not None else pd.CategoricalDtype(pd.Index(feature["categories"], dtype=object))
    return pd.Categorical.from_codes(_category_codes(series, feature, dtype), dtype=dtype)


def _category_codes(series: pd.Series, feature: Dict[str, Any], dtype: pd.CategoricalDtype) -> np.ndarray:
    """Each value's code among the feature's levels (``dtype``'s categories); -1 for a missing or unseen value."""
    levels = dtype.categories
    codes = _text_codes(series, levels, feature.get("normalise") == "strip_lower")
    if codes is not None:
        return codes
    values = series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype(object).astype("category")
    seen = pd.Index(values.cat.categories.astype(str), dtype=object)
    if feature.get("normalise") == "strip_lower":
        seen = pd.Index([catalog.normalise_category(s) for s in seen], dtype=object)
    lookup = levels.get_indexer(seen)  # -1: not a level -> missing
    codes = values.cat.codes.to_numpy()
    if len(lookup) == 0:  # every value missing
        return np.full(len(codes), -1)
    return np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1)


def _text_codes(series: pd.Series, levels: pd.Index, normalise: bool) -> Optional[np.ndarray]:
    """Each value's code among ``levels`` (-1: missing, or not a level), for a text column (object values that are all
    ``str`` or missing, as serving's frames are); None for any other column. The same codes as going through
    ``astype("category")`` (the distinct values, then ``str`` of each, then ``levels.get_indexer``), without building a
    categorical of the request's values first: for a one-row request that was most of the encoding's cost."""
    if series.dtype != object:
        return None
    values = series.to_numpy()
    if len(values) <= _FEW_VALUES:
        codes = _few_text_codes(values, levels, normalise)
        if codes is not None:
            return codes
    # The distinct values, as the categorical path takes them: a big column (a batch, a test set) is normalised and
    # looked up once per distinct value, not once per row. Missing values (None, NaN, NA, NaT) have code -1.
    codes, distinct = pd.factorize(values)
    if not all(type(value) is str for value in distinct):  # noqa: E721 - a str subclass's str() may differ: general path
        return None
    if not len(distinct):  # every value missing
        return np.full(len(codes), -1, dtype=np.int64)
    texts = [catalog.normalise_category(value) for value in distinct] if normalise else list(distinct)
    lookup = levels.get_indexer(pd.Index(texts, dtype=object))
    return np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1)


# Up to this many values (a one-row request's, a small batch's) are looked up one by one, not factorised first.
_FEW_VALUES = 16


def _few_text_codes(values: np.ndarray, levels: pd.Index, normalise: bool) -> Optional[np.ndarray]:
    """:func:`_text_codes` of a few values that are each ``str`` or None (a serving frame's text column); None for any
    other value (that path then decides). Each value is looked up in the levels' own hash table (built once per model,
    with its dtype) instead of factorising the values and building an index of them: the same codes, as the levels
    are distinct (a ``CategoricalDtype`` refuses others)."""
    codes = np.full(len(values), -1, dtype=np.int64)
    for i, value in enumerate(values):
        if value is None:
            continue
        if type(value) is not str:  # noqa: E721 - as _text_codes: a str subclass goes the general way
            return None
        try:
            codes[i] = levels.get_loc(catalog.normalise_category(value) if normalise else value)
        except KeyError:
            pass  # not a level: missing
    return codes


def network_inputs(model: TrainedModel, frame: pd.DataFrame) -> network_lib.Inputs:
    """A PyTorch model's network inputs for ``frame``, the stored encoding applied."""
    network = model.estimator
    encoded = encode(frame, model.metadata, model.categorical_dtypes)
    return network_lib.inputs_from_encoded(network.numeric, network.categorical, encoded)


def encoded_matrix(model: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    """The stored encoding of ``frame`` as XGBoost reads it: one float32 column per feature in training order
    (:attr:`TrainedModel.xgboost_columns`), each categorical as its code among the training levels (NaN for an unseen
    or missing value), each number as float32 (NaN for missing). The values of :func:`encode`'s frame, without building
    it (its Series and categoricals were most of a one-row request's encoding)."""
    _check_features_present(frame, model.metadata)
    features = model.metadata["features"]
    dtypes = model.categorical_dtypes
    data = np.empty((len(frame), len(features)), dtype=np.float32)
    for k, feature in enumerate(features):
        series = frame[feature["name"]]
        if feature["kind"] == CATEGORICAL:
            codes = _category_codes(series, feature, dtypes[feature["name"]])
            data[:, k] = codes
            data[codes < 0, k] = np.nan
        else:
            data[:, k] = _encode_numeric(series, feature["name"])
    return data


def to_dmatrix(model: TrainedModel, frame: pd.DataFrame, label: Optional[np.ndarray] = None) -> Any:
    """An XGBoost model's input for ``frame``, the stored encoding applied (:func:`encoded_matrix`) - the values the
    booster was trained on, so the predictions are those of the encoded frame itself."""
    import xgboost as xgb

    # Codes, not the categorical frame: from a frame xgboost copies every level's name into its own string array on
    # each call (a one-row request to a model of 10 features of 200,000 levels: 0.28 CPU-s, against 0.025 with codes),
    # where the codes are the training levels' already.
    names, types = model.xgboost_columns
    return xgb.DMatrix(encoded_matrix(model, frame), label=label, feature_names=list(names), feature_types=list(types),
                       enable_categorical=True, missing=np.nan)


def predict(model: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    """The model's output for every row of ``frame`` (float64), with the stored encoding applied: P(target = 1),
    shape (n,), for a binary model; one probability per class in :attr:`TrainedModel.classes` order, shape
    (n, K), for a multiclass one; the predicted value, shape (n,), for a regression one, within the target's
    declared range (:func:`within_target_range`)."""
    if len(frame) == 0:
        shape = (0, len(model.classes)) if model.problem_type == problem.MULTICLASS else (0,)
        return np.zeros(shape, dtype=np.float64)
    if model.framework == PYTORCH:
        output = model.estimator.predict(network_inputs(model, frame))
    else:
        output = model.estimator.predict(to_dmatrix(model, frame), validate_features=True).astype(np.float64)
    return within_target_range(model.metadata, output)


def target_range(metadata: Dict[str, Any]) -> Tuple[Optional[float], Optional[float]]:
    """A regression model's declared target range: the ``min`` and ``max`` of its target column in the dataset
    declaration the artefact carries (None where one is not declared; both None for a classifier). The ETL
    quarantines a label outside it, so no true value lies outside it."""
    if metadata.get("problem_type") != problem.REGRESSION:
        return None, None
    columns = (metadata.get("dataset") or {}).get("columns") or []
    if isinstance(columns, dict):  # the config's mapping form
        columns = [{"name": name, **body} for name, body in columns.items()]
    for column in columns:
        if column.get("name") == metadata.get("target"):
            low, high = column.get("min"), column.get("max")
            return (None if low is None else float(low)), (None if high is None else float(high))
    return None, None


def within_target_range(metadata: Dict[str, Any], values: np.ndarray) -> np.ndarray:
    """A regression model's predictions moved into :func:`target_range` (a count declared ``min: 0`` is never
    predicted negative: squared error fits trees whose leaves can overshoot 0 near many zeros). Moving a value
    to the nearest declared bound never takes it further from a true value, so no row's error grows. NaN stays
    NaN (serving refuses to answer it). Classifiers' outputs are returned unchanged."""
    low, high = target_range(metadata)
    if low is None and high is None:
        return values
    return np.clip(values, low, high)


def save_model(model: TrainedModel, model_dir: str) -> None:
    """``model.json`` (the framework's format) and ``feature_metadata.json`` into ``model_dir``."""
    os.makedirs(model_dir, exist_ok=True)
    target = os.path.join(model_dir, MODEL_FILE)
    if model.framework == PYTORCH:
        network_lib.save(model.estimator, target)
    else:
        tmp = os.path.join(model_dir, MODEL_FILE + ".tmp.json")
        model.estimator.save_model(tmp)
        os.replace(tmp, target)
    data_io.write_json(os.path.join(model_dir, METADATA_FILE), model.metadata)


def load_model(path: str) -> TrainedModel:
    """A model from a directory (``model.json`` + ``feature_metadata.json``, or a ``model.tar.gz``
    holding them, as SageMaker stores models in S3) or from the ``.tar.gz`` itself.

    Raises:
        InputError: nothing loadable at ``path``.
    """
    if os.path.isfile(path) and path.endswith((".tar.gz", ".tgz", ".tar")):
        return _load_archive(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, MODEL_FILE)):
            return _load_dir(path)
        archive = os.path.join(path, MODEL_ARCHIVE)
        if os.path.exists(archive):
            return _load_archive(archive)
    raise InputError(f"no model at {path!r}: expected a directory with {MODEL_FILE} + {METADATA_FILE} or a {MODEL_ARCHIVE}")


def _load_dir(directory: str) -> TrainedModel:
    metadata_path = os.path.join(directory, METADATA_FILE)
    if not os.path.exists(metadata_path):
        raise InputError(f"model at {directory!r} has no {METADATA_FILE} (the feature encoding); cannot score it")
    metadata = data_io.read_json(metadata_path, what="feature metadata")
    if metadata.get("format") != METADATA_FORMAT:
        raise InputError(f"{metadata_path}: unsupported format {metadata.get('format')!r}, expected {METADATA_FORMAT!r}")
    framework = metadata.get("framework", XGBOOST)
    model_path = os.path.join(directory, MODEL_FILE)
    if framework == PYTORCH:
        return TrainedModel(estimator=_checked_network(network_lib.load(model_path), metadata, model_path), metadata=metadata)
    if framework != XGBOOST:
        raise InputError(f"{metadata_path}: unknown framework {framework!r}; this code reads {', '.join(FRAMEWORKS)}")
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(model_path)
    return TrainedModel(estimator=booster, metadata=metadata)


def _checked_network(network: network_lib.TabularNetwork, metadata: Dict[str, Any], where: str) -> network_lib.TabularNetwork:
    """The network, if its inputs are the encoding's features (numeric and categorical as stored)."""
    kinds = {f["name"]: f.get("kind") for f in metadata.get("features", [])}
    numeric = tuple(n for n, k in kinds.items() if k != CATEGORICAL)
    categorical = tuple(n for n, k in kinds.items() if k == CATEGORICAL)
    if (network.numeric, network.categorical) != (numeric, categorical):
        raise InputError(f"{where}: the network reads numeric {list(network.numeric)} and categorical "
                         f"{list(network.categorical)}, but {METADATA_FILE} encodes {list(numeric)} and {list(categorical)}")
    for name, table in zip(network.categorical, network.embeddings):
        stored = next(f.get("categories") for f in metadata["features"] if f["name"] == name)
        if not isinstance(stored, list):
            raise InputError(f"{where}: {METADATA_FILE} stores no list of levels ('categories') for the categorical feature {name!r}")
        levels = len(stored)
        if table.shape[0] != levels + 1:
            raise InputError(f"{where}: the embedding of {name!r} has {table.shape[0]} rows, but the {levels} levels "
                             f"{METADATA_FILE} stores need {levels + 1} (one more for missing)")
    if network.problem_type != metadata.get("problem_type", problem.BINARY):
        raise InputError(f"{where}: a {network.problem_type} network, but {METADATA_FILE} says {metadata.get('problem_type')}")
    return network


def _load_archive(archive: str) -> TrainedModel:
    scratch = tempfile.mkdtemp(prefix="mlops-loop-model-")
    try:
        data_io.extract_tar_safely(archive, scratch)
        for root, _dirs, names in os.walk(scratch):
            if MODEL_FILE in names:
                return _load_dir(root)  # the model is read into memory; the files can go
        raise InputError(f"{archive}: no {MODEL_FILE} inside the archive")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_split(path: str, spec: ModelSpec, *, what: str, columns: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """The columns a job needs from a prepared split (categoricals read dictionary-encoded)."""
    wanted = list(columns) if columns is not None else [*spec.features, spec.target]
    categorical = [c for c in wanted if c in spec.catalog_dataset.feature_names and spec.is_categorical(c)]
    data = data_io.parquet_dataset(path, what=what, dictionary_columns=categorical)
    missing = [c for c in wanted if c not in data.schema.names]
    if missing:
        raise InputError(f"{what} ({path}): missing columns {missing}")
    table = data_io.read_columns(data, wanted, what=what)
    frame = table.to_pandas()
    if spec.target in frame:
        problem_text = label_problem(frame[spec.target], spec)
        if problem_text:
            raise InputError(f"{what} ({path}): column {spec.target!r} {problem_text}")
    return frame


def label_problem(y: pd.Series, spec: ModelSpec) -> Optional[str]:
    """Why the prepared label column ``y`` does not fit the model's problem type (None when it does): 0/1
    for binary, class codes 0 .. K-1 for multiclass, finite numbers for regression; never null."""
    if spec.problem_type == problem.BINARY:
        if y.isna().any() or not set(np.unique(y.to_numpy())).issubset({0, 1}):
            return "must hold 0/1 labels without nulls"
        return None
    if y.isna().any():
        return "must not hold nulls"
    values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(values).any() or not np.isfinite(values).all():
        return "must hold finite numbers"
    if spec.problem_type == problem.REGRESSION:
        return None
    codes = set(np.unique(values).tolist())
    allowed = set(range(len(spec.classes)))
    if not codes.issubset(allowed):
        return (f"must hold class codes 0..{len(allowed) - 1} (the prepare job's encoding of {list(spec.classes)}), "
                f"found {sorted(codes - allowed)[:5]}")
    return None



# The libraries whose versions a rebuild installs (the image tag alone does not pin them: a patched image keeps its tag).
RECORDED_LIBRARIES = ("numpy", "pandas", "pyarrow", "scikit-learn", "xgboost", "torch")


def library_versions() -> Dict[str, str]:
    """The versions of Python and of :data:`RECORDED_LIBRARIES` installed where this runs (those not installed left
    out), as a training summary records them (``libraries``)."""
    import importlib.metadata
    import platform

    found = {"python": platform.python_version()}
    for name in RECORDED_LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def training_summary(spec: ModelSpec, y_train: np.ndarray, y_val: np.ndarray, p_train: np.ndarray, p_val: np.ndarray,
                     **sizes: Any) -> Dict[str, Any]:
    """The training summary stored in the artefact: ``sizes`` (the trainer's own counts, e.g. rounds or epochs),
    the split sizes and the validation (and train) quality per problem type.

    ``final_metrics`` names the keys printed as ``final_<key>=<value>;`` lines for SageMaker metric definitions
    (binary: ``final_validation_auc`` as always)."""
    out: Dict[str, Any] = {
        **sizes,
        "train_rows": int(len(y_train)),
        "validation_rows": int(len(y_val)),
        "libraries": library_versions(),
    }
    if spec.problem_type == problem.BINARY:
        out.update({
            "train_positive_rate": float(y_train.mean()),
            "validation_auc": metric_lib.roc_auc(y_val, p_val),
            "validation_logloss": metric_lib.log_loss(y_val, p_val),
            "train_auc": metric_lib.roc_auc(y_train, p_train),
            "final_metrics": ["validation_auc", "validation_logloss", "train_auc"],
        })
    elif spec.problem_type == problem.MULTICLASS:
        # As Evaluate computes them (its headline), so a tuning objective among them is what the gate compares.
        validation = metrics_multiclass.headline(y_val.astype(np.int64), p_val, spec.classes)
        out.update({
            "train_class_shares": metrics_multiclass.class_shares(y_train, len(spec.classes)),
            "validation_auc": validation["auc"],
            "validation_logloss": validation["log_loss"],
            "validation_accuracy": validation["accuracy"],
            "final_metrics": ["validation_logloss", "validation_accuracy"],
        })
    else:
        validation = metrics_regression.headline(y_val, p_val, spec.deviance)
        deviance = [spec.deviance[0]] if spec.deviance else []
        out.update({
            "train_target_mean": float(y_train.mean()),
            "validation_rmse": validation["rmse"],
            "validation_mae": validation["mae"],
            "validation_r2": validation["r2"],
            **{f"validation_{name}": validation[name] for name in deviance},
            "final_metrics": ["validation_rmse", "validation_mae", "validation_r2", *(f"validation_{n}" for n in deviance)],
            "loss": spec.loss,
        })
        if spec.loss == problem.TWEEDIE:
            out["tweedie_variance_power"] = spec.tweedie_power
    out["final_metrics"] = [k for k in out["final_metrics"] if out.get(k) is not None]
    return out

