"""REST API of the affected-release search (DESIGN §7 wave-2 additions): JSON rows, or CSV of the same rows."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from changecontrol.access import token_of
from runtime import affected
from runtime.api import csv_response

SEARCH_PARAMETERS = [
    OpenApiParameter("purl", str, required=False, description="A package URL; with @version, exactly that version."),
    OpenApiParameter("name", str, required=False, description="A component name, case-blind."),
    OpenApiParameter("component", str, required=False, description="The same as name."),
    OpenApiParameter(
        "version", str, required=False, description=f"With purl or name, a version range: {affected.RANGE_SYNTAX}."
    ),
    OpenApiParameter(
        "vulnerability", str, required=False, description="A CVE, GHSA or OSV id, matched by id and alias."
    ),
]


class RunningOutput(serializers.Serializer):
    product = serializers.CharField()
    environment = serializers.CharField()
    via = serializers.ChoiceField(
        choices=["deployment", "snapshot"],
        help_text="deployment: the latest deployment of this artifact name there; snapshot: in the latest snapshot",
    )


class AffectedOutput(serializers.Serializer):
    product = serializers.CharField()
    release = serializers.CharField(help_text="Release version; empty for an artifact in no release.")
    artifact = serializers.CharField(help_text="Artifact digest, sha256:<hex>.")
    artifact_name = serializers.CharField()
    component = serializers.CharField()
    version = serializers.CharField()
    purl = serializers.CharField()
    matched_by = serializers.ChoiceField(choices=["purl", "name", "vulnerability"])
    vulnerability = serializers.CharField(help_text="The scanner's finding id, for a vulnerability search.")
    suppressed_by_vex = serializers.BooleanField(help_text="A signed VEX statement says it does not apply.")
    environments = RunningOutput(many=True, help_text="Where this artifact runs now.")


def _csv(rows: list[dict]) -> HttpResponse:
    return csv_response(affected.CSV_COLUMNS, (affected.csv_row(row) for row in rows), filename="affected.csv")


def _rows(request) -> list[dict]:
    query = affected.affected_query(request.query_params)
    return affected.affected_search(query, user=request.user, token=token_of(request))


class AffectedApi(APIView):
    """Is any released version affected? Every release (and unreleased artifact) of the products the caller may see
    whose SBOM lists the component, or whose scan found the vulnerability, with where it runs now."""

    @extend_schema(
        parameters=[*SEARCH_PARAMETERS, OpenApiParameter("format", str, enum=["json", "csv"])],
        responses=AffectedOutput(many=True),
    )
    def get(self, request):
        rows = _rows(request)
        if request.query_params.get("format") == "csv":
            return _csv(rows)
        return Response(AffectedOutput(rows, many=True).data)


class AffectedCsvApi(APIView):
    """The affected-release search as CSV (same parameters as the JSON search)."""

    @extend_schema(parameters=SEARCH_PARAMETERS, responses={(200, "text/csv"): str})
    def get(self, request):
        return _csv(_rows(request))
