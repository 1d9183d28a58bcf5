"""Workflow definitions: validation against the knowledge base, storage and visibility.

Item: `TENANT#{tenant_id}` / `WORKFLOWDEF#{definition_id}` (`WorkflowDefinition`).
"""

from __future__ import annotations

import uuid
from typing import Any

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.errors import Invalid, NotFound
from ksflow.identity.models import Principal
from ksflow.knowledge import store as knowledge
from ksflow.knowledge.models import PartType
from ksflow.workflows import runner_url, secrets
from ksflow.workflows.models import CreateWorkflowDefinitionRequest, WorkflowDefinition, WorkflowDefinitionResponse


def _key(tenant_id: str, definition_id: str) -> dict[str, str]:
    return {"pk": f"TENANT#{tenant_id}", "sk": f"WORKFLOWDEF#{definition_id}"}


def _check_references(principal: Principal, request: CreateWorkflowDefinitionRequest) -> None:
    """Every referenced path part exists, is readable, and has the kind its role needs."""
    fields: list[tuple[str, list[Any], PartType | None, bool]] = [
        ("source_path_part_ids", request.source_path_part_ids, None, False),
        ("instruction_path_part_ids", request.instruction_path_part_ids, PartType.DOCUMENT, False),
        ("output_path_part_ids", request.output_path_part_ids, PartType.FOLDER, True),
    ]
    if request.template_path_part_id is not None:
        fields.append(("template_path_part_id", [request.template_path_part_id], PartType.DOCUMENT, False))
    ids = [str(pp) for _, values, _, _ in fields for pp in values]
    parts = knowledge.get_path_parts(principal.tenant_id, ids)
    access = knowledge.Access(principal)
    for field, values, kind, needs_write in fields:
        for index, value in enumerate(values):
            loc: list[str | int] = ["body", field] if field == "template_path_part_id" else ["body", field, index]
            part = parts.get(str(value))
            if part is None or not access.can_read(part):
                raise Invalid(loc, f"Path part {value} does not exist or is not readable", "path_part.not_found")
            if kind is not None and part.part_type != kind:
                raise Invalid(loc, f"Path part {value} must be a {kind.value}", "path_part.wrong_type")
            if needs_write and not access.can_write(part):
                raise Invalid(loc, f"Path part {value} is not writable", "path_part.not_writable")


def _check_runner(request: CreateWorkflowDefinitionRequest) -> None:
    if request.runner_config is None:
        return
    try:
        runner_url.check(request.runner_config.url, allow_loopback=settings().allow_loopback_runners,
                         require_resolution=False)
    except runner_url.UnsafeRunnerUrl as error:
        raise Invalid(["body", "runner_config", "url"], str(error), "url.unsafe") from error


def create(principal: Principal, request: CreateWorkflowDefinitionRequest) -> WorkflowDefinition:
    _check_runner(request)
    _check_references(principal, request)
    now = clock.now()
    definition_id = str(uuid.uuid4())
    config = request.runner_config
    definition = WorkflowDefinition(
        tenant_id=principal.tenant_id, id=definition_id, name=request.name, description=request.description,
        runner_type=request.runner_type, runner_url=config.url if config else None,
        secret_ciphertext=(
            secrets.encrypt(config.webhook_secret.get_secret_value(), principal.tenant_id, definition_id)
            if config else None
        ),
        max_run_duration_seconds=request.max_run_duration_seconds,
        source_path_part_ids=[str(x) for x in request.source_path_part_ids],
        instruction_path_part_ids=[str(x) for x in request.instruction_path_part_ids],
        output_path_part_ids=[str(x) for x in request.output_path_part_ids],
        template_path_part_id=str(request.template_path_part_id) if request.template_path_part_id else None,
        is_active=request.is_active, created_by=principal.user_id, created_at=now, updated_at=now,
    )
    aws.table(settings().table_name).put_item(
        Item={**_key(principal.tenant_id, definition_id), **definition.model_dump(mode="json")},
        ConditionExpression="attribute_not_exists(pk)",
    )
    return definition


def get_visible(principal: Principal, definition_id: str) -> WorkflowDefinition:
    """The definition if the caller may see it (its creator, or an OWNER/ADMIN); else 404."""
    item = aws.table(settings().table_name).get_item(Key=_key(principal.tenant_id, definition_id)).get("Item")
    if item is None:
        raise NotFound("Workflow definition not found")
    definition = WorkflowDefinition.model_validate(item)
    if not (principal.is_admin or definition.created_by == principal.user_id):
        raise NotFound("Workflow definition not found")
    return definition


def response(definition: WorkflowDefinition) -> WorkflowDefinitionResponse:
    return WorkflowDefinitionResponse.model_validate({
        **definition.model_dump(exclude={"runner_url", "secret_ciphertext"}),
        "runner_config": {"url": definition.runner_url} if definition.runner_url else None,
    })
