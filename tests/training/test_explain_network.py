"""explain.sampled_shapley: the Shapley values of a PyTorch model's network, estimated by antithetic permutation
sampling against a background sample - checked for efficiency, against closed forms (an additive network) and
against brute-force interventional Shapley values, and through explain.attributions on a trained network."""

from __future__ import annotations

import itertools
import math
from typing import Dict, Sequence, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# The session's networks (network_model, two_epoch_network: tests/training/conftest.py) are trained by the worker
# that runs these modules (one xdist group), once per run instead of once on each pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("torch")

from pipeline_code.core import problem  # noqa: E402
from pipeline_code.training import explain, model_io, network  # noqa: E402

# Four features, in the model's feature order (numbers and categories interleaved, as a feature list can be).
FEATURES = ["n1", "c1", "n2", "c2"]
NUMERIC = ("n1", "n2")
CATEGORICAL = ("c1", "c2")
LEVELS = (3, 2)
MEAN, STD = (1.0, -2.0), (2.0, 0.5)


def _f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def make_network(problem_type: str = problem.BINARY, *, hidden: int = 8, seed: int = 5,
                 target: Tuple[float, float] = (0.0, 1.0)) -> network.TabularNetwork:
    """Random weights; ``hidden=0`` gives a single Linear layer (a model additive in its features)."""
    rng = np.random.default_rng(seed)
    embeddings = (_f32(rng.normal(size=(LEVELS[0] + 1, 3))), _f32(rng.normal(size=(LEVELS[1] + 1, 2))))
    width = 2 * len(NUMERIC) + sum(e.shape[1] for e in embeddings)
    outputs = 3 if problem_type == problem.MULTICLASS else 1
    if hidden:
        layers = ((_f32(rng.normal(size=(hidden, width))), _f32(rng.normal(size=hidden))),
                  (_f32(rng.normal(size=(outputs, hidden))), _f32(rng.normal(size=outputs))))
    else:
        layers = ((_f32(rng.normal(size=(outputs, width))), _f32(rng.normal(size=outputs))),)
    return network.TabularNetwork(numeric=NUMERIC, categorical=CATEGORICAL, mean=_f32(MEAN), std=_f32(STD),
                                  embeddings=embeddings, layers=layers, problem_type=problem_type,
                                  target_mean=target[0], target_scale=target[1])


def make_inputs(rows: int, *, seed: int) -> network.Inputs:
    """Numbers around the standardisation, a fifth of them missing (NaN); level indices 0 (missing) .. n."""
    rng = np.random.default_rng(seed)
    numeric = _f32(rng.normal(loc=MEAN, scale=STD, size=(rows, 2)))
    numeric[rng.random(numeric.shape) < 0.2] = np.nan
    categorical = np.stack([rng.integers(0, n + 1, rows) for n in LEVELS], axis=1).astype(np.int64)
    return network.Inputs(numeric, categorical)


def _hybrid(net: network.TabularNetwork, row: network.Inputs, background: network.Inputs, switched: Sequence[str]) -> np.ndarray:
    """The margins of every background row with the features in ``switched`` taken from ``row`` (one row)."""
    numeric, categorical = background.numeric.copy(), background.categorical.copy()
    for name in switched:
        if name in NUMERIC:
            numeric[:, NUMERIC.index(name)] = row.numeric[0, NUMERIC.index(name)]
        else:
            categorical[:, CATEGORICAL.index(name)] = row.categorical[0, CATEGORICAL.index(name)]
    return net.margin(network.Inputs(numeric, categorical)).astype(np.float64)


def exact_shapley(net: network.TabularNetwork, row: network.Inputs, background: network.Inputs) -> np.ndarray:
    """Interventional Shapley values of one row by enumerating every coalition S of the features:
    v(S) = mean over the background of the margin with S taken from the row;
    phi_j = sum over S without j of |S|! (n - |S| - 1)! / n! * (v(S + j) - v(S))."""
    n = len(FEATURES)
    value: Dict[frozenset, float] = {
        frozenset(s): float(_hybrid(net, row, background, s).mean()) for r in range(n + 1) for s in itertools.combinations(FEATURES, r)
    }
    phi = np.zeros(n)
    for j, name in enumerate(FEATURES):
        others = [f for f in FEATURES if f != name]
        for r in range(n):
            weight = math.factorial(r) * math.factorial(n - r - 1) / math.factorial(n)
            for s in itertools.combinations(others, r):
                phi[j] += weight * (value[frozenset(s) | {name}] - value[frozenset(s)])
    return phi


