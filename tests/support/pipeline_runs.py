"""One ended pipeline execution as SageMaker describes it - the execution, the definition it ran, its parameters and
steps (shapes: the botocore service model) - answered on a (moto) SageMaker client through botocore's ``before-call``
hook: moto 5.2.5 has no ``ListPipelineExecutionSteps`` and knows no execution of a package it did not run. For the
deploy handler's run records and the audit that reads them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Dict

from botocore.awsrequest import AWSResponse

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
PIPELINE = "mlops-loop-prod-churn-training"
EXECUTION = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/run0001"
DEFINITION = json.dumps({"Version": "2020-12-01", "Parameters": [{"Name": "MinAuc", "Type": "Float", "DefaultValue": 0.7}],
                         "Steps": [{"Name": "Train", "Type": "Training"}]})
STARTED = dt.datetime(2026, 11, 20, 4, 0, tzinfo=dt.timezone.utc)
ENDED = dt.datetime(2026, 11, 20, 5, 0, tzinfo=dt.timezone.utc)
PARAMETERS_RAN = [{"Name": "TriggerReason", "Value": "drift"}, {"Name": "MinAuc", "Value": "0.75"}]
STEPS = [{"StepName": "Train", "StepStatus": "Succeeded", "StartTime": STARTED, "EndTime": ENDED,
          "Metadata": {"TrainingJob": {"Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/t-1"}}}]


def execution(status: str = "Succeeded") -> Dict[str, Any]:
    """DescribePipelineExecution of :data:`EXECUTION` in ``status``."""
    return {"PipelineArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}",
            "PipelineExecutionArn": EXECUTION, "PipelineExecutionStatus": status, "CreationTime": STARTED,
            "LastModifiedTime": ENDED}


class Runs:
    """Answers the four execution reads on ``sagemaker``: ``status`` is the execution's, ``fail`` maps an operation
    to the error code to answer it with instead; ``calls`` lists the operations asked."""

    def __init__(self, sagemaker: Any) -> None:
        self.status = "Succeeded"
        self.fail: Dict[str, str] = {}
        self.calls: list = []
        answers: Dict[str, Callable[[], Dict[str, Any]]] = {
            "DescribePipelineExecution": lambda: execution(self.status),
            "DescribePipelineDefinitionForExecution": lambda: {"PipelineDefinition": DEFINITION, "CreationTime": STARTED},
            "ListPipelineParametersForExecution": lambda: {"PipelineParameters": PARAMETERS_RAN},
            "ListPipelineExecutionSteps": lambda: {"PipelineExecutionSteps": STEPS},
        }
        for operation, answer in answers.items():
            sagemaker.meta.events.register(f"before-call.sagemaker.{operation}", self._handler(operation, answer))

    def _handler(self, operation: str, answer: Callable[[], Dict[str, Any]]):
        def handler(params: Any, **_: Any):
            self.calls.append(operation)
            if operation in self.fail:
                code = self.fail[operation]
                return (AWSResponse("https://recorded.invalid", 400, {}, None),
                        {"Error": {"Code": code, "Message": f"{code} (test)"}, "ResponseMetadata": {"HTTPStatusCode": 400}})
            return AWSResponse("https://recorded.invalid", 200, {}, None), {**answer(), "ResponseMetadata": {"HTTPStatusCode": 200}}
        return handler
