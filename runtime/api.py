"""REST API of the runtime record (DESIGN §7): deployments, environment snapshots, the deployment log, reviews."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from changecontrol import esign
from changecontrol.access import (
    get_visible_or_404,
    parse_human_id,
    product_for,
    require_person,
    require_scope,
    token_of,
    visible_product_ids,
)
from changecontrol.api import SIGNING_ERRORS, SeenContentField, SignatureOutput
from changecontrol.models import Environment, Product
from common.api import validated
from common.errors import InvalidState, NotFound, ValidationFailed
from common.links import HttpUrlField
from evidence.models import Artifact
from runtime import deployments, drift, selectors
from runtime.models import BreakGlassReview, Deployment, DriftFinding

MAX_PAGE = 1000
LOG_PARAMETERS = [
    OpenApiParameter(name, str, required=False)
    for name in ("product", "environment", "since", "until", "kind", "authorised", "limit")
]


def environment_of(product: Product, key: str) -> Environment:
    environment = Environment.objects.filter(product=product, key=(key or "").strip()).first()
    if environment is None:
        known = ", ".join(product.environments.values_list("key", flat=True))
        raise NotFound(f"{product.key} has no environment {key!r} (environments: {known})")
    return environment


def deployment_target(request, digest: str, product_key: str = "") -> tuple[Artifact | None, Product]:
    """The artifact a reported deployment shipped and its product; for a digest no build registered, the product the
    caller names or the only one it may see (DESIGN §4.6: that deployment is a fact to record, not a 404).

    Only the products the caller may see are searched: a digest another product registered answers exactly as a
    digest nobody registered (docs/security.md, "Existence across products")."""
    digest = deployments.deployed_digest(digest)
    visible = visible_product_ids(request.user, token_of(request))
    if product_key:
        product = product_for(request, product_key)
        return Artifact.objects.select_related("product").filter(digest=digest, product=product).first(), product
    found = list(Artifact.objects.select_related("product").filter(digest=digest, product_id__in=visible)[:2])
    if len(found) == 1:
        return found[0], found[0].product
    products = list(Product.objects.filter(id__in=visible).order_by("key"))
    if not products:
        raise Http404
    if len(products) > 1:
        why = "is registered in several of your products" if found else "was never registered by a build"
        raise ValidationFailed(
            f"{digest} {why}, so it does not say which product it was deployed in: "
            f"name it in `product` (one of {', '.join(p.key for p in products[:20])})",
            errors={"product": ["This field is required for a digest no build registered."]},
        )
    return None, products[0]


def deployment_for(request, human_id: str) -> Deployment:
    return get_visible_or_404(
        Deployment.objects.select_related(
            "product", "environment", "artifact", "artifact__build", "release", "deployer", "decision"
        ),
        user=request.user,
        token=token_of(request),
        pk=parse_human_id(human_id, Deployment.HUMAN_PREFIX),
    )


class ReviewOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="human_id")
    overdue = serializers.SerializerMethodField()
    reviewer = serializers.CharField(source="reviewer.username", allow_null=True, default=None)
    signature = SignatureOutput(allow_null=True)
    content_sha256 = serializers.SerializerMethodField(
        help_text="sha256 of what the review's signature is bound to (the break-glass deployment as recorded): send "
        "it as content_sha256 with the review"
    )

    class Meta:
        model = BreakGlassReview
        fields = [
            "id",
            "state",
            "due_at",
            "overdue",
            "findings",
            "reviewer",
            "reviewed_at",
            "signature",
            "content_sha256",
        ]

    def get_overdue(self, review) -> bool:
        return review.is_overdue()

    def get_content_sha256(self, review) -> str:
        return esign.content_sha256(selectors.break_glass_review_signing_content(review))


class DeploymentOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="human_id")
    product = serializers.CharField(source="product.key")
    environment = serializers.CharField(source="environment.key")
    artifact = serializers.CharField(source="digest")
    artifact_name = serializers.CharField(source="artifact.name", allow_null=True, default=None)
    release = serializers.CharField(source="release.version", allow_null=True, default=None)
    deployer = serializers.CharField(source="deployer.username")
    decision = serializers.SerializerMethodField()
    review = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "product",
            "environment",
            "artifact",
            "artifact_name",
            "release",
            "kind",
            "authorised",
            "reasons",
            "decision",
            "deployer",
            "deployed_at",
            "pipeline_url",
            "justification",
            "review",
            "url",
        ]

    def get_decision(self, deployment) -> dict:
        snapshot = deployment.decision_snapshot or {}
        return {
            "id": f"DEC-{deployment.decision_id}" if deployment.decision_id else None,
            "decision": snapshot.get("decision"),
            "promotion": snapshot.get("promotion"),
            "policy": snapshot.get("policy"),
            "evaluated_at": snapshot.get("evaluated_at"),
        }

    def get_review(self, deployment) -> dict | None:
        review = getattr(deployment, "review", None) if deployment.kind == Deployment.Kind.BREAK_GLASS else None
        return ReviewOutput(review).data if review is not None else None

    def get_url(self, deployment) -> str:
        return f"/deployments/{deployment.human_id}"


class DeploymentInput(serializers.Serializer):
    artifact = serializers.CharField(max_length=80)
    environment = serializers.CharField(max_length=40)
    pipeline_url = HttpUrlField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=Deployment.Kind.values, required=False, default="normal")
    justification = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    # Needed only for a digest no build registered, when the caller may see more than one product.
    product = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")


class DeploymentListCreateApi(APIView):
    """Record a deployment (always recorded; flagged and alerted when not authorised), or read the log."""

    @extend_schema(request=DeploymentInput, responses={201: DeploymentOutput})
    def post(self, request):
        data = validated(DeploymentInput, request.data)
        artifact, product = deployment_target(request, data["artifact"], data["product"].strip())
        require_scope(token_of(request), "deployments:write")
        deployment = deployments.deployment_record(
            artifact=artifact,
            digest=data["artifact"],
            environment=environment_of(product, data["environment"]),
            deployer=request.user,
            kind=data["kind"],
            pipeline_url=data["pipeline_url"],
            justification=data["justification"],
        )
        return Response(DeploymentOutput(deployment).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[*LOG_PARAMETERS, OpenApiParameter("format", str)], responses=DeploymentOutput(many=True))
    def get(self, request):
        queryset = _log(request)
        if request.query_params.get("format") == "csv":
            return _csv(queryset)
        limit = _limit(request)
        return Response(DeploymentOutput(queryset[:limit], many=True).data)


def _log(request):
    filters = selectors.deployment_filters(request.query_params)
    return selectors.deployments_filter(selectors.deployments_visible_to(request.user, token_of(request)), **filters)


def _limit(request) -> int:
    raw = request.query_params.get("limit") or "200"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ValidationFailed(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def _csv(queryset) -> HttpResponse:
    rows = (selectors.csv_row(deployment) for deployment in queryset.iterator(chunk_size=2000))
    return csv_response(selectors.CSV_COLUMNS, rows, filename="deployments.csv")


def csv_response(columns: list[str], rows: Iterable[list[str]], *, filename: str) -> HttpResponse:
    """A CSV download of the runtime record (the deployment log, the affected-release search)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it.
        writer.writerow([("'" + c) if c[:1] in ("=", "+", "-", "@") else c for c in row])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class DeploymentCsvApi(APIView):
    """The deployment log as CSV (same filters as the JSON log)."""

    @extend_schema(parameters=LOG_PARAMETERS, responses={(200, "text/csv"): str})
    def get(self, request):
        return _csv(_log(request))


