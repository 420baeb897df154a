"""Request middleware every app relies on: the request context the audit trail reads, and refusing unstorable URLs."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import BadRequest

from common import request_context
from common.api_errors import error_response, is_api_path, too_large_detail
from common.api_parsers import refusal, unstorable_field, unstorable_reason


def client_address(request) -> str:
    # Behind a trusted proxy the first X-Forwarded-For hop is the client; otherwise the socket peer.
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


class RequestContextMiddleware:
    """Give every request an id (echoed as X-Request-ID) and make who/where available to audit.record."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
        token = request_context.activate(
            request_context.RequestContext(request_id=request.request_id, client_address=client_address(request))
        )
        try:
            response = self.get_response(request)
        finally:
            request_context.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class RefuseUnstorableInputMiddleware:
    """A NUL in the path or a query parameter is a 400 naming it, not a database error later (see api_parsers,
    which holds request bodies to the same rule)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = self._problem(request)
        if problem is None:
            return self.get_response(request)
        if is_api_path(request.path_info):
            return error_response(400, problem)
        raise BadRequest(problem)

    @staticmethod
    def _problem(request) -> str | None:
        reason = unstorable_reason(request.path_info)
        if reason:
            return refusal("the URL path", reason)
        return unstorable_field(request.GET, kind="query parameter")


class ApiBodyLimitsMiddleware:
    """What an API request body must be before anything reads it (docs/security.md, "Input limits and fuzzing"):

    - a length: a chunked body without Content-Length is 411, not read as empty (WSGI gives Django only as many
      bytes as Content-Length says, so the body would silently vanish and the request fail for the wrong reason);
    - for JSON and form bodies, at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes: 413 before reading them (multipart
      uploads are held to each endpoint's file limit by its parser and view)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_path(request.path_info):
            refused = self._refusal(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    @staticmethod
    def _refusal(request):
        length = request.META.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not length:
            return error_response(
                411,
                "the body was sent chunked (Transfer-Encoding: chunked) without a Content-Length; send its length: "
                "upload a file rather than a pipe (curl -F file=@report.xml, not -T - or --data-binary @-)",
            )
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        multipart = request.content_type == "multipart/form-data"
        if length.isdigit() and limit is not None and not multipart and int(length) > limit:
            return error_response(413, too_large_detail(int(length)))
        return None
