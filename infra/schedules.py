"""Recurring schedules of workflow definitions: their group, the function they fire and its role.

The API keeps one EventBridge Scheduler schedule per scheduled definition in a group of its own
(functions/ksflow/schedules/scheduler.py). Each occurrence invokes the ScheduleFire function
asynchronously, which invokes the definition as its creator with the occurrence as idempotency key.
A delivery Scheduler gives up on lands in a dead-letter queue; an invocation the function fails on
after Lambda's retries lands in a queue of its own. Both alarm at their first message (monitoring).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from cdk_nag import NagSuppressions
from constructs import Construct

from infra import nag
from infra.data import DEFINITION_PARTITIONS, IDENTITY_PARTITIONS, RUN_PARTITIONS, TENANT_PARTITIONS, Data
from infra.documents import Documents
from infra.function import KsflowFunction
from infra.orchestration import Orchestration, dead_letter_queue, scheduler_target_role
from infra.settings import EnvironmentSettings
from ksflow import catalog

# Reads of the invoke path: the definition with the occurrence's claim, the creator's user item (its role
# today), the referenced path parts, the run a claim points at.
FIRE_READ_ACTIONS = ["dynamodb:GetItem", "dynamodb:BatchGetItem"]
FIRE_READ_PARTITIONS = (*TENANT_PARTITIONS, *DEFINITION_PARTITIONS, *IDENTITY_PARTITIONS, *RUN_PARTITIONS)
# Writes: the run, its `created` event, its claim and the definition's run count in one transaction (and
# their removal when the run's execution cannot start), and the definition's last schedule error. Never an
# identity item.
FIRE_WRITE_ACTIONS = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
FIRE_WRITE_PARTITIONS = (*TENANT_PARTITIONS, *DEFINITION_PARTITIONS, *RUN_PARTITIONS)
# A run removed because its execution could not start takes its history along: the run's event items are
# queried and deleted in batches (lifecycle/events.py `delete_all`), in the run's partition only.
FIRE_HISTORY_ACTIONS = ["dynamodb:Query", "dynamodb:BatchWriteItem"]


class Schedules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        data: Data,
        orchestration: Orchestration,
        documents: Documents,
        code: lambda_.Code,
    ) -> None:
        super().__init__(scope, construct_id)
        self.group = scheduler.CfnScheduleGroup(self, "DefinitionScheduleGroup")
        self.group_name = self.group.ref
        self.schedules_arn = Stack.of(self).format_arn(
            service="scheduler", resource="schedule", resource_name=f"{self.group_name}/*"
        )
        self.dead_letter_queue = dead_letter_queue(
            self, "DefinitionScheduleDeadLetterQueue", settings, "the definition schedules")
        self.fire_failures = dead_letter_queue(
            self, "ScheduleFireFailedInvocationsQueue", settings, "the schedule fire function's failed invocations")

        self.fire = KsflowFunction(
            self,
            "ScheduleFireFunction",
            settings=settings,
            code=code,
            handler=catalog.HANDLERS["ScheduleFire"],
            description="Definition schedule target: invokes the definition as its creator, once per occurrence",
            environment={"TABLE_NAME": data.table.table_name},
            timeout=Duration.seconds(30),
            memory_size=512,
            failed_invocations=self.fire_failures,
        )
        data.grant_items(self.fire, FIRE_READ_ACTIONS, partitions=FIRE_READ_PARTITIONS)
        data.grant_items(self.fire, FIRE_WRITE_ACTIONS, partitions=FIRE_WRITE_PARTITIONS)
        data.grant_items(self.fire, FIRE_HISTORY_ACTIONS, partitions=RUN_PARTITIONS)
        orchestration.serve_run_starts(self.fire, settings)
        documents.serve_run_snapshot_writes(self.fire)
        # A schedule whose definition is gone or no longer scheduled removes itself when it fires.
        self.fire.add_environment("SCHEDULE_GROUP_NAME", self.group_name)
        self.fire.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["scheduler:DeleteSchedule"], resources=[self.schedules_arn])
        )
        NagSuppressions.add_resource_suppressions(
            self.fire.role,
            [nag.table_key_use(), nag.definition_schedules("scheduler:DeleteSchedule")],
            apply_to_children=True,
        )

        # --- The role Scheduler assumes for this group's schedules: it may only invoke the fire function ---
        self.target_role = scheduler_target_role(
            self, "TargetRole", "Assumed by EventBridge Scheduler for ksflow definition schedules",
            group=self.group, target=self.fire, dead_letters=self.dead_letter_queue,
        )

    def serve_api(self, api: KsflowFunction) -> None:
        """The API creates, changes, reads and deletes the schedules with their definitions."""
        for key, value in {
            "SCHEDULE_GROUP_NAME": self.group_name,
            "SCHEDULE_FUNCTION_ARN": self.fire.function_arn,
            "SCHEDULE_ROLE_ARN": self.target_role.role_arn,
            "SCHEDULE_DLQ_ARN": self.dead_letter_queue.queue_arn,
        }.items():
            api.add_environment(key, value)
        api.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "scheduler:CreateSchedule",
                    "scheduler:UpdateSchedule",
                    "scheduler:DeleteSchedule",
                    "scheduler:GetSchedule",
                ],
                resources=[self.schedules_arn],
            )
        )
        api.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.target_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        NagSuppressions.add_resource_suppressions(
            api.role,
            [nag.definition_schedules("scheduler:CreateSchedule/UpdateSchedule/DeleteSchedule/GetSchedule")],
            apply_to_children=True,
        )
