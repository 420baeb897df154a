"""The OpenAPI schema's own pieces: how CI authenticates, and the schema view (DESIGN §7).

Imported from ChangeControlConfig.ready(): drf-spectacular finds extensions only once their module is loaded.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView
from rest_framework.negotiation import DefaultContentNegotiation

SCHEMA_FORMATS = ("json", "yaml")


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Declares changecontrol.api_auth.BearerTokenAuthentication, so generated clients send the token."""

    target_class = "changecontrol.api_auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A Custody API token (`cst_…`) of a service account or a person, scoped to products "
            "and actions: `Authorization: Bearer <token>`.",
        }


class SchemaFormatNegotiation(DefaultContentNegotiation):
    """`?format=json` or `?format=yaml` picks the schema's encoding (otherwise the Accept header does).

    URL_FORMAT_OVERRIDE stays off project-wide because `?format=csv` belongs to the audit exports, so only the
    schema view reads the parameter."""

    def select_renderer(self, request, renderers, format_suffix=None):
        requested = request.query_params.get("format")
        if format_suffix is None and requested in SCHEMA_FORMATS:
            format_suffix = requested
        return super().select_renderer(request, renderers, format_suffix)


class SchemaApi(SpectacularAPIView):
    """The OpenAPI 3 schema: YAML by default; JSON with `?format=json` or `Accept: application/json`."""

    content_negotiation_class = SchemaFormatNegotiation
