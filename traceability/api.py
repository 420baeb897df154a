"""REST API of traceability (DESIGN §7): import, the trace matrix, items, links, CR links, baselines."""

from __future__ import annotations

import csv

from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from changecontrol.access import change_request_for, product_for, require_scope, token_of
from common.api import validated
from common.errors import ValidationFailed
from traceability import baselines, selectors, services
from traceability import matrix as trace
from traceability.formats import HAZARD_FIELDS
from traceability.models import TraceItem, TraceLink

WRITE_SCOPE = "requirements:write"


def _writable_product(request, key: str):
    product = product_for(request, key)
    require_scope(token_of(request), WRITE_SCOPE)
    return product


# ---------------------------------------------------------------- import


class ImportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(services.IMPORT_FORMATS))
    file = serializers.FileField()


class ImportOutput(serializers.Serializer):
    created = serializers.ListField(child=serializers.CharField())
    versioned = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(
        child=serializers.CharField(), help_text="Status or comment changed; no new version."
    )
    unchanged = serializers.ListField(child=serializers.CharField())
    refused = serializers.ListField(child=serializers.DictField())
    links_created = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    source_format = serializers.CharField()
    tool = serializers.CharField()


class RequirementsImportApi(APIView):
    """Import requirements, hazards and risk controls (CSV, JSON, ReqIF); re-importing the same file changes nothing."""

    single_parts = ("format", "file")

    @extend_schema(request={"multipart/form-data": ImportInput}, responses=ImportOutput)
    def post(self, request, product):
        product = _writable_product(request, product)
        data = validated(ImportInput, request.data)
        upload = data["file"]
        if upload.size > services.MAX_IMPORT_BYTES:
            from common.errors import TooLarge

            raise TooLarge(f"the file is {upload.size} bytes; the import limit is {services.MAX_IMPORT_BYTES} bytes")
        report = services.items_import(
            product=product, actor=request.user, format=data["format"], data=upload.read(), filename=upload.name or ""
        )
        return Response(ImportOutput(report.as_dict()).data)


# ---------------------------------------------------------------- trace matrix

MATRIX_FILTERS = [
    OpenApiParameter(
        "status", str, required=False, description="a gap name, `verified`, or `gaps` for every row with a gap"
    ),
    OpenApiParameter("severity", str, required=False, description="error, warning"),
    OpenApiParameter("q", str, required=False, description="text in the ID or title"),
]


def _matrix_response(request, matrix: dict, *, filename: str, as_csv: bool):
    params = request.query_params
    matrix = {
        **matrix,
        "rows": trace.filter_rows(
            matrix["rows"], status=params.get("status", ""), severity=params.get("severity", ""), q=params.get("q", "")
        ),
    }
    if as_csv:
        return csv_response(trace.as_csv_rows(matrix), filename=filename)
    return Response(matrix)


def csv_response(rows: list[list[str]], *, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    for row in rows:
        # Spreadsheet formula injection: a cell starting with = + - @ is prefixed so it is never evaluated.
        writer.writerow(["'" + cell if cell[:1] in ("=", "+", "-", "@") else cell for cell in row])
    return response


class ProductTraceMatrixApi(APIView):
    """The product's live matrix: the current requirements against the latest results of every artifact; `basis`
    says so (a release's own matrix is /releases/{product}/{version}/trace-matrix)."""

    as_csv = False

    @extend_schema(parameters=MATRIX_FILTERS, responses=dict)
    def get(self, request, product):
        product = product_for(request, product)
        matrix = trace.trace_matrix(product=product)
        return _matrix_response(request, matrix, filename=f"{product.key}-trace-matrix.csv", as_csv=self.as_csv)


class ReleaseTraceMatrixApi(APIView):
    """The trace matrix of one release: its scope (the items in force when it froze, at their versions then) against
    its own artifacts' evidence; `basis` says which."""

    as_csv = False

    @extend_schema(parameters=MATRIX_FILTERS, responses=dict)
    def get(self, request, product, version):
        product = product_for(request, product)
        matrix = selectors.release_matrix(product=product, version=version)
        if matrix is None:
            raise Http404
        return _matrix_response(
            request, matrix, filename=f"{product.key}-{version}-trace-matrix.csv", as_csv=self.as_csv
        )


# ---------------------------------------------------------------- items


class LinkOutput(serializers.ModelSerializer):
    source = serializers.CharField(source="source.identifier")
    target = serializers.CharField(source="target.identifier")
    cleared_by = serializers.CharField(source="cleared_by.printed_name", default=None)

    class Meta:
        model = TraceLink
        fields = [
            "id",
            "kind",
            "source",
            "target",
            "suspect",
            "suspect_since",
            "suspect_reason",
            "cleared_by",
            "cleared_at",
            "cleared_comment",
        ]


class ItemOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="identifier")
    url = serializers.SerializerMethodField()

    class Meta:
        model = TraceItem
        fields = [
            "id",
            "kind",
            "title",
            "text",
            "status",
            "attributes",
            *HAZARD_FIELDS,
            "version",
            "version_created_at",
            "created_at",
            "updated_at",
            "url",
        ]

    def get_url(self, item) -> str:
        return f"/products/{item.product.key}/items/{item.identifier}"


