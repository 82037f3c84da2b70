"""Training-side job code: prepare -> train -> evaluate -> gate, plus the monitoring baseline.

Every module but :mod:`.train_torch` runs unchanged in the stock SageMaker XGBoost container (its tag and Python:
:mod:`pipeline_code.core.images`; launched through ``pipeline_code/sagemaker_entry.py``) and locally (``python -m ...``):

* :mod:`.spec`      the model specification (``--model-spec`` JSON) and gate thresholds;
* :mod:`.prepare`   point-in-time join of features and labels, time split, frozen test set;
* :mod:`.train`     XGBoost training with a stored, deterministic feature encoding and checkpoints;
* :mod:`.train_torch` PyTorch training of a tabular network (framework: pytorch; the only module importing torch);
* :mod:`.model_io`  a trained model of either framework: the stored encoding, loading, saving, scoring;
* :mod:`.network`   the network's portable form (JSON weights, numpy forward) that every later job scores;
* :mod:`.compile_neuron` the Compile step of a network served on ml.inf2 (in AWS's Neuron inference image), and
  :mod:`.neuron` the Neuron calls behind one interface with a CPU stand-in; :mod:`.parity` the parity sample
  Evaluate seals with a compiled model;
* :mod:`.metrics`   headline, per-slice and fairness metrics (numpy only);
* :mod:`.explain`   attributions: TreeSHAP for trees, sampled Shapley values for networks;
* :mod:`.gate`      the promotion gate as code;
* :mod:`.champion`  lookup of the current champion in the SageMaker Model Registry;
* :mod:`.evaluate`  challenger vs champion on the frozen test set, writes evaluation.json;
* :mod:`.baseline`  statistics/constraints/attribution baselines for the drift monitors.

Nothing here imports AWS CDK or :mod:`mlops_loop`; scikit-learn and scipy are not used
(tests cross-check the metrics against scikit-learn).
"""

import os as _os

# OpenMP threads that spin while waiting collapse throughput when the CPUs are shared
# (other processes, noisy neighbours, a data loader): measured 30-80x slower xgboost rounds
# on a busy 2-vCPU machine. Passive waiting costs little on dedicated instances. It only
# takes effect if set before xgboost (libgomp) is loaded, hence here; an explicit
# OMP_WAIT_POLICY in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
