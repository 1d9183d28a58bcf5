"""Bearer API key authentication, as a dependency of every authenticated route.

Authentication happens in the handler rather than in an API Gateway authorizer: the
callback endpoint must accept runners that sign instead of presenting a key, the OpenAPI
document is public, and an in-process cache keeps a request to one Lambda invocation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from aws_lambda_powertools.event_handler import Request
from aws_lambda_powertools.event_handler.depends import Depends

from ksflow.errors import Unauthorized
from ksflow.identity import store
from ksflow.identity.models import Principal


def bearer_token(headers: Mapping[str, str]) -> str | None:
    header = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_principal(request: Request) -> Principal:
    token = bearer_token(request.headers)
    if token is None:
        raise Unauthorized("Not authenticated")
    principal = store.authenticate(token)
    if principal is None:
        raise Unauthorized("Invalid or revoked API key")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
