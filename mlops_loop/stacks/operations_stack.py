"""Operations of one environment: people's notifications and the retraining trigger that closes the loop."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from aws_cdk import CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code.core.commands import cli_command
from pipeline_code.core.contract import GATE_FAIL_STEP, NOTIFICATION_TOPIC_OUTPUTS, TEAM_CONTACT_TAG, TEAM_TAG
from pipeline_code.core.contract import TEAM_TOPIC_OUTPUT_SUFFIX, pascal, team_topic_name
from pipeline_code.core.problem import FAIRNESS_GAP_KEY

from ..config import EnvironmentConfig
from ..config.serving import ServingAlarms, first_bake_share, longest_rollout_seconds
from ..constructs.arns import format_arn
from ..constructs.cdk_reads import bootstrap_qualifier, event_field
from ..constructs.cost_budget import CostBudget
from ..constructs.deploy_on_approval import DeployOnApproval, MultiModelDeployment
from ..constructs.drift_monitor import DriftMonitor
from ..constructs.job_code import JobCode
from ..constructs.key_changes import notify_key_changes
from ..constructs.endpoint_alarms import EndpointAlarms
from ..constructs.endpoint_state import notify_endpoint_losses
from ..constructs.handler_function import dead_letter_queue
from ..constructs.loop_alarms import LoopAlarms, dead_letter_alarm, dead_letter_backlog, handler_alarms, sns_action
from ..constructs.loop_dashboard import LoopDashboard
from ..constructs.native_model_monitor import notify_native_monitor_failures
from ..constructs.notification_watchdog import NotificationWatchdog
from ..constructs.retraining_trigger import RetrainingTrigger
from ..constructs.rollout_parity_check import ParityEndpoint, RolloutParityCheck
from ..constructs.rule_notifications import NOTICE_KINDS, allow_alarms, notify_topic
from ..constructs.scheduled_job import notify_job_failures
from ..constructs.score_by_id import ScoreById
from ..naming import (
    ETL_JOBS,
    batch_dead_letters_queue_name,
    checked_feature_group_name,
    etl_crawler_name,
    etl_job_name,
    score_by_id_function_name,
)
from .lifetimes import RETENTION, removal_policy
from .serving_stack import ServingStack
from .storage_stack import StorageStack
from .training_stack import TrainingStack


class OperationsStack(Stack):
    """An encrypted SNS topic for people, pipeline-failure notifications, the guarded retrain trigger,
    the alarms on the drift monitor's metrics that fire it, and one dashboard for the environment.

    A failed training execution, including a candidate rejected by the gate (the pipeline ends in
    its Fail step), is published to the topic, and so is a failed ETL job, a failed or stopped drift-monitor
    job, a failed or stopped batch transform job, an endpoint being deleted, failed or out of service, and a deletion
    scheduled, a disable or a new policy on one of the environment's KMS keys (CloudTrail's events: they need a trail,
    see ``notify_key_changes``). A scheduled monitor or
    batch run its schedule could not start goes to a dead-letter queue whose alarm pages people; so does a notice
    EventBridge could not deliver (``NotificationDeadLetters``, apart from the handlers' queues), through the
    notification watchdog's topic as well (its own key: the alarm must not depend on the topic or key that failed).
    Holds no data: notifications in flight and dead letters are the only things it holds; their keys (the
    environment's ops key, the watchdog's key) live in the Storage stack.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: EnvironmentConfig,
        name_prefix: str,
        project: str,
        training: TrainingStack,
        storage: StorageStack,
        serving: ServingStack,
        job_tags: Sequence[tuple[str, str]],
        cli_config: Optional[str] = None,
        **stack_kwargs: Any,
    ) -> None:
        """``job_tags``: the environment's tags, which every drift monitor job carries and the budget (config
        ``budget``, if any) counts by; ``cli_config``: the ``--config`` every workstation command the stack's alarms,
        notices, functions and monitors print names (default None: the default config, named by none)."""
        super().__init__(scope, construct_id, termination_protection=environment.termination_protection, **stack_kwargs)
        self.add_stack_dependency(training)
        self.add_stack_dependency(storage)
        self.add_stack_dependency(serving)
        removal = removal_policy(environment)
        self.key = storage.ops_key
        self.name_prefix = name_prefix
        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name=f"{name_prefix} ML loop notifications",
            master_key=self.key,
            enforce_ssl=True,
        )
        # Every alarm of the environment is named <prefix>-...; those with an action notify this topic.
        allow_alarms(self.topic, alarm_name_prefix=name_prefix)
        # Models of several teams (models.<model>.owner): a topic per team, which everything about one of its models
        # notifies instead of the environment's topic (topic_of); the rest stays on the environment's.
        self.owners = {model: model_config.owner.team for model, (model_config, _) in serving.serving_configs.items()
                       if model_config.owner is not None}
        self.team_topics: dict[str, sns.Topic] = {}
        for model, (model_config, _) in sorted(serving.serving_configs.items()):
            owner = model_config.owner
            if owner is None or owner.team in self.team_topics:
                continue
            # A fixed name (<prefix>-<team>-notifications): the handlers are told it as a plain string (TEAM_TOPICS),
            # which keeps their environment within Lambda's 4 KB however many teams there are.
            topic = sns.Topic(self, f"{pascal(owner.team)}TeamNotifications",
                              topic_name=team_topic_name(name_prefix, owner.team),
                              display_name=f"{name_prefix} {owner.team} team ML notifications"[:100],
                              master_key=self.key, enforce_ssl=True)
            allow_alarms(topic, alarm_name_prefix=name_prefix)
            Tags.of(topic).add(TEAM_TAG, owner.team)
            # One contact per team (the config refuses two: owner_contact_problems), a valid tag value as it is.
            contacts = sorted({c.owner.contact for c, _ in serving.serving_configs.values()
                               if c.owner is not None and c.owner.team == owner.team and c.owner.contact})
            if contacts:
                Tags.of(topic).add(TEAM_CONTACT_TAG, contacts[0])
            models = sorted(m for m, team in self.owners.items() if team == owner.team)
            CfnOutput(self, f"{pascal(owner.team)}{TEAM_TOPIC_OUTPUT_SUFFIX}", value=topic.topic_arn,
                      description=f"Team {owner.team} ({', '.join(contacts) or 'no contact given'}): the alarms and "
                      f"notices of {', '.join(models)}; subscribe its people"[:1024])
            self.team_topics[owner.team] = topic
        # The alarm that says a notice could not be delivered to the topic goes through this one too: it shares
        # neither the topic nor its key (the watchdog key, beside the ops key in the Storage stack).
        self.watchdog = NotificationWatchdog(self, "NotificationWatchdog", name_prefix=name_prefix, key=storage.watchdog_key)
        # Notices EventBridge could not deliver to the topic: their own queue, so its alarm says "people were not
        # told" and a handler's queue keeps meaning "an event was not processed".
        self.notification_dead_letters = dead_letter_queue(
            self, key=self.key, removal_policy=removal, owner="notification rules", construct_id="NotificationDeadLetters")
        # Drift-monitor runs their schedules could not start (no job, no report: nothing else would tell).
        self.monitor_dead_letters = dead_letter_queue(
            self, key=self.key, removal_policy=removal, owner="drift monitor schedules", construct_id="MonitorScheduleDeadLetters")
        pipelines = {model: p.pipeline.pipeline_name for model, p in training.pipelines.items()}
        self.trigger = RetrainingTrigger(
            self,
            "RetrainTrigger",
            name_prefix=name_prefix,
            pipelines=pipelines,
            cooldown_hours=environment.monitoring.retraining_cooldown_hours,
            max_starts_per_day=environment.monitoring.retraining_max_starts_per_day,
            failures_before_pause=environment.monitoring.retraining_failures_before_pause,
            environment_name=environment.name,
            cli_config=cli_config,
            topic=self.topic,
            schedule=environment.training.retraining_schedule,
            key=self.key,
            log_retention=RETENTION[environment.log_retention_days],
            removal_policy=removal,
            network=environment.network,
            # The circuit breaker's page about a team's model reaches its team.
            team_topics={model: self.topic_of(model) for model in pipelines if model in self.owners},
        )
        quality_keys = {model: p.quality_key for model, p in training.pipelines.items()}
        self.alarms = LoopAlarms(
            self,
            "Alarms",
            name_prefix=name_prefix,
            environment=environment.name,
            quality_keys=quality_keys,
            max_auc_drop=environment.monitoring.max_auc_drop,
            max_quality_drop=environment.monitoring.max_quality_drop,
            topic=self.topic,
            topics={model: self.topic_of(model) for model in quality_keys},
            trigger_function=self.trigger.function,
            dead_letter_queue=self.trigger.dead_letter_queue,
            project=project,
            monitor_schedule=environment.monitoring.schedule,
            inference_bucket=storage.lake.bucket_names["inference"],
            cli_config=cli_config,
        )
        lake = storage.lake
        # Every endpoint of the environment -> the package groups it serves (a multi-model endpoint serves several).
        endpoints: dict[str, list[str]] = {}
        for model, served in serving.models.items():
            if served.endpoint_name:  # batch: no endpoint
                endpoints.setdefault(served.endpoint_name, []).append(storage.registry.group_names[model])
        for mme in serving.multi_model_endpoints.values():
            endpoints.setdefault(mme.endpoint_name, []).extend(storage.registry.group_names[m] for m in mme.member_names)
        inference, artifacts = lake.reference(self, "inference"), lake.reference(self, "artifacts")
        features = lake.reference(self, "features")
        self.deploy = DeployOnApproval(
            self,
            "DeployOnApproval",
            name_prefix=name_prefix,
            environment=environment.name,
            serving_stack_name=serving.stack_name,
            # The serving stack's own: the failed-rollout notice names its cfn-exec role for a rollback by hand.
            bootstrap_qualifier=bootstrap_qualifier(serving),
            # Resolved here, as plain names: a logical id left as a token would be counted at an unknown ARN's length
            # (256 bytes) against Lambda's 4 KB of environment, and refuse 16 models or more for the ~25 bytes each takes.
            model_parameters={model: serving.resolve(parameter.logical_id) for model, parameter in serving.parameters.items()},
            deployer_role=iam.Role.from_role_name(self, "ServingDeployer", serving.deployer.role_name),
            topic=self.topic,
            notification_dead_letters=self.notification_dead_letters,
            key=self.key,
            log_retention=RETENTION[environment.log_retention_days],
            # ... and the endpoints' log groups SageMaker creates (the handler sets them: docs/deploying.md).
            log_retention_days=environment.log_retention_days,
            removal_policy=removal,
            artifacts_bucket=artifacts,
            data_key=lake.key,
            # A rolled-back update takes about as long again to return to the old fleet: wait 30 min past it.
            max_wait=Duration.seconds(
                longest_rollout_seconds([s for _, s in serving.serving_configs.values()], environment.multi_model_endpoints.values())
                + 30 * 60
            ),
            multi_model=[
                MultiModelDeployment(
                    model=member,
                    endpoint_name=mme.endpoint_name,
                    artifacts_bucket=artifacts,
                    prefix=mme.staging_prefix,
                )
                for mme in serving.multi_model_endpoints.values()
                for member in mme.member_names
            ],
            network=environment.network,
            endpoint_names=sorted(endpoints),
            cli_config=cli_config,
            # A notice about one model (held version, refused version, reconcile answer) reaches its team.
            team_topics={model: self.topic_of(model) for model in serving.parameters if model in self.owners},
        )
        self.monitors: dict[str, DriftMonitor] = {}
        code = JobCode(self, "Code")
        for model, (model_config, model_serving) in serving.serving_configs.items():
            self.monitors[model] = DriftMonitor(
                self,
                f"{pascal(model)}Monitor",
                name_prefix=name_prefix,
                environment=environment.name,
                model=model_config,
                gate=model_config.gate_in(environment.gate),
                mode=model_serving.mode,
                settings=environment.monitoring,
                instance_type=environment.training.processing_instance_type,
                serving_stack_name=serving.stack_name,
                package_group_name=storage.registry.group_names[model],
                inference_bucket=inference,
                artifacts_bucket=artifacts,
                key=lake.key,
                code=code,
                dead_letter_queue=self.monitor_dead_letters,
                project=project,
                network=environment.network,
                tags=job_tags,
                cli_config=cli_config,
                **({"feature_snapshots": features, "max_skew_rate": model_serving.by_id.max_skew_rate}
                   if model_serving.by_id.enabled else {}),
                # Its own endpoint: each run checks what it serves and that its requests were captured.
                **({"endpoint_name": serving.models[model].endpoint_name, "capture_percent": model_serving.data_capture_percent}
                   if model in serving.models and serving.models[model].endpoint_name else {}),
            )
        self.endpoint_alarms: dict[str, EndpointAlarms] = {}
        for model, served in serving.models.items():
            if served.endpoint_name is None:  # batch: no endpoint
                continue
            self._endpoint_alarms(model, f"{pascal(model)}Endpoint", served.endpoint_name, model, served.mode,
                                  served.serving.instance_types[0] if served.serving.instance_types else None,
                                  served.serving.alarms, None, self_capture=served.self_captures,
                                  topic=self.topic_of(model))
        for endpoint, mme in serving.multi_model_endpoints.items():
            self._endpoint_alarms(endpoint, f"{pascal(endpoint)}MultiModelEndpoint", mme.endpoint_name,
                                  f"{mme.endpoint_name} ({', '.join(mme.member_names)})", "multi_model",
                                  mme.config.instance_type, mme.config.alarms, mme.config.max_model_loading_wait_p99_ms)
        self.score_by_id: dict[str, ScoreById] = {}
        for model, served in serving.models.items():
            # The config allows by_id only on real-time and serverless models, each with its own endpoint.
            settings = served.serving.by_id
            if not settings.enabled:
                continue
            model_config = serving.serving_configs[model][0]
            self.score_by_id[model] = ScoreById(
                self,
                f"{pascal(model)}ScoreById",
                function_name=score_by_id_function_name(name_prefix, model),
                model=model,
                environment=environment.name,
                endpoint_name=served.endpoint_name,
                feature_group_name=checked_feature_group_name(name_prefix, model_config.dataset),
                spec=model_config.lookup_spec(settings),
                max_concurrency=settings.max_concurrency,
                max_skew_rate=settings.max_skew_rate,
                key=lake.key,
                topic=self.topic_of(model),
                # The endpoint's own p99 limit plus the lookup: one BatchGetRecord of at most 100 ids.
                max_latency_ms=served.serving.alarms.max_latency_p99_ms + 500,
                # The endpoint's own 5xx limit: the front answers 5xx mostly for the endpoint or the store.
                max_error_rate_percent=served.serving.alarms.max_error_rate_percent,
                log_retention=RETENTION[environment.log_retention_days],
                removal_policy=removal,
                project=project,
                network=environment.network,
            )
        deploy_alarms = self._deploy_alarms()
        # Rollouts to Inferentia2 endpoints bake under the parity check (its alarm is one of their rollback alarms).
        checked = [
            ParityEndpoint(endpoint_name=served.endpoint_name, package_group=storage.registry.group_names[model],
                           share=first_bake_share(served.serving.rollout))
            for model, served in serving.models.items()
            if served.endpoint_name and served.model_endpoint.parity_checked and served.serving.rollout is not None
        ]
        self.parity_check = RolloutParityCheck(
            self,
            "RolloutParity",
            name_prefix=name_prefix,
            endpoints=checked,
            artifacts_bucket=artifacts,
            data_key=lake.key,
            topic=self.topic,
            key=self.key,
            log_retention=RETENTION[environment.log_retention_days],
            removal_policy=removal,
            network=environment.network,
        ) if checked else None
        fairness_keys = {model: FAIRNESS_GAP_KEY[model_config.problem_type]
                         for model, (model_config, _) in serving.serving_configs.items()}
        self.dashboard = self._dashboard(name_prefix, environment.name, quality_keys, fairness_keys, project, deploy_alarms)
        field = event_field
        # The event names the execution, not why it failed (SageMaker Developer Guide, "Events that Amazon SageMaker
        # AI sends to Amazon EventBridge"): the notice gives the commands that show the failed step and its reason.
        execution = field("$.detail.pipelineExecutionArn")
        for suffix, topic, owned in self._by_team(pipelines):
            self._tell_people(
                f"PipelineFailures{suffix}", "Tell people when a training execution fails or its candidate is rejected by the gate",
                source="aws.sagemaker", detail_type="SageMaker Model Building Pipeline Execution Status Change",
                detail={
                    "currentPipelineExecutionStatus": ["Failed"],
                    "pipelineArn": [format_arn(self, service="sagemaker", resource="pipeline", resource_name=pipelines[m].lower())
                                    for m in owned],
                },
                topic=topic,
                message=events.RuleTargetInput.from_text(
                    f"{name_prefix} training pipeline {field('$.detail.pipelineArn')}: execution {execution} ended "
                    f"{field('$.detail.currentPipelineExecutionStatus')}. If the step that failed is {GATE_FAIL_STEP}, the gate "
                    "rejected the candidate (the serving version stays); any other failed step is an error to fix. Steps, "
                    "and the failed one's FailureReason: aws sagemaker "
                    f"list-pipeline-execution-steps --pipeline-execution-arn {execution} --region {self.region}. The "
                    f"execution: aws sagemaker describe-pipeline-execution --pipeline-execution-arn {execution} --region "
                    f"{self.region}. Any other failed step does not hold the retrain trigger's cooldown: while the model's "
                    "retrain alarm stays in ALARM, the hourly sweep starts the pipeline again, up to "
                    f"{environment.monitoring.retraining_max_starts_per_day} times in 24 hours; after "
                    f"{environment.monitoring.retraining_failures_before_pause} such failures in a row of runs it started, "
                    "the trigger pauses the model's retraining itself and says so once. To stop it sooner: "
                    f"{cli_command('retraining', 'pause --reason INC-ID', environment=environment.name, model='MODEL', config=cli_config)} "
                    "(MODEL: the pipeline name's model; resume once "
                    "fixed; docs/monitoring.md, Pausing retraining)"),
            )
        # A version that waits for a person (every version where auto_approve is off; where it is on, one that would
        # answer its callers in another shape) would otherwise wait unseen: the approvers hear of each, once complete.
        for suffix, topic, owned in self._by_team(serving.parameters):
            self._tell_people(
                f"ApprovalRequests{suffix}", "Tell people when a registered model version awaits a person's approval",
                source="aws.sagemaker", detail_type="SageMaker Model Package State Change",
                detail={"ModelPackageGroupName": [storage.registry.group_names[model] for model in owned],
                        "ModelApprovalStatus": ["PendingManualApproval"], "ModelPackageStatus": ["Completed"]},
                topic=topic,
                # No angle brackets but EventBridge's own: it refuses a template naming a variable it does not define.
                message=events.RuleTargetInput.from_text(
                    f"{field('$.detail.ModelPackageGroupName')} version {field('$.detail.ModelPackageVersion')} awaits a "
                    "person's approval. Review it: "
                    f"{cli_command('audit', '--version ' + field('$.detail.ModelPackageVersion'), environment=environment.name, model='MODEL', config=cli_config)} "
                    f"(MODEL: the group's name after '{name_prefix}-'), "
                    "which shows its evaluation, gate, model card and, when its callers' contract changes, why it was not "
                    "approved automatically. Then, as the approver role: aws sagemaker update-model-package "
                    f"--model-package-arn {field('$.detail.ModelPackageArn')} --model-approval-status Approved (or Rejected) "
                    f"--approval-description 'why' --region {self.region}. (SageMaker may send a state change more than once: a repeated notice "
                    "is the same version.)"),
            )
        # A failed or timed-out ETL job (a quarantine ratio over the limit, raw files the schema refuses, a feature
        # write that failed) stops fresh data reaching training and the online store: people hear of it.
        datasets = sorted({model_config.dataset for model_config, _ in serving.serving_configs.values()})
        # A dataset whose models are all one team's is that team's; one several teams (or an unowned model) use, the
        # environment's.
        dataset_owner = {}
        for dataset in datasets:
            owners = {self.owners.get(model) for model, (model_config, _) in serving.serving_configs.items()
                      if model_config.dataset == dataset}
            dataset_owner[dataset] = owners.pop() if len(owners) == 1 else None
        for suffix, topic, owned in self._by_team(datasets, owner=lambda dataset: dataset_owner[dataset],
                                                  by_team=True):
            self._tell_people(
                f"EtlFailures{suffix}", "Tell people when a dataset's curate or feature job fails or times out (no fresh data)",
                source="aws.glue", detail_type="Glue Job State Change",
                detail={"jobName": [etl_job_name(name_prefix, d, job) for d in owned for job in ETL_JOBS],
                        "state": ["FAILED", "TIMEOUT"]},
                topic=topic,
                # Glue's event carries the job, its run id, its state and Glue's message.
                message=events.RuleTargetInput.from_text(
                    f"{name_prefix} ETL job {field('$.detail.jobName')} run {field('$.detail.jobRunId')} ended "
                    f"{field('$.detail.state')}: {field('$.detail.message')}. Until it runs again no fresh data of its "
                    "dataset reaches training or the online store. The run (ErrorMessage, LogGroupName: its error log "
                    f"stream is the run id): aws glue get-job-run --job-name {field('$.detail.jobName')} --run-id "
                    f"{field('$.detail.jobRunId')} --region {self.region}"),
            )
            # The workflow starts the curate job only on a SUCCEEDED crawl: a crawler that fails starts no job, so no job
            # fails and the rule above never fires; the data just stops being fresh. Its own state change tells people.
            self._tell_people(
                f"CrawlerFailures{suffix}", "Tell people when a dataset's raw crawler fails (its ETL does not run)",
                source="aws.glue", detail_type="Glue Crawler State Change",
                detail={"crawlerName": [etl_crawler_name(name_prefix, d) for d in owned], "state": ["Failed"]},
                topic=topic,
                message=events.RuleTargetInput.from_text(
                    f"{name_prefix} crawler {field('$.detail.crawlerName')} failed: {field('$.detail.errorMessage')}. "
                    "Its dataset's curate and feature jobs start only after a successful crawl: no fresh data of that "
                    "dataset reaches training or the online store until it runs again (the next nightly run, or its Glue "
                    "workflow started by hand). The crawl (LastCrawl: ErrorMessage, LogGroup, LogStream): aws glue "
                    f"get-crawler --name {field('$.detail.crawlerName')} --region {self.region}"),
            )
        # A key pending deletion or disabled fails every use of it at once, and the Deny in its policy stops only a short
        # window: people hear of each such change, with the commands that undo it.
        notify_key_changes(self, "KeyChanges", name_prefix=name_prefix,
                           keys={f"alias/{name_prefix}/{purpose}": key for purpose, key in
                                 (("data", lake.key), ("ops", storage.ops_key), ("watchdog", storage.watchdog_key))},
                           topic=self.topic, dead_letter_queue=self.notification_dead_letters)
        # An endpoint deleted by hand publishes no metric, so its alarms (missing data not breaching) stay quiet: its
        # state change tells people, with the reconcile that names the fix.
        # A model's own endpoint is its team's; a multi-model endpoint, shared, the environment's.
        endpoint_model = {served.endpoint_name: model for model, served in serving.models.items() if served.endpoint_name}
        for suffix, topic, owned in self._by_team(endpoints, owner=lambda endpoint: endpoint_model.get(endpoint)):
            notify_endpoint_losses(self, f"EndpointLosses{suffix}", name_prefix=name_prefix,
                                   endpoints={e: endpoints[e] for e in owned},
                                   deploy_function_name=self.deploy.function_name, topic=topic,
                                   dead_letter_queue=self.notification_dead_letters)
        self._scheduled_job_failures(serving)
        self._dead_letter_alarms(serving)
        # The month's spending, before the invoice: notices to the same topic (the ops key lets Budgets use it when
        # the environment has a budget: storage_stack).
        budget = environment.budget
        self.budget = CostBudget(
            self, "MonthlyBudget", name_prefix=name_prefix, monthly_usd=budget.monthly_usd, topic=self.topic,
            tags=job_tags if budget.scope == "tags" else None, actual_percent=budget.actual_percent,
            forecast_percent=budget.forecast_percent, emails=budget.emails,
        ) if budget is not None else None
        notices, watchdog = NOTIFICATION_TOPIC_OUTPUTS
        CfnOutput(self, notices, value=self.topic.topic_arn)
        CfnOutput(self, watchdog, value=self.watchdog.topic.topic_arn)
        CfnOutput(self, "RetrainTriggerFunction", value=self.trigger.function.function_name)
        CfnOutput(self, "DeployFunction", value=self.deploy.function.function_name)
        CfnOutput(self, "Dashboard", value=self.dashboard.dashboard.dashboard_name)

    def _dashboard(self, name_prefix: str, environment: str, quality_keys: dict[str, str], fairness_keys: dict[str, str],
                   project: str, deploy_alarms: list[cloudwatch.Alarm]) -> LoopDashboard:
        """The environment's dashboard: the loop's graphs and alarms, then the status of every other alarm this stack
        makes, a row per group (on-call sees every alarm that can page them), then each endpoint's graphs."""
        dashboard = LoopDashboard(
            self,
            "LoopDashboard",
            name_prefix=name_prefix,
            environment=environment,
            quality_keys=quality_keys,
            alarms=self.alarms.all_alarms,
            fairness_keys=fairness_keys,
            project=project,
        )
        dashboard.add_alarm_status("Endpoint alarms", [a for e in self.endpoint_alarms.values() for a in e.alarms])
        dashboard.add_alarm_status("Deploy alarms", [*deploy_alarms, *(self.parity_check.alarms if self.parity_check else [])])
        dashboard.add_alarm_status("Score-by-id alarms", [a for s in self.score_by_id.values() for a in s.alarms])
        for endpoint_alarms in self.endpoint_alarms.values():
            dashboard.add_row(endpoint_alarms.widgets)
        return dashboard

    def topic_of(self, model: str) -> sns.ITopic:
        """The topic that hears of ``model``: its team's (``owner.team``), else the environment's."""
        team = self.owners.get(model)
        return self.team_topics[team] if team is not None else self.topic

    def _by_team(self, keys, owner=lambda model: model, *, by_team: bool = False) -> list[tuple[str, sns.ITopic, list[str]]]:
        """``keys`` (models, or what ``owner`` maps to a model or None; with ``by_team``, to a team or None) split by
        the topic that hears of them: (construct id suffix, topic, keys), the environment's first with no suffix (so a
        config without owners keeps its rules' ids), each team's after as ``<Team>Team``; groups without keys are left
        out."""
        groups: dict[Optional[str], list[str]] = {}
        for key in keys:
            found = owner(key)
            team = found if by_team else (self.owners.get(found) if found is not None else None)
            groups.setdefault(team, []).append(key)
        out = []
        if groups.get(None):
            out.append(("", self.topic, groups[None]))
        for team in sorted(t for t in groups if t is not None):
            out.append((f"{pascal(team)}Team", self.team_topics[team], groups[team]))
        return out

    def _tell_people(self, construct_id: str, description: str, *, source: str, detail_type: str,
                     detail: dict, message: Optional[events.RuleTargetInput] = None,
                     topic: Optional[sns.ITopic] = None) -> events.Rule:
        """An EventBridge rule publishing the matching events of ``source`` to ``topic`` (default: the environment's
        topic; the event as JSON, or ``message``)."""
        rule = events.Rule(self, construct_id, description=description, event_pattern=events.EventPattern(
            source=[source], detail_type=[detail_type], detail=detail))
        notify_topic(rule, topic or self.topic, dead_letter_queue=self.notification_dead_letters, message=message)
        return rule

    def _scheduled_job_failures(self, serving: ServingStack) -> None:
        """Scheduled jobs that fail or are stopped tell people: the drift monitor's processing jobs, when a model
        is served in batch its transform jobs (job state-change events of this environment's job-name stems), and when
        a model opts into native Model Monitor its monitoring jobs (a rule per model, by the role they run as)."""
        prefix = self.name_prefix
        for suffix, topic, owned in self._by_team(self.monitors):
            notify_job_failures(
                self, f"MonitorJobFailures{suffix}", kind="processing", what=f"{prefix} drift monitor",
                stems={model: self.monitors[model].job_name_prefix for model in owned},
                topic=topic, dead_letter_queue=self.notification_dead_letters)
        batch = {model: served.job_name_prefix for model, served in serving.models.items() if served.mode == "batch"}
        for suffix, topic, owned in self._by_team(batch):
            notify_job_failures(self, f"TransformJobFailures{suffix}", kind="transform", what=f"{prefix} batch transform",
                                stems={model: batch[model] for model in owned}, topic=topic,
                                dead_letter_queue=self.notification_dead_letters)
        for model, native in sorted(serving.native_monitors.items()):
            notify_native_monitor_failures(self, f"{pascal(model)}NativeMonitorFailures", monitor=native,
                                           what=f"{prefix} native Model Monitor", topic=self.topic_of(model),
                                           dead_letter_queue=self.notification_dead_letters)

    def _dead_letter_alarms(self, serving: ServingStack) -> None:
        """What never reached its handler or its people pages on arrival: an alarm per dead-letter queue this stack
        adds (notifications, drift-monitor schedules, and the Serving stack's batch schedules when it has them; the
        handlers' own queues have theirs), each queue's backlog on the dashboard with the alarms' states."""
        prefix = self.name_prefix
        queues: dict[str, sqs.IQueue] = {
            "retrain trigger": self.trigger.dead_letter_queue,
            "deploy handler": self.deploy.dead_letter_queue,
            **({"rollout parity check": self.parity_check.dead_letter_queue} if self.parity_check else {}),
            "notifications": self.notification_dead_letters,
            "monitor schedules": self.monitor_dead_letters,
        }
        undelivered = dead_letter_alarm(
            self, name_prefix=prefix, name="notification-dead-letters", queue=self.notification_dead_letters,
            topic=self.topic, description=notification_dead_letter_description())
        # The topic it could not reach is often what broke (deleted, its policy edited, the ops key disabled): the
        # watchdog's own topic and key tell people then; the topic's action still reaches whoever is subscribed there only.
        undelivered.add_alarm_action(sns_action(self.watchdog.topic))
        alarms = [
            undelivered,
            dead_letter_alarm(self, name_prefix=prefix, name="monitor-dead-letters", queue=self.monitor_dead_letters,
                              topic=self.topic, description="A scheduled drift-monitor run could not start (no job, no "
                              "report); see the monitor schedule DLQ (docs/monitoring.md, Dead-letter queues)"),
        ]
        if serving.schedule_dead_letters is not None:
            # The queue lives in the Serving stack under a fixed name (no cross-stack export).
            name = batch_dead_letters_queue_name(prefix)
            queues["batch schedules"] = sqs.Queue.from_queue_attributes(
                self, "BatchScheduleDeadLetters", queue_arn=format_arn(self, service="sqs", resource=name), queue_name=name)
            alarms.append(dead_letter_alarm(
                self, name_prefix=prefix, name="batch-dead-letters", queue=queues["batch schedules"], topic=self.topic,
                description="A scheduled batch transform could not start (quota, permission or missing model): "
                "nothing was scored; see the batch schedule DLQ (docs/monitoring.md, Dead-letter queues)"))
        self.dead_letter_alarms = alarms
        self.dashboard.add_alarm_status("Dead-letter alarms", alarms)
        self.dashboard.add_row([dead_letter_backlog(queues)])

    def _endpoint_alarms(self, key: str, construct_id: str, endpoint_name: str, title: str, mode: str,
                         instance_type: str | None, settings: ServingAlarms, loading_wait_ms: int | None, *,
                         self_capture: bool = False, topic: Optional[sns.ITopic] = None) -> None:
        endpoint_alarms = EndpointAlarms(
            self,
            construct_id,
            endpoint_name=endpoint_name,
            title=title,
            mode=mode,
            instance_type=instance_type,
            settings=settings,
            topic=topic or self.topic,
            max_model_loading_wait_ms=loading_wait_ms,
            self_capture=self_capture,
        )
        self.endpoint_alarms[key] = endpoint_alarms

    def _deploy_alarms(self) -> list[cloudwatch.Alarm]:
        """Approvals the deploy handler could not process page people; its errors (attempts Lambda retries) are on the
        dashboard only; endpoint log groups its sweep leaves unset sweep after sweep tell people (the construct's
        ``log_retention_alarm``, when it sweeps)."""
        return [*handler_alarms(
            self.deploy,
            name_prefix=self.name_prefix,
            names=("deploy-errors", "deploy-dead-letters"),
            function=self.deploy.function,
            queue=self.deploy.dead_letter_queue,
            errors_description="An attempt of the deploy-on-approval handler failed (e.g. UpdateStack throttled); check its logs",
            # Every rule that invokes the handler dead-letters here, so the page says which event means what.
            dead_letters_description="An event the deploy handler failed on three times (or one not delivered to it) is "
            "in its dead-letter queue; its body says which: a model-package state change or a reconcile (that group's "
            "approved version may not be deployed yet), a record-execution (a training execution's end: the run "
            "record of the version it registered is not written) or the hourly log-retention sweep (the next one "
            "tries again). Read it, then replay as (docs/monitoring.md, Dead-letter queues)",
            topic=self.topic,
        ), *([self.deploy.log_retention_alarm] if self.deploy.log_retention_alarm is not None else [])]


def notification_dead_letter_description() -> str:
    """The ``-notification-dead-letters`` page: people were not told, and which notice it was - every kind of
    :data:`NOTICE_KINDS`, by the rule name a message's RULE_ARN attribute gives (unless CloudFormation shortened the
    generated name for a long stack name: the body says it too) - with what each means."""
    kinds = "; ".join(f"{rule}: {what}" for rule, what in NOTICE_KINDS.items())
    return ("A notice could not be published to the topic: people were not told. Each message is the notice; its body "
            f"(or the rule in its RULE_ARN attribute) says which kind - {kinds}. Act on it, then fix the topic or key policy its "
            "ERROR_MESSAGE names (docs/monitoring.md, Dead-letter queues)")