def antithetic_pair_spread(net: network.TabularNetwork, row: network.Inputs, background: network.Inputs) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation, per feature, of ONE antithetic pair's estimate (an order and its reverse, one
    background row), over all 4! orders x all background rows, every outcome equally likely as the sampler draws them.
    The mean is the exact Shapley value again; the deviation / sqrt(pairs) is the exact standard error of the estimate."""

    def contributions(order: Sequence[int]) -> np.ndarray:  # (features, background rows)
        out = np.zeros((len(FEATURES), len(background)))
        previous = _hybrid(net, row, background, [])
        for k in range(len(order)):
            current = _hybrid(net, row, background, [FEATURES[i] for i in order[: k + 1]])
            out[order[k]] = current - previous
            previous = current
        return out

    pairs = np.concatenate([(contributions(o) + contributions(o[::-1])) / 2
                            for o in itertools.permutations(range(len(FEATURES)))], axis=1)
    return pairs.mean(axis=1), pairs.std(axis=1)


@pytest.mark.parametrize("problem_type", [problem.BINARY, problem.MULTICLASS, problem.REGRESSION])
def test_for_every_row_the_contributions_plus_the_bias_add_up_to_the_margin(problem_type):
    net = make_network(problem_type, target=(250.0, 40.0))
    x, background = make_inputs(30, seed=1), make_inputs(50, seed=2)

    phi = explain.sampled_shapley(net, x, background, FEATURES, permutations=6, seed=3)

    margin = net.margin(x).astype(np.float64)
    expected_shape = (30, 3, len(FEATURES) + 1) if problem_type == problem.MULTICLASS else (30, len(FEATURES) + 1)
    assert phi.shape == expected_shape
    np.testing.assert_allclose(phi.sum(axis=-1), margin, rtol=0, atol=1e-4)  # per row (and per class)
    assert (np.abs(phi[..., :-1]) > 1e-3).any(axis=tuple(range(phi.ndim - 1))).all(), "every feature contributes somewhere"


def test_the_bias_column_is_the_mean_margin_of_the_background_rows_drawn():
    """With a single background row every draw is that row: the bias is its margin, for every explained row."""
    net = make_network(problem.BINARY)
    background = make_inputs(1, seed=4)
    phi = explain.sampled_shapley(net, make_inputs(12, seed=1), background, FEATURES, permutations=4, seed=0)
    np.testing.assert_allclose(phi[:, -1], net.margin(background)[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("permutations", [1, 2, 3, 8, 32])
def test_given_an_additive_network_and_one_background_row_the_estimate_is_the_closed_form_for_any_permutation_count(permutations):
    # GIVEN a network without a hidden layer: margin = w . [z, missing flags, embeddings] + b, additive in the features
    net = make_network(problem.BINARY, hidden=0)
    x, background = make_inputs(25, seed=11), make_inputs(1, seed=12)
    x.numeric[0, :] = np.nan  # the explained row has missing numbers ...
    background.numeric[0, 0] = np.nan  # ... and so has the background row, in one feature
    x.categorical[1, :] = 0
    w = net.layers[0][0][0].astype(np.float64)

    # WHEN estimated with any number of permutations
    phi = explain.sampled_shapley(net, x, background, FEATURES, permutations=permutations, seed=permutations)

    # THEN each feature's value is its own term's change from the background row: the switch order does not matter
    def z(values: np.ndarray, j: int) -> np.ndarray:
        return np.where(np.isnan(values), 0.0, (values.astype(np.float64) - MEAN[j]) / STD[j])

    bg = background.take(np.zeros(len(x), dtype=np.int64))
    for j, name in enumerate(NUMERIC):
        flag_x, flag_bg = np.isnan(x.numeric[:, j]), np.isnan(bg.numeric[:, j])
        expected = w[j] * (z(x.numeric[:, j], j) - z(bg.numeric[:, j], j)) + w[2 + j] * (flag_x.astype(float) - flag_bg)
        np.testing.assert_allclose(phi[:, FEATURES.index(name)], expected, rtol=1e-5, atol=1e-5)
    start = 2 * len(NUMERIC)
    for j, (name, table) in enumerate(zip(CATEGORICAL, net.embeddings)):
        span = w[start : start + table.shape[1]]
        start += table.shape[1]
        expected = (table[x.categorical[:, j]] - table[bg.categorical[:, j]]).astype(np.float64) @ span
        np.testing.assert_allclose(phi[:, FEATURES.index(name)], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(phi[:, -1], net.margin(background)[0], rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def exact_case():
    """A ReLU network on 2 numeric + 2 categorical features, 8 rows to explain against 20 background rows, with the
    exact Shapley values (coalition enumeration) and the exact standard error of a 1000-pair estimate."""
    net = make_network(problem.BINARY, hidden=8)
    x, background = make_inputs(8, seed=21), make_inputs(20, seed=22)
    exact, spread, margin_range = [], [], []
    for i in range(len(x)):
        row = x.take(np.array([i]))
        exact.append(exact_shapley(net, row, background))
        mean, sd = antithetic_pair_spread(net, row, background)
        np.testing.assert_allclose(mean, exact[-1], rtol=0, atol=1e-9)  # the two oracles agree
        spread.append(sd)
        hybrids = np.concatenate([_hybrid(net, row, background, s) for r in range(5) for s in itertools.combinations(FEATURES, r)])
        margin_range.append(hybrids.max() - hybrids.min())
    return net, x, background, np.array(exact), np.array(spread), np.array(margin_range)


def test_with_2000_permutations_the_estimate_is_within_five_standard_errors_of_the_exact_values(exact_case):
    """Tolerance: 2000 permutations are 1000 independent antithetic pairs, so the estimate's standard error is exactly
    sd(one pair) / sqrt(1000), with sd(one pair) from enumerating every (order, background row) outcome. By the CLT a
    deviation beyond 5 standard errors has probability ~6e-7 per value (~2e-5 over these 32 values), so an unbiased
    sampler passes for any seed. Here 5 standard errors are at most 3.5% of the row's margin range (over its hybrid
    rows). A bias too small to push one value past 5 standard errors still shows in the average: for an unbiased
    sampler the mean |error| / standard error over 32 values is ~0.8 with a spread of ~0.1, so it must stay below 1.5."""
    net, x, background, exact, spread, margin_range = exact_case
    standard_error = spread / math.sqrt(1000)

    phi = explain.sampled_shapley(net, x, background, FEATURES, permutations=2000, seed=0)

    z = np.abs(phi[:, : len(FEATURES)] - exact) / standard_error
    assert (z <= 5).all(), f"errors in standard errors:\n{np.round(z, 2)}"
    assert z.mean() < 1.5, f"errors in standard errors:\n{np.round(z, 2)}"
    assert (5 * standard_error <= 0.035 * margin_range[:, None]).all(), "the tolerance is small against the margins"


def test_with_8_permutations_the_estimate_is_rough_but_still_adds_up_to_the_margin(exact_case):
    net, x, background, exact, _spread, _range = exact_case

    phi = explain.sampled_shapley(net, x, background, FEATURES, permutations=8, seed=0)

    np.testing.assert_allclose(phi.sum(axis=1), net.margin(x).astype(np.float64), rtol=0, atol=1e-5)
    assert not np.allclose(phi[:, : len(FEATURES)], exact, atol=1e-3), "8 permutations do not reach the exact values"


def test_the_same_seed_gives_identical_values_and_another_seed_different_ones():
    net = make_network(problem.MULTICLASS)
    x, background = make_inputs(15, seed=31), make_inputs(40, seed=32)

    first = explain.sampled_shapley(net, x, background, FEATURES, permutations=4, seed=9)
    again = explain.sampled_shapley(net, x, background, FEATURES, permutations=4, seed=9)
    other = explain.sampled_shapley(net, x, background, FEATURES, permutations=4, seed=10)

    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    np.testing.assert_allclose(first.sum(axis=-1), other.sum(axis=-1), atol=1e-4)  # both add up to the margins


@pytest.mark.parametrize("problem_type, shape", [(problem.BINARY, (0, 5)), (problem.MULTICLASS, (0, 3, 5))])
def test_no_rows_to_explain_give_an_empty_array_of_the_treeshap_layout(problem_type, shape):
    phi = explain.sampled_shapley(make_network(problem_type), make_inputs(0, seed=1), make_inputs(10, seed=2), FEATURES)
    assert phi.shape == shape


@pytest.fixture(scope="module")
def trained_network(two_epoch_network) -> model_io.TrainedModel:
    """The session's two-epoch network (tests/training/conftest.py), loaded."""
    return model_io.load_model(two_epoch_network)


