"""False alarms of the data-quality checks: the share of windows *without any change* that fail each check of
``drift.data_quality``, per window size (30, 100, 200, 1000 requests).

The baseline is built as the training pipeline builds it (``training.baseline``'s statistics: min/max of 2,000
training rows, the levels training saw, completeness); 16 numeric inputs (normal and gamma) and 4 categorical ones
(12 common levels and 10 rare ones at 0.03 % each), 5 % missing; every window is a fresh draw of the same
distribution, so a value past training's min/max comes at the natural rate of a new draw and an unseen level at a
rare level's rate. Default thresholds (``false_alarm_rate`` 0.01, limits 0.01, missing increase 0.05).

    PYTHONPATH=. .venv/bin/python bench/data_quality_noise_bench.py [windows per size, default 400]
"""
import sys
import numpy as np, pandas as pd
from pipeline_code.monitoring import drift
from pipeline_code.training.baseline import numeric_statistics, categorical_statistics, OTHER_LEVEL

NUM, CAT, TRAIN = 16, 4, 2000
rng = np.random.default_rng(7)
# a categorical of 12 common levels and 10 rare ones (0.03 % each): training sees some of the rare ones, not all
p = np.array([0.997 / 12] * 12 + [0.0003] * 10)
names = np.array([f"l{i}" for i in range(len(p))], dtype=object)

def draw(rows, r):
    cols = {}
    for i in range(NUM):
        v = r.gamma(2.0, 1.0, rows) if i % 2 else r.normal(0, 1, rows)
        v[r.random(rows) < 0.05] = np.nan
        cols[f"x{i}"] = v
    for j in range(CAT):
        c = r.choice(names, rows, p=p).astype(object)
        c[r.random(rows) < 0.05] = None
        cols[f"c{j}"] = c
    return pd.DataFrame(cols)

train = draw(TRAIN, rng)
constraints = {"rows": TRAIN, "features": {}}  # the header training writes: the rows it measured on
for name in train.columns:
    if name.startswith("x"):
        e = numeric_statistics(train[name].to_numpy(dtype=float))
        c = {"kind": "numeric", "min": e["min"], "max": e["max"], "integral": False}
    else:
        e = categorical_statistics(train[name], None)  # the training pipeline's levels: those training saw
        c = {"kind": "categorical", "allowed": [k for k in e["levels"] if k != OTHER_LEVEL]}
    c["completeness"] = 1.0 - (e["missing_rate"] or 0.0)
    constraints["features"][name] = c
unseen_mass = [p[[l not in set(constraints['features'][f'c{j}']['allowed']) for l in names]].sum() for j in range(CAT)]
print(f"training {TRAIN} rows; new draw out of range ~{2/(TRAIN+1):.4%}/feature; unseen mass per categorical {np.round(unseen_mass,4)}")
W = int(sys.argv[1]) if len(sys.argv) > 1 else 400
for rows in (30, 100, 200, 1000):
    r = np.random.default_rng(rows)
    fails = {"range_violation_rate": 0, "unseen_category_rate": 0, "missing_rate": 0, "any": 0}
    for _ in range(W):
        s = drift.data_quality(draw(rows, r), constraints)
        failed = {c["check"] for c in s["checks"] if c["status"] == "fail"}
        for k in failed & set(fails):
            fails[k] += 1
        fails["any"] += bool(failed)
    print(rows, {k: round(v / W, 3) for k, v in fails.items()})
