"""Every API error is JSON `{"error": "<code>", "detail": "<sentence a human can act on>", ...}` (DESIGN §7)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from changecontrol.errors import DomainError

_CODES = {
    400: "invalid_input",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"error": exc.code, "detail": exc.detail, **exc.extra}, status=exc.status)
    if isinstance(exc, Http404):
        return Response(
            {"error": "not_found", "detail": "Not found, or not visible to you with these credentials."},
            status=status.HTTP_404_NOT_FOUND,
        )
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, exceptions.APIException):
        body = {"error": _CODES.get(exc.status_code, "error"), "detail": _flatten(exc.detail)}
        if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
            body["detail"] = "The request is not valid: " + _flatten(exc.detail)
            body["fields"] = exc.detail
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Bearer realm="custody"'
            return Response(body, status=status.HTTP_401_UNAUTHORIZED, headers=headers)
        return Response(body, status=exc.status_code, headers=headers)
    return None