class ItemDetailOutput(ItemOutput):
    versions = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()
    change_requests = serializers.SerializerMethodField()

    class Meta(ItemOutput.Meta):
        fields = [*ItemOutput.Meta.fields, "versions", "links", "change_requests"]

    def get_versions(self, item) -> list:
        return [
            {
                "version": v.version,
                "title": v.title,
                "status": v.status,
                "fingerprint": v.fingerprint,
                "created_at": v.created_at,
                "created_by": v.created_by.printed_name,
                "reason": v.reason,
            }
            for v in selectors.versions_of(item)
        ]

    def get_links(self, item) -> dict:
        links = selectors.links_of(item)
        return {direction: LinkOutput(rows, many=True).data for direction, rows in links.items()}

    def get_change_requests(self, item) -> list:
        return [{"id": cr.human_id, "title": cr.title, "state": cr.state} for cr in selectors.change_requests_of(item)]


class ItemInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TraceItem.Kind.values, required=False)
    id = serializers.CharField(required=False, allow_blank=True, max_length=120)
    title = serializers.CharField(required=False, max_length=500)
    text = serializers.CharField(required=False, allow_blank=True)
    status = serializers.CharField(required=False, allow_blank=True, max_length=60)
    attributes = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    reason = serializers.CharField(required=False, allow_blank=True)
    hazardous_situation = serializers.CharField(required=False, allow_blank=True)
    harm = serializers.CharField(required=False, allow_blank=True)
    severity = serializers.CharField(required=False, allow_blank=True)
    probability = serializers.CharField(required=False, allow_blank=True)
    initial_risk = serializers.CharField(required=False, allow_blank=True)
    residual_risk = serializers.CharField(required=False, allow_blank=True)
    acceptability = serializers.CharField(required=False, allow_blank=True)


class ItemListCreateApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter(n, str, required=False) for n in ("kind", "q", "status")],
        responses=ItemOutput(many=True),
    )
    def get(self, request, product):
        product = product_for(request, product)
        params = request.query_params
        queryset = selectors.items(
            product=product, kind=params.get("kind", ""), q=params.get("q", ""), status=params.get("status", "")
        ).select_related("product")
        return Response(ItemOutput(queryset, many=True).data)

    @extend_schema(request=ItemInput, responses={201: ItemDetailOutput})
    def post(self, request, product):
        product = _writable_product(request, product)
        data = validated(ItemInput, request.data)
        if "kind" not in data or "title" not in data:
            raise ValidationFailed("an item needs a kind and a title")
        item = services.item_create(
            product=product,
            actor=request.user,
            kind=data.pop("kind"),
            identifier=data.pop("id", ""),
            title=data.pop("title"),
            reason=data.pop("reason", ""),
            **data,
        )
        return Response(ItemDetailOutput(item).data, status=status.HTTP_201_CREATED)


class ItemDetailApi(APIView):
    @extend_schema(responses=ItemDetailOutput)
    def get(self, request, product, identifier):
        product = product_for(request, product)
        return Response(ItemDetailOutput(selectors.item_for(product=product, identifier=identifier)).data)

    @extend_schema(request=ItemInput, responses=ItemDetailOutput)
    def patch(self, request, product, identifier):
        product = _writable_product(request, product)
        item = selectors.item_for(product=product, identifier=identifier)
        data = validated(ItemInput, request.data)
        if "kind" in data or "id" in data:
            raise ValidationFailed("an item's kind and ID never change; create a new item instead")
        item, versioned = services.item_edit(item=item, actor=request.user, reason=data.pop("reason", ""), **data)
        body = ItemDetailOutput(item).data
        body["versioned"] = versioned
        return Response(body)


class ItemImpactApi(APIView):
    """Everything downstream of an item and every open change request touching any of it."""

    @extend_schema(responses=dict)
    def get(self, request, product, identifier):
        product = product_for(request, product)
        result = selectors.impact(selectors.item_for(product=product, identifier=identifier))
        return Response(
            {
                "item": result["item"].identifier,
                "downstream": [
                    {"id": i.identifier, "kind": i.kind, "title": i.title, "version": i.version}
                    for i in result["downstream"]
                ],
                "links": LinkOutput(result["links"], many=True).data,
                "open_change_requests": [
                    {
                        "id": e["change_request"].human_id,
                        "title": e["change_request"].title,
                        "state": e["change_request"].state,
                        "items": e["items"],
                    }
                    for e in result["open_change_requests"]
                ],
            }
        )


