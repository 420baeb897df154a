"""Who is acting and from where, for the audit trail: set per request by middleware, per task by tasks."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str = ""
    client_address: str = ""
    via_token: str = ""


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("custody_request", default=RequestContext())  # noqa: B039 - frozen dataclass, never mutated


def current() -> RequestContext:
    return _current.get()


def activate(context: RequestContext) -> contextvars.Token:
    return _current.set(context)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)
