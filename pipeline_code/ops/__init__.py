"""Operator commands run from a workstation with AWS credentials (never inside a job or a Lambda).

* :mod:`.rollback`  list a model's versions, show which one serves, roll back by re-approving an earlier one;
* :mod:`.audit`     which data, code, metrics, fairness checks and approver produced a model version.

Like all of ``pipeline_code``, these never import aws_cdk or mlops_loop.
"""
