"""Operations of one environment: people's notifications and the retraining trigger that closes the loop."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from ..config import EnvironmentConfig
from ..constructs.loop_alarms import LoopAlarms
from ..constructs.retraining_trigger import RetrainingTrigger
from .data_pipeline_stack import RETENTION
from .storage_stack import StorageStack
from .training_stack import TrainingStack


class OperationsStack(Stack):
    """An encrypted SNS topic for people, pipeline-failure notifications, the guarded retrain trigger,
    the alarms on the drift monitor's metrics that fire it, and one dashboard for the environment.

    A failed training execution, including a candidate rejected by the gate (the pipeline ends in
    its Fail step), is published to the topic. Holds no data: notifications in flight are the
    only thing it holds; its key (the environment's ops key) lives in the Storage stack.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ops_env: EnvironmentConfig,
        ops_name_prefix: str,
        ops_training: TrainingStack,
        ops_storage: StorageStack,
        **stack_kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **stack_kwargs)
        self.add_stack_dependency(ops_training)
        self.add_stack_dependency(ops_storage)
        removal = RemovalPolicy.DESTROY if ops_env.removal_policy == "destroy" else RemovalPolicy.RETAIN
        self.key = ops_storage.ops_key
        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name=f"{ops_name_prefix} ML loop notifications",
            master_key=self.key,
            enforce_ssl=True,
        )
        pipelines = {model: p.pipeline.pipeline_name for model, p in ops_training.pipelines.items()}
        self.trigger = RetrainingTrigger(
            self,
            "RetrainTrigger",
            trigger_name_prefix=ops_name_prefix,
            trigger_pipelines=pipelines,
            trigger_cooldown_hours=ops_env.monitoring.retraining_cooldown_hours,
            trigger_schedule=ops_env.training.retraining_schedule,
            trigger_key=self.key,
            trigger_log_retention=RETENTION[ops_env.log_retention_days],
            trigger_removal_policy=removal,
        )
        self.alarms = LoopAlarms(
            self,
            "Alarms",
            alarms_name_prefix=ops_name_prefix,
            alarms_environment=ops_env.name,
            alarms_models=list(pipelines),
            alarms_psi_threshold=ops_env.monitoring.psi_threshold,
            alarms_max_auc_drop=ops_env.monitoring.max_auc_drop,
            alarms_topic=self.topic,
            alarms_trigger_function=self.trigger.function,
            alarms_dead_letter_queue=self.trigger.dead_letter_queue,
        )
        failures = events.Rule(
            self,
            "PipelineFailures",
            description="Tell people when a training execution fails or its candidate is rejected by the gate",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Building Pipeline Execution Status Change"],
                detail={
                    "currentPipelineExecutionStatus": ["Failed"],
                    "pipelineArn": [
                        self.format_arn(service="sagemaker", resource="pipeline", resource_name=name.lower())
                        for name in pipelines.values()
                    ],
                },
            ),
        )
        failures.add_target(targets.SnsTopic(self.topic, dead_letter_queue=self.trigger.dead_letter_queue))
        CfnOutput(self, "NotificationTopicArn", value=self.topic.topic_arn)
        CfnOutput(self, "RetrainTriggerFunction", value=self.trigger.function.function_name)
        CfnOutput(self, "Dashboard", value=self.alarms.dashboard.dashboard_name)
