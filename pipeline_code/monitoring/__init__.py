"""Our own model monitor (SageMaker Model Monitor / Clarify are closed to new customers).

* :mod:`.capture`  decode a window of captured traffic (data capture JSON Lines, batch transform I/O);
* :mod:`.drift`    data drift (PSI, KS, chi-square), prediction drift and data quality vs the baselines;
* :mod:`.quality`  model quality with delayed labels, bias drift and attribution drift;
* :mod:`.report`   the report (report.json / report.html) and the CloudWatch metrics;
* :mod:`.monitor`  the processing-job CLI.

Local traffic replay from a registered model (drift / concept drift knobs) is a workstation tool:
:mod:`mlops_cli.local.replay`.

Every problem type (``pipeline_code.core.problem``) is monitored: binary, multiclass and regression
models each have their response shapes, prediction drift, model quality and bias checks.

Job code: never imports aws_cdk or mlops_loop; numpy, pandas and SciPy's distributions (SciPy
is a dependency of xgboost, so the XGBoost image the monitor runs in has it).
"""
