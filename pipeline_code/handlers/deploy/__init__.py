"""The parts of the deploy-on-approval handler (:mod:`pipeline_code.handlers.deploy_on_approval`, the Lambda entry
point), one responsibility per module:

* :mod:`.events`: the events it is invoked with, parsed;
* :mod:`.registry`: a group's versions, the one that should serve, and the checks a version must pass;
* :mod:`.stack`: the serving stack's description and parameters, update tokens, failed-rollout detection;
* :mod:`.notices`: notices to people;
* :mod:`.ledger`: the approval ledger (a write-once record of every decision);
* :mod:`.run_records`: the write-once records of the pipeline runs that registered approved versions;
* :mod:`.log_retention`: the retention of the environment's endpoint log groups (which SageMaker creates);
* :mod:`.settings`: the function's environment variables.

Standard library and boto3 only, like every handler; shipped in the handlers' code root
(:data:`mlops_loop.packaging.HANDLER_PACKAGES`).
"""

import logging

# The parts log decisions and failures at INFO and up, as the entry point does (Lambda's Python logging is WARNING by
# default).
logging.getLogger(__name__).setLevel(logging.INFO)
