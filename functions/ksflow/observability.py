"""Powertools logger, tracer and metrics shared by every function."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="ksflow")
tracer = Tracer(service="ksflow")
metrics = Metrics(namespace="ksflow", service="ksflow")
