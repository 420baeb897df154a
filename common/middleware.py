"""Request middleware every app relies on: the request context the audit trail reads, and refusing unstorable URLs."""

from __future__ import annotations

import tempfile
import uuid

from django.conf import settings
from django.core.exceptions import BadRequest
from django.core.handlers.wsgi import LimitedStream

from common import request_context
from common.api import MULTIPART_OVERHEAD
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
    """What an API request body must be before a view reads it (docs/security.md, "Input limits and fuzzing"):

    - a known length. WSGI hands Django only as many bytes as Content-Length says, so a chunked body without one
      would be read as empty and the request fail for the wrong reason ("unknown evidence type ''"). Servers that
      decode chunked bodies themselves and say so (`wsgi.input_terminated`: gunicorn, mod_wsgi) have the body read
      here, up to the limit, and given its length; under any other server it is a 411 asking for a Content-Length;
    - for JSON and form bodies, at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes: 413 before reading them. Multipart uploads
      may reach CUSTODY_MAX_UPLOAD_BYTES here; each endpoint's parser and view hold them to its own limit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_path(request.path_info):
            refused = self._refusal(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _refusal(self, request):
        length = request.META.get("CONTENT_LENGTH") or ""
        multipart = request.content_type == "multipart/form-data"
        limit = (
            settings.CUSTODY_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD
            if multipart
            else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        )
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not length:
            if not request.META.get("wsgi.input_terminated"):
                return error_response(
                    411,
                    "the body was sent chunked (Transfer-Encoding: chunked) without a Content-Length, which this "
                    "server cannot read; send its length: upload a file rather than a pipe (curl -F file=@report.xml, "
                    "not -T - or --data-binary @-)",
                )
            length = self._read_chunked(request, limit)
            if length is None:
                return error_response(413, too_large_detail(limit=limit))
        if length.isdigit() and int(length) > limit and not multipart:
            return error_response(413, too_large_detail(int(length)))
        return None

    @staticmethod
    def _read_chunked(request, limit: int) -> str | None:
        """Read the decoded body (at most limit bytes, spooled to disk past the in-memory size) and give the request
        its length, as if the client had sent Content-Length; None when it is over the limit."""
        body = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115
        source, size = request.META["wsgi.input"], 0
        while chunk := source.read(min(64 * 1024, limit + 1 - size)):
            body.write(chunk)
            size += len(chunk)
            if size > limit:
                body.close()
                return None
        body.seek(0)
        request.META["CONTENT_LENGTH"] = str(size)
        request._stream = LimitedStream(body, size)  # WSGIRequest reads its body from _stream
        return str(size)
