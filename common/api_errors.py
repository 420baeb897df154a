"""Every API error is JSON `{"error": "<code>", "detail": "<sentence a human can act on>", ...}` (DESIGN §7)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from common.errors import DomainError

_CODES = {
    400: "invalid_input",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}

NOT_FOUND_DETAIL = "Not found, or not visible to you with these credentials."
# Said whenever a request carries no credentials at all (or a scheme other than Bearer).
HOW_TO_AUTHENTICATE = "Authentication credentials were not provided: send Authorization: Bearer <token>, or sign in."


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


def error_response(status_code: int, detail: str) -> JsonResponse:
    """The §7 error shape for answers given outside DRF's views (middleware, Django's error handlers)."""
    return JsonResponse({"error": _CODES.get(status_code, "error"), "detail": detail}, status=status_code)


def not_found(request, exception=None):
    """handler404: a path no route matches is the §7 JSON 404 under /api/, and the HTML page elsewhere."""
    if is_api_path(request.path_info):
        return error_response(
            404, "No API path matches this URL: the paths are listed at /api/v1/docs/ (and /api/v1/schema/)."
        )
    return defaults.page_not_found(request, exception)


def too_large_detail(size: int | None = None, *, limit: int | None = None) -> str:
    """Why a body is refused as too large: by default, JSON and form fields over DATA_UPLOAD_MAX_MEMORY_SIZE."""
    said = f" ({size} bytes)" if size is not None else ""
    if limit is None or limit == settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return (
            f"the request body{said} is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes for JSON and "
            "form fields; send large documents as a file upload where the operation takes one "
            "(docs/security.md lists the limits)"
        )
    return (
        f"the request body{said} is over the limit of {limit} bytes for uploads; split it, or ask an administrator "
        "to raise CUSTODY_MAX_UPLOAD_MB (docs/security.md lists the limits)"
    )


def refused_while_reading(exception) -> tuple[int, str]:
    """The status and detail for a request Django refused while reading it (a SuspiciousOperation)."""
    if isinstance(exception, RequestDataTooBig):
        return 413, too_large_detail()
    if isinstance(exception, TooManyFieldsSent):
        return 413, (
            f"the request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields; send fewer, "
            "or send the data as a JSON body or a file"
        )
    if isinstance(exception, TooManyFilesSent):
        return 413, f"the request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files; send fewer"
    return 400, f"the request was refused as malformed ({exception or 'no reason given'}): fix it and send it again"


def bad_request(request, exception=None):
    """handler400: under /api/ a request Django refused while reading it is a §7 JSON error (413 when too large)."""
    if is_api_path(request.path_info):
        return error_response(*refused_while_reading(exception))
    return defaults.bad_request(request, exception)


@csrf_exempt  # nothing is done here, and a pipeline's POST to a wrong path must hear 404, not a CSRF refusal
def api_path_not_found(request, rest: str = ""):
    """The last route under /api/: a path no API route matches is the §7 JSON 404 in every mode. With DEBUG on,
    Django answers an unmatched URL with its HTML debug page and never calls handler404, so the API says it itself.

    Being a route, it also stops CommonMiddleware's APPEND_SLASH redirect (it only redirects paths nothing matches),
    so that redirect is kept here: `/api/v1/schema` still leads to `/api/v1/schema/`."""
    path = request.path_info
    if settings.APPEND_SLASH and not path.endswith("/") and request.method in ("GET", "HEAD"):
        match = _resolve_or_none(f"{path}/")
        if match is not None and match.func is not api_path_not_found:
            return HttpResponsePermanentRedirect(f"{request.path}/")
    return not_found(request)


def _resolve_or_none(path: str):
    try:
        return resolve(path)
    except Resolver404:
        return None


def server_error(request):
    """handler500: CI scripts parse API errors as JSON, even this one; pages keep the HTML page."""
    if is_api_path(request.path_info):
        return error_response(
            500,
            "Custody failed to answer this request. Try again; if it keeps failing, give an administrator the "
            "X-Request-ID header of this response.",
        )
    return defaults.server_error(request)


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
        return Response({"error": "not_found", "detail": NOT_FOUND_DETAIL}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, SuspiciousOperation):
        # Raised by Django while DRF reads the body (too large, too many fields): answered here so the response
        # keeps the request's renderer and headers, rather than by handler400.
        status_code, detail = refused_while_reading(exc)
        return Response({"error": _CODES[status_code], "detail": detail}, status=status_code)
    if isinstance(exc, exceptions.APIException):
        body = {"error": _CODES.get(exc.status_code, "error"), "detail": _flatten(exc.detail)}
        if isinstance(exc, exceptions.NotAuthenticated) and exc.detail == exceptions.NotAuthenticated.default_detail:
            body["detail"] = HOW_TO_AUTHENTICATE
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
