"""Alarms, their topic, the dashboard, tracing: what lets an operator hear about trouble first."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth


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


def test_every_alarm_notifies_the_topic(dev: Synth) -> None:
    topics = dev.template.find_resources("AWS::SNS::Topic")
    assert len(topics) == 1
    topic_id, topic = next(iter(topics.items()))
    assert "KmsMasterKeyId" in topic["Properties"]
    for name, alarm in _alarms(dev).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name


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
    functions = dev.template.find_resources("AWS::Lambda::Function")
    assert len(_by_metric(dev, "AWS/Lambda", "Errors")) == len(functions)
    assert len(_by_metric(dev, "AWS/Lambda", "Throttles")) == len(functions)


def test_abnormal_executions_alarm(dev: Synth) -> None:
    machines = dev.template.find_resources("AWS::StepFunctions::StateMachine")
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
        assert len(_by_metric(dev, "AWS/States", metric)) == len(machines), metric


def test_every_dead_letter_queue_alarms_at_its_first_message(dev: Synth) -> None:
    queues = dev.template.find_resources("AWS::SQS::Queue")
    depth = _by_metric(dev, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert len(depth) == len(queues) >= 2
    assert all(alarm["Threshold"] == 1 for alarm in depth)


def test_table_throttles_and_expired_runs_alarm(dev: Synth) -> None:
    throttles = [a for a in _alarms(dev).values() if "throttled" in a["AlarmDescription"].lower()
                 and "DynamoDB" in a["AlarmDescription"]]
    assert throttles
    (expired,) = _by_metric(dev, "ksflow", "RunsFailed")
    assert {"Name": "reason", "Value": "expiry"} in expired.get("Dimensions", []), expired


def test_dashboard_shows_runs_and_ingestions(dev: Synth) -> None:
    (dashboard,) = dev.template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in ("RunsInvoked", "RunsFailed", "RunDuration", "DispatchAttempts", "IngestionsCompleted",
                   "IngestionsFailed", "ChunksProcessed"):
        assert metric in body, metric


def test_tracing_everywhere(dev: Synth) -> None:
    for name, fn in dev.template.find_resources("AWS::Lambda::Function").items():
        assert fn["Properties"]["TracingConfig"] == {"Mode": "Active"}, name
    for name, machine in dev.template.find_resources("AWS::StepFunctions::StateMachine").items():
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}, name
