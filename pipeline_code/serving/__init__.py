"""Serving-side job code: the SageMaker inference hooks of the mlops-loop XGBoost models.

* :mod:`.inference`   ``model_fn`` / ``input_fn`` / ``predict_fn`` / ``output_fn`` for the stock
  SageMaker XGBoost 3.0-5 image in script mode, plus :func:`.inference.invoke` (the same chain in
  one call, for tests, the docs and local scoring);
* :mod:`.records`     request parsing, validation and feature computation (no xgboost): also
  what a reader of captured requests uses to complete raw-field records the way serving does;
* :mod:`.serve_entry` the thin module that must sit at the *root* of the source tarball
  (``SAGEMAKER_PROGRAM=serve_entry.py``), re-exporting the hooks.

The request/response contract is written down in ``docs/invocation-contract.md``.
"""
