"""The OpenAPI schema documents every answer an operation can give, its errors included (DESIGN §7).

Every API error has one shape (common.api_errors); this schema class adds it to each operation for the statuses
that operation can answer, so generated clients and the schema fuzzer (docs/security.md) know them:
400 for an operation that reads a body or query parameters, 401 and 403 for one that needs credentials, 404 for one
that names a resource (a path or query parameter), 409 (a wrong state, DESIGN §7), 411, 413 and 415 for one that
writes. An operation that answers an error with more to say (409 `content_changed` naming both hashes) declares it
itself with `extend_schema(responses=...)`, and that declaration is kept.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers


class ErrorOutput(serializers.Serializer):
    """The §7 error shape; some errors add fields of their own (`fields` for each invalid field, `field`, …)."""

    error = serializers.CharField(help_text="A stable code: invalid_input, not_found, conflict, too_large, …")
    detail = serializers.CharField(help_text="A sentence a person can act on.")
    fields = serializers.DictField(required=False, help_text="For invalid_input: what is wrong with each field.")


ERROR_DESCRIPTIONS = {
    400: "The request is not valid: `detail` says what to fix.",
    401: "No valid credentials: send `Authorization: Bearer <token>`, or sign in.",
    403: "The credentials may see this but not do it (a missing scope or role, a separation-of-duties rule).",
    404: "Not found, or not visible to these credentials.",
    409: "The record is not in a state that allows this, or conflicts with one already recorded: `detail` says which.",
    411: "The body was sent chunked without a Content-Length to a server that cannot decode it: send its length.",
    413: "The body is larger than Custody accepts (docs/security.md lists the limits).",
    415: "The body's Content-Type is not one this operation reads.",
}


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_statuses():
            responses.setdefault(
                str(code),
                self._get_response_for_code(
                    OpenApiResponse(ErrorOutput, description=ERROR_DESCRIPTIONS[code]), str(code), direction=direction
                ),
            )
        return responses

    def _error_statuses(self) -> list[int]:
        has_body = self.method in ("POST", "PUT", "PATCH")
        parameters = self._get_parameters()
        names_resource = "{" in self.path or any(p["in"] == "query" for p in parameters)
        statuses = []
        if has_body or any(p["in"] == "query" for p in parameters):
            statuses.append(400)
        if not all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()):
            statuses += [401, 403]
        if names_resource:
            statuses.append(404)
        if has_body:
            statuses += [409, 411, 413, 415]
        return statuses
