"""What can train a model: the names the config, the pipeline definition and the artefact's metadata share.

* ``xgboost``: gradient-boosted trees (``pipeline_code/training/train.py``), the default;
* ``pytorch``: a tabular network (``pipeline_code/training/train_torch.py``), scored everywhere after training
  from its portable numpy form (``pipeline_code/training/network.py``).

An artefact without a ``framework`` in its metadata is from before frameworks: an XGBoost model.
Standard library only.
"""

XGBOOST = "xgboost"
PYTORCH = "pytorch"
FRAMEWORKS = (XGBOOST, PYTORCH)
# What a model card and a report call each framework's model (the SageMaker Model Card's ``algorithm_type``).
ALGORITHMS = {
    XGBOOST: "XGBoost (gradient-boosted decision trees)",
    PYTORCH: "PyTorch tabular network (embeddings for categories, normalised numbers, fully connected layers)",
}
# The library each framework trains with, and the artefact metadata's key holding the version that trained it
# (``feature_metadata.json``, written by the trainer): what the evaluation report, the model card and a rebuild name.
LIBRARIES = {XGBOOST: "xgboost", PYTORCH: "torch"}
VERSION_KEYS = {XGBOOST: "xgboost_version", PYTORCH: "torch_version"}

