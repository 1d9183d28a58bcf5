"""cdk-nag acknowledgments shared by several constructs; each says why the finding is acceptable here."""

from __future__ import annotations

from cdk_nag import NagPackSuppression, RegexAppliesTo

# Finding strings as cdk-nag renders them: tokens become <LogicalId.Attr> or raw intrinsic JSON.
_RUN_SCHEDULES = RegexAppliesTo(
    regex="/^Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:"
    "schedule\\/<OrchestrationRunScheduleGroup[0-9A-F]{8}>\\/\\*$/g"
)

_DEFINITION_SCHEDULES = RegexAppliesTo(
    regex="/^Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:"
    "schedule\\/<SchedulesDefinitionScheduleGroup[0-9A-F]{8}>\\/\\*$/g"
)


def _executions_of(state_machine_logical_id: str) -> RegexAppliesTo:
    return RegexAppliesTo(
        regex="/^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
        f'execution:.*"Ref":"{state_machine_logical_id}[0-9A-F]{{8}}".*:\\*$/g'
    )


_RUN_EXECUTIONS = _executions_of("OrchestrationRunStateMachine")
_INGESTION_EXECUTIONS = _executions_of("DocumentsIngestionStateMachine")
_DOCUMENT_OBJECTS = RegexAppliesTo(regex="/^Resource::<DocumentsBucket[0-9A-F]{8}\\.Arn>\\/tenants\\/\\*$/g")
_RUN_SNAPSHOTS = RegexAppliesTo(
    regex="/^Resource::<DocumentsBucket[0-9A-F]{8}\\.Arn>\\/tenants\\/\\*\\/run-snapshots\\/\\*$/g"
)


def table_key_use() -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            "kms:GenerateDataKey*/ReEncrypt* on the table's own key, and only through DynamoDB (kms:ViaService): "
            "what DynamoDB needs to write under a customer-managed key on the caller's behalf."
        ),
        applies_to=["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
    )


def run_schedules(actions: str) -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            f"{actions} on run expiry schedules, named after run ids and attempts unknown at deploy time; "
            "the ARN pins them to schedules inside the ksflow run schedule group."
        ),
        applies_to=[_RUN_SCHEDULES],
    )


def definition_schedules(actions: str) -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            f"{actions} on the schedules of workflow definitions, named after definition ids unknown at deploy "
            "time; the ARN pins them to schedules inside the ksflow definition schedule group."
        ),
        applies_to=[_DEFINITION_SCHEDULES],
    )


def run_executions(actions: str) -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            f"{actions} on run executions, which are named after run ids (and the attempt a retry by hand "
            "starts) unknown at deploy time; the ARN pins them to executions of the ksflow run state machine."
        ),
        applies_to=[_RUN_EXECUTIONS],
    )


def ingestion_executions(actions: str) -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            f"{actions} on ingestion executions, which are named after document versions and attempts unknown "
            "at deploy time; the ARN pins them to executions of the ksflow ingestion state machine."
        ),
        applies_to=[_INGESTION_EXECUTIONS],
    )


def document_objects(actions: str) -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            f"{actions} on uploaded files, whose keys hold tenant and document version ids unknown at deploy "
            "time; the ARN pins them to the tenants/ prefix of the documents bucket."
        ),
        applies_to=[_DOCUMENT_OBJECTS],
    )


def run_snapshots(actions: str) -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            f"{actions} on run snapshots too large for their run item, whose keys hold tenant and run ids "
            "unknown at deploy time; the ARN pins them to tenants/*/run-snapshots/ in the documents bucket."
        ),
        applies_to=[_RUN_SNAPSHOTS],
    )


def state_machine_delivery() -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            "CloudWatch Logs delivery actions (logs:*LogDelivery, DescribeResourcePolicies, "
            "DescribeLogGroups) and X-Ray actions support no resource-level permissions; CDK "
            "adds them for execution logging and tracing."
        ),
        applies_to=["Resource::*"],
    )


def task_token_actions() -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            "states:SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat have no resource type in the Service "
            "Authorization Reference (a task token is not an ARN), so Resource '*' is the only documented form; the "
            "statement allows only the task-token answers the function gives, and a caller also needs the "
            "unguessable token of a run's waitForTaskToken task."
        ),
        applies_to=["Resource::*"],
    )


def xray_tracing() -> NagPackSuppression:
    return NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason=(
            "Active X-Ray tracing adds xray:PutTraceSegments/PutTelemetryRecords, which support no "
            "resource-level permissions."
        ),
        applies_to=["Resource::*"],
    )
