"""Serving-side job code: the SageMaker inference hooks of the mlops-loop XGBoost models.

* :mod:`.inference`   ``model_fn`` / ``input_fn`` / ``predict_fn`` / ``output_fn`` for the stock
  SageMaker XGBoost image (:mod:`pipeline_code.core.images`) in script mode, plus :func:`.inference.invoke` (the same chain in
  one call, for tests, the docs and local scoring);
* :mod:`.records`     request parsing, validation and feature computation (no xgboost): also
  what a reader of captured requests uses to complete raw-field records the way serving does;
* :mod:`.serve_entry` the thin module that must sit at the *root* of the source tarball
  (``SAGEMAKER_PROGRAM=serve_entry.py``) of a single-model container: ``model_fn`` and ``transform_fn``
  (the hooks' chain, answering a refused request with its status in the XGBoost image's Flask worker);
* :mod:`.mme_entry`   the standard-library bootstrap of a multi-model endpoint: in each model's
  worker process it imports that model's own serving code from ``<model_dir>/code``;
* :mod:`.self_capture` SageMaker-format capture records written by the serving code where
  SageMaker captures nothing usable (serverless, multi-model: one prefix per model);
* :mod:`.package`     writes the serving code into the model directory at training time.

The request/response contract is written down in ``docs/invocation-contract.md``.
"""
