"""Run orchestration: the run state machine, its Lambda tasks, expiry schedules and failure reconciliation."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import checkov, nag
from infra.data import RUN_PARTITIONS, Data
from infra.function import KsflowFunction
from infra.settings import EnvironmentSettings
from infra.state_machine import asl_state_machine
from ksflow import catalog

ABNORMAL_EXECUTION_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]

# What every function that changes runs does to the table (workflows/run_store.py): it reads the run,
# then updates it and puts the events of the change in one TransactWriteItems, which IAM authorizes per
# contained write (UpdateItem, PutItem). None of their transactions holds a ConditionCheck or a Delete.
RUN_CHANGE_ACTIONS = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"]
# Answers to an execution's task token (orchestration/executions.py): the dispatcher and the API each
# finish a wait, fail it with a named error (a retry to plan, a runner worth another POST) and restart
# its heartbeat timer (after an accepted dispatch; a runner's heartbeat).
TASK_TOKEN_ACTIONS = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]

DLQ_REASON = (
    "This queue is itself the dead-letter queue of {owner}; failed deliveries wait here for an operator "
    "to inspect and redrive them, so it has no dead-letter queue of its own."
)


def scheduler_target_role(scope: Construct, construct_id: str, description: str, *,
                          group: scheduler.CfnScheduleGroup, target: KsflowFunction,
                          dead_letters: sqs.Queue) -> iam.Role:
    """The role Scheduler assumes for one group's schedules: it may only invoke their target and use its DLQ."""
    role = iam.Role(
        scope,
        construct_id,
        description=description,
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com",
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnEquals": {"aws:SourceArn": group.attr_arn},
            },
        ),
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[target.function_arn])
    )
    role.add_to_principal_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[dead_letters.queue_arn]))
    return role


def dead_letter_queue(scope: Construct, construct_id: str, settings: EnvironmentSettings, owner: str) -> sqs.Queue:
    """A queue that holds what `owner` could not deliver or process, until an operator redrives it."""
    # SQS-managed SSE: EventBridge, Scheduler and Lambda can deliver without a key policy grant of their own.
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
        removal_policy=settings.removal_policy,
    )
    NagSuppressions.add_resource_suppressions(
        queue, [NagPackSuppression(id="AwsSolutions-SQS3", reason=DLQ_REASON.format(owner=owner))]
    )
    checkov.skip(queue, "CKV_AWS_27", checkov.QUEUE_WITHOUT_CUSTOMER_KEY)
    return queue


