"""Tools people run on a workstation: never inside a job, a Lambda or synth.

* :mod:`.local`     the AWS-free twin of the loop: a directory model registry, the one-command local run,
  traffic replay and the replayed-drift loop;
* :mod:`.rollback`  list a model's versions, show which one serves, roll back by re-approving an earlier one
  (needs AWS credentials);
* :mod:`.audit`     which data, code, metrics, fairness checks and approver produced a model version
  (needs AWS credentials);
* :mod:`.retraining` pause and resume automatic retraining of an environment or a model, and show whether it is
  paused (on-call's switch; needs AWS credentials);
* :mod:`.erasure`   find every object of an environment holding a customer's record id, the search step of an
  erasure by hand (read-only; needs AWS credentials);
* :mod:`.lifecycle` the stacks a failed first deploy left in the way of ``cdk deploy`` (and their deletion), and
  the teardown that empties a dev environment for ``cdk destroy`` (needs AWS credentials); its parts are
  :mod:`.environment` (stacks, adoption, the commands printed, teardown);

They use the job code (``pipeline_code``) as a library and read configuration through
``mlops_loop.config``, the one loader synth uses; nothing else of the infrastructure, and nothing in
``pipeline_code`` or ``mlops_loop`` imports them (tests/test_boundaries.py).
"""
