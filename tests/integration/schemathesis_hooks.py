"""Schemathesis hooks for tests/integration/test_schemathesis.py (loaded by SCHEMATHESIS_HOOKS).

The fuzzer runs as admin with one token; revoking that very token would turn every later
request into a 401 and test nothing more, so a call that would revoke it revokes no token
instead (an id far past any that exists: a 404, which the contract documents).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

OWN_TOKEN_ID = int(os.environ.get("OSS_FUZZ_TOKEN_ID", "0"))
NO_SUCH_TOKEN = 2**62


@schemathesis.hook
def before_call(ctx: schemathesis.HookContext, case: schemathesis.Case, kwargs: Any) -> None:
    if case.method.upper() != "DELETE" or case.path != "/api/v1/tokens/{token_id}":
        return
    params = case.path_parameters or {}
    if str(params.get("token_id")) == str(OWN_TOKEN_ID):
        params["token_id"] = NO_SUCH_TOKEN
