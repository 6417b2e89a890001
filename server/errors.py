"""Exceptions → JSON-RPC errors a client can show as they are.

| error                        | code   | name             |
|------------------------------|--------|------------------|
| bad params / `InvalidQuery`  | -32602 | InvalidParams    |
| `Cancelled`, `$/cancelRequest` | -32800 | RequestCancelled |
| any other `ForgeError`       | -32803 | RequestFailed    |
| a bug                        | -32603 | InternalError    |

`data.kind` names the error class (`IndexNotReady`, `ModelNotFound`, ...) and
`data.retryable` says whether trying again later may succeed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcRequestCancelled,
)

from indexer.core.errors import Cancelled, ForgeError, IndexLocked, IndexNotReady, InvalidQuery
from server.params import ParamsError

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

REQUEST_FAILED = -32803
#: Errors a client may simply send again later (marked `retryable` in the error data).
CLIENT_MAY_RETRY = (IndexNotReady, IndexLocked)


def describe_validation(method: str, exc: ValidationError) -> str:
    """One line per problem, naming the parameter as the client spells it."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown parameter"
        where = f"'{loc}'" if loc else "params"
        got = (
            ""
            if err.get("type") in ("missing", "extra_forbidden")
            else f" (got {err.get('input')!r})"
        )
        parts.append(f"{where}: {msg}{got}")
    return f"Invalid params for {method}: " + "; ".join(parts)


def to_rpc_error(exc: BaseException, method: str) -> JsonRpcException:
    """The JSON-RPC error for `exc` raised while serving `method`."""
    if isinstance(exc, JsonRpcException):
        return exc
    if isinstance(exc, ValidationError):
        return JsonRpcInvalidParams(
            describe_validation(method, exc), data={"kind": "InvalidParams"}
        )
    if isinstance(exc, ParamsError):
        return JsonRpcInvalidParams(
            f"Invalid params for {method}: {exc}", data={"kind": "InvalidParams"}
        )
    if isinstance(exc, Cancelled):
        return JsonRpcRequestCancelled(f"{method} was cancelled", data={"kind": "Cancelled"})
    if isinstance(exc, InvalidQuery):
        return JsonRpcInvalidParams(str(exc), data={"kind": "InvalidQuery"})
    if isinstance(exc, ForgeError):
        data: dict[str, Any] = {"kind": type(exc).__name__, "retryable": isinstance(exc, CLIENT_MAY_RETRY)}
        return JsonRpcException(str(exc), code=REQUEST_FAILED, data=data)
    log.error("%s failed", method, exc_info=exc)
    return JsonRpcInternalError(
        f"{method} failed: {type(exc).__name__}: {exc} (see the server log)",
        data={"kind": "InternalError"},
    )


def rpc_errors(method: str) -> Callable[[F], F]:
    """Decorate an async handler so its exceptions reach the client as `to_rpc_error` says."""

    def decorator(fn: F) -> F:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise to_rpc_error(exc, method) from exc

        return wrapper  # type: ignore[return-value]

    return decorator
