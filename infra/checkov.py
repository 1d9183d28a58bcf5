"""checkov findings skipped on purpose, each in the resource's own metadata with the reason next to it.

`make synth` runs checkov over the synthesized template; it reads `Metadata.checkov.skip` of each resource.
"""

from __future__ import annotations

from aws_cdk import CfnResource
from constructs import IConstruct

METADATA_KEY = "checkov"

NO_VPC = (
    "The functions call only AWS APIs and tenants' runners on the public internet and reach no private "
    "resource; a VPC would add NAT gateways and interface endpoints without protecting anything."
)
PLAIN_ENVIRONMENT = (
    "The environment holds only resource names, ARNs, limits and flags, never a secret (webhook secrets are "
    "KMS-encrypted in the table, API keys are stored hashed); Lambda encrypts it at rest with its own key."
)
SYNCHRONOUS_INVOCATION = (
    "Invoked synchronously only (API Gateway or a Step Functions task): a dead-letter queue receives failed "
    "asynchronous invocations, and here the caller gets the error and handles it (a Catch or a 5xx)."
)
ON_FAILURE_DESTINATION = (
    "Asynchronous invocations that still fail after their retries go to the function's on-failure "
    "destination (an SQS queue with an alarm), which keeps the error with the event; a DLQ would duplicate it."
)
UNRESERVED_CONCURRENCY = (
    "Not reserved: a reservation takes concurrency from every other function in the account, and a deploy "
    "fails if it would leave fewer than 100 unreserved executions. Only the dispatcher, whose duration "
    "depends on tenants' runners, is capped, per environment in cdk.json."
)
QUEUE_WITHOUT_CUSTOMER_KEY = (
    "Messages hold only run ids, AWS event envelopes and error text, no customer data or secrets; SQS-managed "
    "encryption protects them at rest, and a customer key would need grants for every delivering service."
)


def skip(construct: IConstruct, check_id: str, reason: str) -> None:
    """Record that `check_id` does not apply to the construct's CloudFormation resource, and why."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    assert isinstance(resource, CfnResource), f"{construct.node.path} has no CloudFormation resource"
    metadata = resource.get_metadata(METADATA_KEY) or {"skip": []}
    metadata["skip"] = [*metadata["skip"], {"id": check_id, "comment": reason}]
    resource.add_metadata(METADATA_KEY, metadata)