class Orchestration(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        data: Data,
        code: lambda_.Code,
        definition_file: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        table = data.table

        # --- Per-attempt expiry schedules: one `at(...)` schedule per run attempt, made by whoever starts it ---
        self.schedule_group = scheduler.CfnScheduleGroup(self, "RunScheduleGroup")
        self.schedule_group_name = self.schedule_group.ref
        self.schedules_arn = stack.format_arn(
            service="scheduler", resource="schedule", resource_name=f"{self.schedule_group_name}/*"
        )
        self.scheduler_dlq = dead_letter_queue(self, "ExpiryScheduleDeadLetterQueue", settings, "expiry schedules")

        # --- Lambda tasks ---
        self.dispatcher = KsflowFunction(
            self,
            "DispatcherFunction",
            settings=settings,
            code=code,
            handler=catalog.HANDLERS["Dispatcher"],
            description="Signs and POSTs a run to its self-hosted runner; runs as the task-token task",
            environment={
                "TABLE_NAME": table.table_name,
                "KMS_KEY_ID": data.secrets_key.key_arn,
                "ALLOW_LOOPBACK_RUNNERS": "false",
                # PUBLIC_API_URL is added by the stack once the HTTP API exists.
            },
            timeout=Duration.seconds(120),
            memory_size=512,
            # One tenant's slow runner holds dispatcher invocations; the cap keeps it from starving the account.
            reserved_concurrency=settings.dispatcher_reserved_concurrency,
        )
        data.grant_items(self.dispatcher, RUN_CHANGE_ACTIONS, partitions=RUN_PARTITIONS)
        data.secrets_key.grant_decrypt(self.dispatcher.function)

        self.run_failure = self._run_task(
            "RunFailure",
            "Ends a failed attempt (timer, orchestration error, handed-back retry) and plans the next attempt",
            settings=settings, data=data, code=code,
        )

        # The expiry function and reconcile are invoked asynchronously (Scheduler, EventBridge): events
        # their code fails on after Lambda's retries wait in a queue of their own for an operator.
        self.expiry_failures = dead_letter_queue(
            self, "ExpiryFailedInvocationsQueue", settings, "the expiry function's failed invocations")
        # Named at deploy time: the run failure function makes expiry schedules that target it, while the
        # state machine invokes the run failure function and the expiry function stops the state machine's
        # executions. References along that ring would be a dependency cycle; the name breaks it.
        expiry_function_name = f"{settings.stack_name}-run-expiry"
        self.expiry = self._run_task(
            "Expiry",
            "Run expiry schedule target: fails the run if still open and stops its execution",
            settings=settings, data=data, code=code, failed_invocations=self.expiry_failures,
            function_name=expiry_function_name,
        )
        self.expiry_function_arn = stack.format_arn(
            service="lambda", resource="function", resource_name=expiry_function_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.reconcile_failures = dead_letter_queue(
            self, "ReconcileFailedInvocationsQueue", settings, "the reconcile function's failed invocations")
        self.reconcile = self._run_task(
            "Reconcile",
            "Fails runs whose execution ended abnormally (failed, timed out, aborted)",
            settings=settings, data=data, code=code, failed_invocations=self.reconcile_failures,
        )

        # Whoever fails a run deletes its expiry schedule. The expiry function never does: the schedule
        # that invokes it deletes itself after completion. The run failure function also makes the next
        # attempt's schedule (`serve_expiry_schedules`, below).
        for fn in (self.dispatcher, self.reconcile):
            fn.add_environment("SCHEDULER_GROUP_NAME", self.schedule_group_name)
            fn.role.add_to_principal_policy(
                iam.PolicyStatement(actions=["scheduler:DeleteSchedule"], resources=[self.schedules_arn])
            )

        # --- The run state machine, defined by the ASL file the local stack also runs ---
        self.state_machine, self.state_machine_log_group = asl_state_machine(
            self,
            "RunStateMachine",
            settings=settings,
            definition_file=definition_file,
            comment="One workflow run: dispatch to the runner, await its callback until the deadline",
            substitutions=catalog.RUN_STATE_MACHINE_SUBSTITUTIONS,
            functions={"Dispatcher": self.dispatcher, "RunFailure": self.run_failure},
        )
        self.state_machine_arn = self.state_machine.state_machine_arn

        # The dispatcher answers its own task token: success when the run ended or dispatch gave up, a named
        # failure when the runner is worth another POST or a retry follows, a heartbeat when the runner
        # accepted (its heartbeat timer starts afresh). `grant_task_response` would put the state
        # machine's ARN into the dispatcher role's default policy, which the function depends on, while the
        # state machine depends on the function: a cycle. A standalone policy breaks it.
        self.dispatcher_task_response = task_response_policy(
            self, "DispatcherTaskResponsePolicy", self.dispatcher, TASK_TOKEN_ACTIONS
        )
        self.state_machine.node.add_dependency(self.dispatcher_task_response)

        self.expiry.add_environment("RUN_STATE_MACHINE_ARN", self.state_machine_arn)
        self.state_machine.grant_execution(self.expiry.function, "states:StopExecution")

        # --- Scheduler execution role: may only invoke the expiry function and use its DLQ ---
        self.scheduler_role = scheduler_target_role(
            self, "SchedulerRole", "Assumed by EventBridge Scheduler for ksflow run expiry schedules",
            group=self.schedule_group, target=self.expiry, dead_letters=self.scheduler_dlq,
        )
        # Every policy retry passes through the run failure function, which moves the expiry schedule
        # from the failed attempt to the next one.
        self.serve_expiry_schedules(self.run_failure, settings)

        # --- Reconcile runs whose execution ended abnormally ---
        self.reconcile_dlq = dead_letter_queue(
            self, "ReconcileDeadLetterQueue", settings, "the execution status change rule"
        )
        self.execution_failed_rule = events.Rule(
            self,
            "ExecutionEndedAbnormallyRule",
            description="Run executions that failed, timed out or were aborted",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ABNORMAL_EXECUTION_STATUSES,
                    "stateMachineArn": [self.state_machine_arn],
                },
            ),
        )
        self.execution_failed_rule.add_target(
            targets.LambdaFunction(
                self.reconcile.function,
                dead_letter_queue=self.reconcile_dlq,
                retry_attempts=8,
                max_event_age=Duration.hours(6),
            )
        )

        NagSuppressions.add_resource_suppressions(
            [self.dispatcher.role, self.run_failure.role, self.expiry.role, self.reconcile.role],
            [nag.table_key_use()],
            apply_to_children=True,
        )
        NagSuppressions.add_resource_suppressions(
            [self.dispatcher.role, self.reconcile.role],
            [nag.run_schedules("scheduler:DeleteSchedule")],
            apply_to_children=True,
        )
        NagSuppressions.add_resource_suppressions(
            self.expiry.role, [nag.run_executions("states:StopExecution")], apply_to_children=True
        )

    def serve_run_starts(self, starter: KsflowFunction, settings: EnvironmentSettings) -> None:
        """What a function that invokes definitions (or retries runs) needs: it makes each run's expiry
        schedule (and deletes it again when the run cannot be written or started) and starts the run's
        execution."""
        starter.add_environment("RUN_STATE_MACHINE_ARN", self.state_machine_arn)
        self.state_machine.grant_start_execution(starter.function)
        self.serve_expiry_schedules(starter, settings)

    def serve_expiry_schedules(self, fn: KsflowFunction, settings: EnvironmentSettings) -> None:
        """What a function that makes run expiry schedules needs (`executions.schedule_expiry`): create and
        delete them in the run schedule group, hand Scheduler its role for them, and know their target."""
        for key, value in {
            "SCHEDULER_GROUP_NAME": self.schedule_group_name,
            "SCHEDULER_ROLE_ARN": self.scheduler_role.role_arn,
            "SCHEDULER_DLQ_ARN": self.scheduler_dlq.queue_arn,
            "EXPIRY_FUNCTION_ARN": self.expiry_function_arn,
            "EXPIRY_GRACE_SECONDS": str(settings.expiry_grace_seconds),
        }.items():
            fn.add_environment(key, value)
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["scheduler:CreateSchedule", "scheduler:DeleteSchedule"], resources=[self.schedules_arn]
            )
        )
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        NagSuppressions.add_resource_suppressions(
            fn.role, [nag.run_schedules("scheduler:CreateSchedule/DeleteSchedule")], apply_to_children=True
        )

    def _run_task(
        self,
        name: str,
        description: str,
        *,
        settings: EnvironmentSettings,
        data: Data,
        code: lambda_.Code,
        failed_invocations: sqs.IQueue | None = None,
        function_name: str | None = None,
    ) -> KsflowFunction:
        """A small function that ends runs (`name` as in catalog.HANDLERS): it reads and writes run items only."""
        fn = KsflowFunction(
            self,
            f"{name}Function",
            settings=settings,
            code=code,
            handler=catalog.HANDLERS[name],
            description=description,
            environment={"TABLE_NAME": data.table.table_name},
            timeout=Duration.seconds(30),
            memory_size=256,
            failed_invocations=failed_invocations,
            function_name=function_name,
        )
        data.grant_items(fn, RUN_CHANGE_ACTIONS, partitions=RUN_PARTITIONS)
        return fn

def task_response_policy(scope: Construct, construct_id: str, fn: KsflowFunction, actions: list[str]) -> iam.Policy:
    """Task-token `actions` for a function, in a policy the function itself does not wait for.

    Task-token actions (states:SendTask*) support no resource type: Resource "*" is their only form.
    """
    policy = iam.Policy(
        scope,
        construct_id,
        roles=[fn.role],
        statements=[iam.PolicyStatement(actions=actions, resources=["*"])],
    )
    NagSuppressions.add_resource_suppressions(policy, [nag.task_token_actions()])
    return policy
