#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth -c env=dev|prod` (per-environment settings live in cdk.json)."""

import aws_cdk as cdk

from infra.stack import add_stack

app = cdk.App()
add_stack(app)
app.synth()