class DeploymentDetailApi(APIView):
    """One deployment with its walk-back: artifact → build → commits → CRs and requirements → approvals and gates."""

    @extend_schema(responses=DeploymentOutput)
    def get(self, request, deployment_id):
        deployment = deployment_for(request, deployment_id)
        body = DeploymentOutput(deployment).data
        body["walk_back"] = selectors.walk_back(deployment)
        return Response(body)


class BreakGlassReviewInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)
    findings = serializers.CharField(max_length=20000, allow_blank=True)
    content_sha256 = SeenContentField()


class BreakGlassReviewApi(APIView):
    """The retrospective review of a break-glass deployment: a quality reviewer's Part 11 signature with findings,
    bound to the deployment as the reviewer read it (`review.content_sha256` of GET /api/v1/deployments/{id})."""

    @extend_schema(request=BreakGlassReviewInput, responses={201: ReviewOutput, **SIGNING_ERRORS})
    def post(self, request, deployment_id):
        deployment = deployment_for(request, deployment_id)
        require_person(request, scope="changes:write")
        review = BreakGlassReview.objects.filter(deployment=deployment).first()
        if review is None:
            raise InvalidState(
                f"{deployment.human_id} is a {deployment.get_kind_display().lower()} deployment; "
                "only break-glass deployments have a retrospective review"
            )
        data = validated(
            BreakGlassReviewInput,
            request.data,
            context={"record_path": f"GET /api/v1/deployments/{deployment.human_id} (its review.content_sha256)"},
        )
        deployments.break_glass_review_sign(review=review, signer=request.user, **data)
        review.refresh_from_db()
        return Response(ReviewOutput(review).data, status=status.HTTP_201_CREATED)


class FindingOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="human_id")
    opened_by = serializers.CharField(source="opened_by.human_id")
    resolved_by = serializers.CharField(source="resolved_by.human_id", allow_null=True, default=None)

    class Meta:
        model = DriftFinding
        fields = ["id", "kind", "digest", "name", "state", "opened_at", "opened_by", "resolved_at", "resolved_by"]


class SnapshotInput(serializers.Serializer):
    artifacts = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=True,
        max_length=drift.MAX_RUNNING,
        help_text="What runs now, each as {name, digest}.",
    )


class SnapshotApi(APIView):
    """What really runs in an environment → drift findings opened, resolved and still open."""

    @extend_schema(request=SnapshotInput, responses=dict)
    def put(self, request, product, environment):
        product = product_for(request, product, scope="snapshots:write")
        environment = environment_of(product, environment)
        data = validated(SnapshotInput, request.data)
        result = drift.snapshot_record(environment=environment, reporter=request.user, artifacts=data["artifacts"])
        snapshot = result.snapshot
        return Response(
            {
                "snapshot": {
                    "id": snapshot.human_id,
                    "environment": environment.key,
                    "taken_at": snapshot.taken_at,
                    "sha256": snapshot.sha256,
                    "artifacts": len(snapshot.artifacts),
                },
                "changed": result.changed,
                "findings": {
                    "opened": FindingOutput(result.opened, many=True).data,
                    "resolved": FindingOutput(result.resolved, many=True).data,
                    "open": FindingOutput(result.open, many=True).data,
                },
            },
        )