class ItemExportApi(APIView):
    """All items with their links, as CSV or JSON that re-imports unchanged."""

    export_format = "json"

    @extend_schema(parameters=[OpenApiParameter("kind", str, required=False)], responses={(200, "text/csv"): str})
    def get(self, request, product):
        product = product_for(request, product)
        kinds = tuple(k for k in request.query_params.getlist("kind") if k in TraceItem.Kind.values)
        data, content_type = services.items_export(product=product, format=self.export_format, kinds=kinds)
        response = HttpResponse(data, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{product.key}-items.{self.export_format}"'
        return response


# ---------------------------------------------------------------- links


class LinkInput(serializers.Serializer):
    source = serializers.CharField()
    target = serializers.CharField()
    kind = serializers.CharField()


class LinkCreateApi(APIView):
    @extend_schema(request=LinkInput, responses={201: LinkOutput})
    def post(self, request, product):
        product = _writable_product(request, product)
        data = validated(LinkInput, request.data)
        source = selectors.item_for(product=product, identifier=data["source"])
        target = selectors.item_for(product=product, identifier=data["target"])
        link = services.trace_link_create(source=source, target=target, kind=data["kind"], actor=request.user)
        return Response(LinkOutput(link).data, status=status.HTTP_201_CREATED)


class CommentInput(serializers.Serializer):
    comment = serializers.CharField(allow_blank=True)


class LinkClearSuspectApi(APIView):
    """A person confirms a suspect link still holds; the comment is required and audited."""

    @extend_schema(request=CommentInput, responses=LinkOutput)
    def post(self, request, product, link_id):
        product = _writable_product(request, product)
        link = selectors.link_for(product=product, link_id=link_id)
        data = validated(CommentInput, request.data)
        link = services.trace_link_clear_suspect(link=link, actor=request.user, comment=data["comment"])
        return Response(LinkOutput(link).data)


class ChangeRequestItemsApi(APIView):
    """State which requirements, hazards and risk controls a CR affects; unknown IDs come back in `unknown`."""

    @extend_schema(
        request=inline_serializer(
            "ChangeRequestItemsInput", {"items": serializers.ListField(child=serializers.CharField())}
        ),
        responses=dict,
    )
    def post(self, request, change_request_id):
        change_request = change_request_for(request, change_request_id)
        require_scope(token_of(request), WRITE_SCOPE)
        identifiers = request.data.get("items")
        if not isinstance(identifiers, list) or not all(isinstance(i, str) for i in identifiers):
            raise ValidationFailed('items must be a list of IDs such as ["REQ-017", "HAZ-3"]')
        result = services.change_request_items_link(
            change_request=change_request, actor=request.user, identifiers=identifiers
        )
        return Response(result)


# ---------------------------------------------------------------- baselines


class BaselineListApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "BaselineSummary",
            {
                "release": serializers.CharField(),
                "taken_at": serializers.DateTimeField(),
                "taken_by": serializers.CharField(),
                "sha256": serializers.CharField(),
                "coverage": serializers.JSONField(allow_null=True),
                "counts": serializers.JSONField(allow_null=True),
            },
            many=True,
        )
    )
    def get(self, request, product):
        product = product_for(request, product)
        return Response(
            [
                {
                    "release": b.release_version,
                    "taken_at": b.taken_at,
                    "taken_by": b.taken_by.printed_name,
                    "sha256": b.sha256,
                    "coverage": b.content.get("coverage"),
                    "counts": b.content.get("counts"),
                }
                for b in selectors.baselines(product=product)
            ]
        )


class BaselineCompareApi(APIView):
    """What changed between two releases' baselines (`?from=7.2.3&to=7.2.4`)."""

    @extend_schema(
        parameters=[OpenApiParameter("from", str, required=True), OpenApiParameter("to", str, required=True)],
        responses=dict,
    )
    def get(self, request, product):
        product = product_for(request, product)
        older, newer = request.query_params.get("from", ""), request.query_params.get("to", "")
        if not older or not newer:
            raise ValidationFailed("name the two releases to compare: ?from=7.2.3&to=7.2.4")
        a = selectors.baseline_for(product=product, release_version=older)
        b = selectors.baseline_for(product=product, release_version=newer)
        return Response(baselines.trace_baseline_compare(a, b))