@pytest.mark.parametrize("rows, max_rows", [(None, 60), (25, 100)])
def test_attributions_of_a_trained_network_rank_every_feature_by_sampled_shapley_values(trained_network, test_frame, rows, max_rows):
    frame = test_frame if rows is None else test_frame.head(rows)

    report = explain.attributions(trained_network, frame, max_rows=max_rows, seed=0)

    names = trained_network.feature_names
    assert report["method"].startswith("sampled Shapley values")
    assert report["units"] == "log-odds (margin)"
    assert report["rows"] == min(len(frame), max_rows) and report["rows_available"] == len(frame)
    assert sorted(report["ranking"]) == sorted(names) and len(report["ranking"]) == len(names)
    assert report["ranking"] == sorted(names, key=lambda n: (-report["features"][n]["mean_abs_shap"], n))
    assert [report["features"][n]["rank"] for n in report["ranking"]] == list(range(1, len(names) + 1))
    assert sum(f["share"] for f in report["features"].values()) == pytest.approx(1.0, abs=1e-9)
    assert report["features"][report["ranking"][0]]["mean_abs_shap"] > 0


def test_the_network_attributions_add_up_to_the_model_margins(trained_network, test_frame):
    """shap_values on the real artefact: contributions + bias = the logit of the model's own probability."""
    sample = test_frame.head(40)
    phi = explain.shap_values(trained_network, sample, background=test_frame, seed=0)
    p = model_io.predict(trained_network, sample)
    assert phi.shape == (40, len(trained_network.feature_names) + 1)
    np.testing.assert_allclose(phi.sum(axis=1), np.log(p / (1 - p)), rtol=0, atol=1e-4)


def test_attributions_of_an_empty_frame_report_zero_rows(trained_network, test_frame):
    report = explain.attributions(trained_network, test_frame.iloc[:0])
    assert report["rows"] == 0 and report["rows_available"] == 0
    assert report["expected_value"] is None
    assert sorted(report["ranking"]) == sorted(trained_network.feature_names)
    assert all(f["share"] == 0.0 and f["mean_abs_shap"] == 0.0 for f in report["features"].values())
