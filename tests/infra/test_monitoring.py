"""Alarms, their topic, the dashboard, tracing: what lets an operator hear about trouble first."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aws_lambda_powertools import Tracer

from tests.infra.conftest import Synth
from tests.infra.test_infra_stack import HANDLERS, function, ksflow_functions


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synth.template.find_resources("AWS::CloudWatch::Alarm").items()}


def _by_metric(synth: Synth, namespace: str, metric: str) -> list[dict[str, Any]]:
    """Alarms on a metric, each with that metric's `Dimensions` (plain or metric-query form)."""
    found = []
    for alarm in _alarms(synth).values():
        if alarm.get("Namespace") == namespace and alarm.get("MetricName") == metric:
            found.append(alarm)
        for query in alarm.get("Metrics", []):
            stat = query.get("MetricStat", {}).get("Metric", {})
            if stat.get("Namespace") == namespace and stat.get("MetricName") == metric:
                found.append({**alarm, "Dimensions": stat.get("Dimensions", [])})
    return found


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_every_alarm_notifies_the_topic_and_is_named_after_the_stack(request: pytest.FixtureRequest,
                                                                    env_fixture: str) -> None:
    synth: Synth = request.getfixturevalue(env_fixture)
    topics = synth.template.find_resources("AWS::SNS::Topic")
    assert len(topics) == 1
    topic_id, topic = next(iter(topics.items()))
    assert "KmsMasterKeyId" in topic["Properties"]
    for name, alarm in _alarms(synth).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name
        assert alarm["AlarmName"].startswith(f"ksflow-{env_fixture}-"), name


def test_cloudwatch_may_publish_this_stacks_alarms_to_the_topic(dev: Synth) -> None:
    """enforce_ssl alone leaves a policy that only denies; CloudWatch needs an Allow."""
    topic_id, _ = next(iter(dev.template.find_resources("AWS::SNS::Topic").items()))
    (policy,) = [p for p in dev.template.find_resources("AWS::SNS::TopicPolicy").values()
                 if {"Ref": topic_id} in p["Properties"]["Topics"]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish" and allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source = json.dumps(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert ":cloudwatch:" in source and ":alarm:ksflow-dev-*" in source
    assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)


def test_email_subscription_is_a_deploy_time_parameter(dev: Synth) -> None:
    assert dev.template.to_json()["Parameters"]["AlarmEmail"]["Default"] == ""
    subscription = dev.template.find_resources("AWS::SNS::Subscription")
    (resource,) = subscription.values()
    assert resource["Properties"]["Protocol"] == "email"
    assert resource["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert "Condition" in resource


def test_api_errors_and_latency_alarm(dev: Synth) -> None:
    assert _by_metric(dev, "AWS/ApiGateway", "5xx")
    assert _by_metric(dev, "AWS/ApiGateway", "Latency")


def test_every_function_alarms_on_errors_and_throttles(dev: Synth) -> None:
    """A function error is a bug now: runner failures are outcomes of runs, counted by reason."""
    functions = ksflow_functions(dev.template)
    assert len(_by_metric(dev, "AWS/Lambda", "Errors")) == len(functions)
    assert len(_by_metric(dev, "AWS/Lambda", "Throttles")) == len(functions)


def test_failed_and_timed_out_executions_alarm_but_aborted_ones_do_not(dev: Synth) -> None:
    """Every cancel and expiry aborts an execution on purpose: no one needs to hear about it."""
    machines = dev.template.find_resources("AWS::StepFunctions::StateMachine")
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        assert len(_by_metric(dev, "AWS/States", metric)) == len(machines), metric
    assert not _by_metric(dev, "AWS/States", "ExecutionsAborted")


def test_every_dead_letter_queue_alarms_at_its_first_message(dev: Synth) -> None:
    queues = dev.template.find_resources("AWS::SQS::Queue")
    depth = _by_metric(dev, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    # expiry and definition schedules, the execution status rule, and the expiry, reconcile and schedule
    # fire functions' failures
    assert len(depth) == len(queues) == 6
    assert all(alarm["Threshold"] == 1 for alarm in depth)


@pytest.mark.parametrize("env_fixture", ["dev", "prod"])
def test_table_throttles_and_expired_runs_alarm(request: pytest.FixtureRequest, env_fixture: str) -> None:
    synth: Synth = request.getfixturevalue(env_fixture)
    throttles = [a for a in _alarms(synth).values() if "throttled" in a["AlarmDescription"].lower()
                 and "DynamoDB" in a["AlarmDescription"]]
    assert throttles
    # Each environment's own namespace and service: dev and prod in one account never mix.
    (expired,) = _by_metric(synth, f"ksflow/{env_fixture}", "RunsFailed")
    assert {"Name": "reason", "Value": "expiry"} in expired.get("Dimensions", []), expired
    assert {"Name": "service", "Value": f"ksflow-{env_fixture}"} in expired.get("Dimensions", []), expired
    _, api = function(synth.template, "api")
    variables = api["Properties"]["Environment"]["Variables"]
    assert (variables["POWERTOOLS_METRICS_NAMESPACE"], variables["POWERTOOLS_SERVICE_NAME"]) == (
        f"ksflow/{env_fixture}", f"ksflow-{env_fixture}")


def test_dashboard_shows_runs_and_ingestions(dev: Synth) -> None:
    (dashboard,) = dev.template.find_resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "ksflow-dev"
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in ("RunsInvoked", "RunsFailed", "RunDuration", "DispatchAttempts", "IngestionsCompleted",
                   "IngestionsFailed", "ChunksProcessed"):
        assert metric in body, metric


def test_tracing_everywhere(dev: Synth) -> None:
    for name, fn in ksflow_functions(dev.template).items():
        assert fn["Properties"]["TracingConfig"] == {"Mode": "Active"}, name
    for name, machine in dev.template.find_resources("AWS::StepFunctions::StateMachine").items():
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}, name


class _RecordingProvider:
    """A tracing provider that keeps what a handler's subsegment is given, as X-Ray would send it."""

    def __init__(self) -> None:
        self.recorded: list[Any] = []

    @contextmanager
    def in_subsegment(self, name: str) -> Iterator[_RecordingProvider]:
        yield self

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        self.recorded.append((key, value))

    def put_annotation(self, key: str, value: Any) -> None:
        self.recorded.append((key, value))

    def patch(self, modules: Any) -> None: ...

    def patch_all(self) -> None: ...


def _traced_response(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], response: Any) -> list[Any]:
    """What Powertools' tracer records for a handler returning `response`, under a function's environment."""
    monkeypatch.setattr(Tracer, "_config", copy.copy(Tracer._config))  # class-wide state, restored after
    monkeypatch.delenv("POWERTOOLS_TRACER_CAPTURE_RESPONSE", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    provider = _RecordingProvider()
    tracer = Tracer(service="ksflow", disabled=False, auto_patch=False, provider=provider)  # type: ignore[arg-type]
    tracer.capture_lambda_handler(lambda event, context: response)({}, None)
    return provider.recorded


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_no_response_reaches_a_trace(dev: Synth, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Responses carry new API keys (and run snapshots): with each function's environment, none is traced."""
    secret = {"api_key": "sk-never-in-a-trace"}
    _, fn = function(dev.template, name)
    environment = {k: v for k, v in fn["Properties"]["Environment"]["Variables"].items()
                   if k.startswith("POWERTOOLS_")}
    assert "sk-never-in-a-trace" not in repr(_traced_response(monkeypatch, environment, secret))
    # Without that setting the same handler's response would be in the trace.
    assert "sk-never-in-a-trace" in repr(_traced_response(monkeypatch, {}, secret))
