"""Alarms that page an operator, and one dashboard of runs and ingestions.

Alarms notify an SNS topic; an email subscription is added when the stack's `AlarmEmail`
parameter is set. An alarm means something needs a person: an error in our code, throttling,
a lost event. What tenants cause (a runner that is down, a cancel, an expiry) is an outcome of
a run, counted on the dashboard by reason, never an alarm. Anything that can pile up unnoticed
(dead-letter queues) alarms at its first message.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Aws, CfnCondition, CfnParameter, Duration, Fn, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.settings import EnvironmentSettings

# The functions emit run metrics as CloudWatch embedded metrics (functions/ksflow/observability.py) under
# the environment's namespace and service, which their POWERTOOLS_* variables set.
RUN_FAILURE_REASONS = ("callback", "dispatch", "timeout", "expiry", "cancel", "reconcile")
FIVE_MINUTES = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        http_api: apigwv2.HttpApi,
        functions: Mapping[str, lambda_.IFunction],
        state_machines: Mapping[str, sfn.IStateMachine],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        table: dynamodb.ITable,
        settings: EnvironmentSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        email = CfnParameter(
            scope, "AlarmEmail", type="String", default="",
            description="Email address that receives ksflow alarms (empty: no subscription)",
        )
        topic_key = kms.Key(self, "AlarmTopicKey", description="Encrypts the ksflow alarm topic",
                            enable_key_rotation=True, removal_policy=settings.removal_policy)
        # CloudWatch alarms publish to the encrypted topic, so the service may use the key.
        topic_key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "AlarmTopic", display_name=f"ksflow alarms ({settings.name})",
                               master_key=topic_key, enforce_ssl=True)
        # enforce_ssl gives the topic a policy that only denies: CloudWatch needs an Allow to publish, and only
        # for this stack's alarms (named after the stack) in this account.
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowThisStacksAlarmsToPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": Stack.of(self).format_arn(
                    service="cloudwatch", resource="alarm", resource_name=f"{settings.stack_name}-*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME)},
            },
        ))
        subscription = sns.CfnSubscription(self, "AlarmEmailSubscription", topic_arn=self.topic.topic_arn,
                                           protocol="email", endpoint=email.value_as_string)
        subscription.cfn_options.condition = CfnCondition(
            self, "HasAlarmEmail", expression=Fn.condition_not(Fn.condition_equals(email.value_as_string, "")))
        self.alarms: list[cloudwatch.Alarm] = []

        self._alarm("Api5xx", http_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"), 5,
                    "The API answered 5xx at least 5 times in 5 minutes")
        self._alarm("ApiLatencyP99", http_api.metric_latency(period=FIVE_MINUTES, statistic="p99"), 5000,
                    "The API's p99 latency was above 5 s for 15 minutes", periods=3)
        for name, fn in functions.items():
            self._alarm(f"{name}Errors", fn.metric_errors(period=FIVE_MINUTES, statistic="Sum"), 1,
                        f"The {name} function raised errors")
            self._alarm(f"{name}Throttles", fn.metric_throttles(period=FIVE_MINUTES, statistic="Sum"), 1,
                        f"The {name} function was throttled")
        # Not aborted executions: every cancel and expiry stops one on purpose.
        for name, machine in state_machines.items():
            for kind, metric in (("Failed", machine.metric_failed), ("TimedOut", machine.metric_timed_out)):
                self._alarm(f"{name}Executions{kind}", metric(period=FIVE_MINUTES, statistic="Sum"), 1,
                            f"{name} executions {kind.lower()}")
        for name, queue in dead_letter_queues.items():
            self._alarm(f"{name}DeadLetters",
                        queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Max"),
                        1, f"Events undelivered to their target wait in the {name} dead-letter queue")
        throttles = table.metric_throttled_requests_for_operations(
            operations=[dynamodb.Operation.GET_ITEM, dynamodb.Operation.PUT_ITEM, dynamodb.Operation.UPDATE_ITEM,
                        dynamodb.Operation.QUERY, dynamodb.Operation.TRANSACT_WRITE_ITEMS,
                        dynamodb.Operation.BATCH_GET_ITEM, dynamodb.Operation.BATCH_WRITE_ITEM],
            period=FIVE_MINUTES)
        self._alarm("TableThrottles", throttles, 1, "DynamoDB throttled requests to the table")
        self._alarm("RunsExpired", self._runs_failed("expiry"), 1,
                    "A run was failed by its expiry schedule: its execution never ended it (crash or lost event)")
        self._alarm("ScheduleOccurrencesFailed", self._metric("ScheduleOccurrencesFailed"), 1,
                    "A scheduled definition could not run an occurrence (a reference gone, the runner removed); "
                    "the definition shows it as last_schedule_error")

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=settings.stack_name)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Runs", width=12, left=[
                self._metric("RunsInvoked"), self._metric("RunsCompleted", reason="callback"),
                *[self._runs_failed(reason) for reason in RUN_FAILURE_REASONS]]),
            cloudwatch.GraphWidget(title="Run duration (ms)", width=12, left=[
                self._metric("RunDuration", "p50", status="COMPLETED"),
                self._metric("RunDuration", "p90", status="COMPLETED"),
                self._metric("RunDuration", "p90", status="FAILED")]),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Dispatch", width=12, left=[
                self._metric("DispatchAttempts"), self._metric("DispatchAccepted"), self._metric("DispatchFailed")]),
            cloudwatch.GraphWidget(title="Ingestions", width=12, left=[
                self._metric("IngestionsCompleted"), self._metric("IngestionsFailed")],
                right=[self._metric("ChunksProcessed")]),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="API", width=12, left=[
                http_api.metric_count(period=FIVE_MINUTES), http_api.metric_client_error(period=FIVE_MINUTES),
                http_api.metric_server_error(period=FIVE_MINUTES)],
                right=[http_api.metric_latency(period=FIVE_MINUTES, statistic="p99")]),
            cloudwatch.GraphWidget(title="Executions", width=12, left=[
                metric(period=FIVE_MINUTES) for machine in state_machines.values()
                for metric in (machine.metric_succeeded, machine.metric_failed, machine.metric_timed_out,
                               machine.metric_aborted)]),
        )
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", width=24, alarms=self.alarms))

    def _metric(self, name: str, statistic: str = "Sum", **dimensions: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace=self._settings.metrics_namespace, metric_name=name, statistic=statistic,
                                 period=FIVE_MINUTES,
                                 dimensions_map={"service": self._settings.service_name, **dimensions},
                                 label=" ".join([name, *dimensions.values(), *([statistic] if statistic != "Sum"
                                                                                else [])]))

    def _runs_failed(self, reason: str) -> cloudwatch.Metric:
        return self._metric("RunsFailed", reason=reason)

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, threshold: float, description: str,
               periods: int = 1) -> None:
        alarm = cloudwatch.Alarm(
            self, construct_id, metric=metric, threshold=threshold, evaluation_periods=periods,
            alarm_name=f"{self._settings.stack_name}-{construct_id}",
            alarm_description=description,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
