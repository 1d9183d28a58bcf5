"""The `ksflow` command: local stack, operator commands, example runner."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_RUNNER_SECRET_ENV = "KSFLOW_WEBHOOK_SECRET"
NO_LOCAL_STACK = "no local stack is running; start one with make run"
# The form of the keys the API issues (`sk-` and 43 URL-safe characters); shorter ones would be guessable.
API_KEY_FORM = re.compile(r"^sk-[A-Za-z0-9_-]{32,197}$")


def stack_settings(stack_name: str) -> dict[str, str]:
    """The environment the admin commands need, from a deployed stack's outputs."""
    import boto3
    from botocore.exceptions import ClientError

    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        sys.exit(f"Stack {stack_name!r} not found: {error.response['Error']['Message']}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if "TableName" not in outputs:
        sys.exit(f"Stack {stack_name!r} has no TableName output; is it a ksflow stack?")
    found = {"TABLE_NAME": outputs["TableName"], "AWS_DEFAULT_REGION": outputs.get("Region", ""),
             "SCHEDULE_GROUP_NAME": outputs.get("DefinitionScheduleGroupName", "")}
    return {name: value for name, value in found.items() if value}


def _target_aws(args: argparse.Namespace) -> None:
    """Aim the admin commands at a deployed stack or table, or else at the running local stack."""
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    if args.stack_name:
        found = stack_settings(args.stack_name)
        if args.region:
            found.pop("AWS_DEFAULT_REGION", None)
        os.environ.update(found)
        return
    if args.table_name:
        os.environ["TABLE_NAME"] = args.table_name
        return
    from ksflow.local.stack import STACK_FILE

    if not Path(STACK_FILE).exists():
        sys.exit("No --stack-name or --table-name given and no local stack found (.local/stack.json); "
                 "start one with `make run`.")
    local = json.loads(Path(STACK_FILE).read_text())
    os.environ.update({"TABLE_NAME": local["table_name"], "AWS_DEFAULT_REGION": local["region"],
                       "AWS_ENDPOINT_URL": local["aws_endpoint_url"],
                       "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
    _require_local_stack(local["table_name"])


def _require_local_stack(table_name: str) -> None:
    """The stack file outlives a stack that was killed: ask its endpoint before trusting it."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    probe = boto3.client("dynamodb", config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}))
    try:
        probe.describe_table(TableName=table_name)
    except (BotoCoreError, ClientError):
        sys.exit(NO_LOCAL_STACK)


def api_key_argument(value: str) -> str:
    if not API_KEY_FORM.match(value):
        raise argparse.ArgumentTypeError(
            "expected sk- followed by 32 to 197 letters, digits, '-' or '_' (e.g. a key printed at an earlier start)")
    return value


def occurrence_argument(value: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC, as Scheduler's scheduled times are."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO 8601 time, e.g. 2025-03-30T09:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fire_schedule(definition_id: str, at: datetime | None) -> None:
    """Invoke the definition's schedule target with its input for one occurrence, as Scheduler does."""
    import boto3
    from botocore.exceptions import ClientError

    from ksflow import clock
    from ksflow.config import settings
    from ksflow.local import scheduler
    from ksflow.schedules.scheduler import schedule_name

    try:
        schedule = boto3.client("scheduler").get_schedule(Name=schedule_name(definition_id),
                                                          GroupName=settings().schedule_group_name)
    except ClientError as error:
        sys.exit(f"Definition {definition_id} has no schedule ({error.response['Error']['Message']})")
    # Scheduler fires on the minute; firing twice within one minute is one occurrence.
    occurrence = at or clock.now().replace(second=0, microsecond=0)
    try:
        result = scheduler.fire(boto3.client("lambda"), schedule["Target"], occurrence, wait=True)
    except scheduler.TargetFailed as error:
        sys.exit(f"The schedule's target failed: {error}")
    print(json.dumps({"definition_id": definition_id, "scheduled_time": scheduler.scheduled_time(occurrence),
                      **result}))


def _admin(args: argparse.Namespace) -> None:
    _target_aws(args)
    if args.admin_command == "fire-schedule":
        _fire_schedule(args.definition_id, args.at)
        return
    if args.admin_command == "index-runs":
        from ksflow import aws
        from ksflow.config import settings
        from ksflow.runindex import backfill

        print(json.dumps({"indexed_runs": backfill.backfill(aws.table(settings().table_name))}))
        return
    if args.admin_command == "index-ingestions":
        from ksflow import aws
        from ksflow.config import settings
        from ksflow.ingestion import listing

        print(json.dumps({"listed_ingestions": listing.backfill(aws.table(settings().table_name))}))
        return
    from ksflow.identity import store
    from ksflow.identity.models import Role

    if args.admin_command == "create-tenant":
        created = store.create_tenant(args.name, args.owner_email)
        print(created.model_dump_json())
    else:
        try:
            user = store.create_user(args.tenant_id, args.email, Role(args.role))
        except (LookupError, store.DuplicateEmail) as error:
            sys.exit(str(error))
        print(user.model_dump_json())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ksflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="serve the API on localhost with AWS emulated by moto")
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=8000)
    local.add_argument("--api-key", type=api_key_argument,
                       help="the demo OWNER's API key, so a key kept in the shell works across restarts")
    local.add_argument("--data-dir", type=Path,
                       help="keep tables, documents and keys in this directory across restarts (default: in memory)")
    local.add_argument("--expiry-grace-seconds", type=int, default=5,
                       help="how long after a run's deadline its expiry schedule fires")
    local.add_argument("--log-format", choices=("readable", "json"),
                       help="one line per request and per run or ingestion change, or Powertools' JSON lines "
                            "(default: readable on a terminal, json otherwise)")

    admin = commands.add_parser("admin", help="operator commands against the local stack or a deployed table")
    admin.add_argument("--region", help="AWS region of a deployed stack")
    target = admin.add_mutually_exclusive_group()
    target.add_argument("--stack-name", help="a deployed ksflow stack (its TableName output is used), e.g. ksflow-prod")
    target.add_argument("--table-name", help="DynamoDB table of a deployed stack")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    tenant = admin_commands.add_parser("create-tenant", help="create a tenant, its root folder and first OWNER")
    tenant.add_argument("--name", required=True)
    tenant.add_argument("--owner-email", default="owner@example.com")
    user = admin_commands.add_parser("create-user", help="add a user with an API key to a tenant")
    user.add_argument("--tenant-id", required=True)
    user.add_argument("--email", required=True)
    user.add_argument("--role", required=True, choices=["OWNER", "ADMIN", "USER"])
    fire = admin_commands.add_parser(
        "fire-schedule", help="fire one occurrence of a scheduled definition through its schedule's target, as "
                              "Scheduler does (the same occurrence twice makes one run)")
    admin_commands.add_parser("index-runs", help="index and count the runs written before the run indexes "
                                                 "existed (once, after upgrading; safe to repeat)")
    admin_commands.add_parser("index-ingestions", help="list and count the document ingestions written before "
                                                       "their listing entries (once, after upgrading; safe to repeat)")
    fire.add_argument("--definition-id", required=True)
    fire.add_argument("--at", type=occurrence_argument,
                      help="the occurrence, ISO 8601 (default: now, to the minute; UTC without an offset)")

    # Listed here for `ksflow --help`; `main` hands everything after `runs` to that command's own parser.
    commands.add_parser("runs", add_help=False,
                        help="list, read, stop and retry runs over the API, as tables (see ksflow runs --help)")

    runner = commands.add_parser("example-runner", help="run a self-hosted runner that verifies and calls back")
    runner.add_argument("--host", default="127.0.0.1")
    runner.add_argument("--port", type=int, default=8001)
    runner.add_argument("--secret", default=os.environ.get(DEFAULT_RUNNER_SECRET_ENV),
                        help=f"webhook secret (default: ${DEFAULT_RUNNER_SECRET_ENV})")
    runner.add_argument("--delay", type=float, default=2.0, help="seconds before calling back")
    runner.add_argument("--fail", action="store_true", help="report FAILED instead of COMPLETED")
    runner.add_argument("--heartbeat-every", type=float, default=0.0, metavar="SECONDS",
                        help="heartbeat every SECONDS while working, reporting progress; stop without calling back "
                             "when the API answers 409 (default: 0, no heartbeats)")
    runner.add_argument("--api-key", default=os.environ.get("KSFLOW_API_KEY"),
                        help="API key of a user with READ_ONLY on the sources and READ_WRITE on the outputs: the "
                             "runner then writes summary-<run id>.md into the first output folder "
                             "(default: $KSFLOW_API_KEY; without one it only waits --delay seconds)")
    runner.add_argument("--api-url", default=os.environ.get("KSFLOW_API_URL"),
                        help="the API to read and write with (default: $KSFLOW_API_URL, else the API that "
                             "sent the dispatch)")
    return parser


def main(argv: list[str] | None = None) -> None:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["runs"]:
        from ksflow.terminal import runs

        sys.exit(runs.main(given[1:]))
    args = _parser().parse_args(given)
    if args.command == "local":
        from ksflow.local import stack

        stack.serve(args.host, args.port, expiry_grace_seconds=args.expiry_grace_seconds, api_key=args.api_key,
                    data_dir=args.data_dir, log_format=args.log_format)
    elif args.command == "admin":
        _admin(args)
    else:
        if not args.secret:
            sys.exit(f"example-runner needs --secret or ${DEFAULT_RUNNER_SECRET_ENV}")
        if args.heartbeat_every < 0:
            sys.exit("--heartbeat-every must be 0 (no heartbeats) or a positive number of seconds")
        from ksflow.runner import example

        example.serve(args.host, args.port, args.secret, delay=args.delay, fail=args.fail, api_key=args.api_key,
                      api_url=args.api_url, heartbeat_every=args.heartbeat_every)


if __name__ == "__main__":
    main()
