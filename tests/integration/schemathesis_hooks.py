"""Schemathesis hooks for tests/integration/test_schemathesis.py (loaded by SCHEMATHESIS_HOOKS).

The fuzzer runs as admin with one token; revoking that very token would turn every later
request into a 401 and test nothing more. So a call that would revoke it revokes no token
instead (an id far past any that exists: a 404, which the contract documents), and a token
created with `replace` never takes the fuzzer's token's name.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

OWN_TOKEN_ID = os.environ.get("OSS_FUZZ_TOKEN_ID", "0")
OWN_TOKEN_NAME = os.environ.get("OSS_FUZZ_TOKEN_NAME", "t-admin")
NO_SUCH_TOKEN = 2**62


@schemathesis.hook
def before_call(ctx: schemathesis.HookContext, case: schemathesis.Case, kwargs: Any) -> None:
    method = case.method.upper()
    if method == "DELETE" and case.path == "/api/v1/tokens/{token_id}":
        params = case.path_parameters or {}
        if str(params.get("token_id")) == OWN_TOKEN_ID:
            params["token_id"] = NO_SUCH_TOKEN
    body = case.body
    creates = method == "POST" and case.path == "/api/v1/tokens"
    if creates and isinstance(body, dict) and body.get("name") == OWN_TOKEN_NAME:
        body["name"] = OWN_TOKEN_NAME + "-not"
