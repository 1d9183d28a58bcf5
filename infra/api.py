"""The public HTTP API: one catch-all route into the API function, which routes and authenticates."""

from __future__ import annotations

import json

import jsii
from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import nag
from infra.data import Data
from infra.function import KsflowFunction
from infra.log_groups import log_group
from infra.orchestration import TASK_TOKEN_ACTIONS, Orchestration, task_response_policy
from infra.settings import EnvironmentSettings
from ksflow import catalog

# HTTP API ($context) variables; never headers, so credentials and signatures stay out of the logs.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "path": "$context.path",
    "routeKey": "$context.routeKey",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "error": "$context.error.message",
}

# Why there is no API Gateway authorizer (nag APIG4 / APIG1-adjacent findings point here):
# authentication happens inside the API function. Most requests carry a Bearer API key that the handler
# looks up and caches in-process, but the run callback endpoint is called by runners that hold no key and
# prove themselves with a Standard Webhooks signature over the raw body, and /openapi.json is public. A
# Lambda authorizer could not verify the body signature and would add a second Lambda invocation to every
# request; one in-handler check covers all three cases.
NO_AUTHORIZER_REASON = (
    "Authentication is done in the API function: Bearer API keys (looked up, cached in-process), Standard "
    "Webhooks signatures on the run callback (runners hold no key; an authorizer cannot see the body), and "
    "a public /openapi.json. An authorizer would cost a second Lambda invocation per request."
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)
        self._format = apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")))

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


CALLBACK_PATH = "/v1/workflow-runs/{run_id}/callback"
# Under API Gateway's 30 s integration limit, so a slow request ends as the function's own timeout
# (logged, alarmed) rather than a gateway 503 while the function goes on working.
API_FUNCTION_TIMEOUT = Duration.seconds(29)

# Every item action the API's code calls (handlers, stores, transactions); never Scan.
API_TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
]


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        data: Data,
        orchestration: Orchestration,
        code: lambda_.Code,
    ) -> None:
        super().__init__(scope, construct_id)

        self.function = KsflowFunction(
            self,
            "ApiFunction",
            settings=settings,
            code=code,
            handler=catalog.HANDLERS["Api"],
            description="The ksflow HTTP API (routing, authentication and validation in-process)",
            environment={
                "TABLE_NAME": data.table.table_name,
                "KMS_KEY_ID": data.secrets_key.key_arn,
                "ALLOW_LOOPBACK_RUNNERS": "false",
                # Run listings use only the run indexes the table has.
                "RUN_INDEX_COUNT": str(len(data.run_indexes)),
                # The run state machine and expiry schedules: added by orchestration.serve_run_starts.
            },
            timeout=API_FUNCTION_TIMEOUT,
            memory_size=1024,
        )
        fn = self.function.function
        # Every partition: the API serves identity, knowledge, definitions, runs and their claims.
        data.grant_items(self.function, API_TABLE_ACTIONS, partitions=None, index=True)
        # Webhook secrets are encrypted (new definitions, rotation) and decrypted (callback signatures).
        data.secrets_key.grant(fn, "kms:Encrypt", "kms:Decrypt")
        # Invokes and retries (by hand) start executions; stops and cancels stop one that waits on no token.
        orchestration.serve_run_starts(self.function, settings)
        orchestration.state_machine.grant_execution(fn, "states:StopExecution")
        # Callbacks, stops and cancels end the wait of a run's execution (a failure when a retry follows);
        # runners' heartbeats restart its heartbeat timer.
        self.task_response = task_response_policy(self, "ApiTaskResponsePolicy", self.function, TASK_TOKEN_ACTIONS)

        integration = integrations.HttpLambdaIntegration(
            "ApiIntegration", fn, payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0)
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=settings.stack_name,
            description=f"ksflow workflow API ({settings.name})",
            default_integration=integration,
            # The stage is declared below so it can carry access logging and throttling.
            create_default_stage=False,
        )
        self.access_log_group = log_group(self, "AccessLogGroup", settings)
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            access_log_settings=_AccessLogSettings(self.access_log_group),
            # Values, not stack parameters: a deploy reuses a parameter's previous value, so a change to
            # cdk.json would never reach a deployed stack.
            throttle=apigwv2.ThrottleSettings(
                rate_limit=settings.throttle_rate_limit, burst_limit=settings.throttle_burst_limit
            ),
        )
        # The callback is the one unauthenticated route: its own, tighter limits bound what an
        # abuser can make the API do (each request costs one read before the signature check).
        self.callback_routes = self.http_api.add_routes(
            path=CALLBACK_PATH, methods=[apigwv2.HttpMethod.POST], integration=integration)
        stage_resource = self.stage.node.default_child
        assert isinstance(stage_resource, apigwv2.CfnStage)
        stage_resource.add_property_override("RouteSettings", {
            f"POST {CALLBACK_PATH}": {
                "ThrottlingRateLimit": settings.callback_throttle_rate_limit,
                "ThrottlingBurstLimit": settings.callback_throttle_burst_limit,
            },
        })
        for route in self.callback_routes:
            self.stage.node.add_dependency(route)
        self.url: str = self.stage.url

        NagSuppressions.add_resource_suppressions(
            self.http_api,
            [
                NagPackSuppression(id="AwsSolutions-APIG4", reason=NO_AUTHORIZER_REASON),
            ],
            apply_to_children=True,
        )
        NagSuppressions.add_resource_suppressions(
            self.function.role,
            [
                nag.table_key_use(),
                nag.run_executions("states:StopExecution"),
            ],
            apply_to_children=True,
        )
