"""REST API of releases, promotions, their signatures and the status gate (DESIGN §7)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import gates, releases, selectors, services
from approvals import status as approval_status
from approvals.models import Decision, Promotion, Release
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
from changecontrol.api import SIGNING_ERRORS, SignatureOutput, SignInput, signing_context
from changecontrol.models import Environment, Product
from common.api import validated
from common.digests import digest_or_400
from common.errors import NotFound, ValidationFailed
from evidence import selectors as evidence_selectors
from evidence.models import Artifact


def release_for(request, product: str, version: str, *, with_contents: bool = False) -> Release:
    releases = Release.objects.select_related("product", "created_by")
    return get_visible_or_404(
        selectors.with_release_contents(releases) if with_contents else releases,
        user=request.user,
        token=token_of(request),
        product__key=product,
        version=version,
    )


def promotion_for(request, human_id: str) -> Promotion:
    return get_visible_or_404(
        Promotion.objects.select_related("release", "release__product", "environment", "requester", "policy_version"),
        user=request.user,
        token=token_of(request),
        product_field="release__product",
        pk=parse_human_id(human_id, "PRM-"),
    )


def artifact_for(request, digest: str) -> Artifact:
    """The artifact of `?artifact=` the caller may see (`?product=` chooses when several of its products hold it)."""
    digest = digest_or_400(digest)
    return evidence_selectors.artifact_get(
        digest=digest,
        user=request.user,
        token=token_of(request),
        product_key=request.query_params.get("product", ""),
    )


# ---------------------------------------------------------------- the status object (DESIGN §7), documented
#
# These serializers describe the status object for the OpenAPI schema only. The answer is built as a dict by
# approval_status.status_answer_for and returned as it is: the CI gate's hot path never serializes through them.


class StatusPolicyOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    digest = serializers.CharField(help_text="sha256:<hex> of the policy document")


class StatusGateOutput(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    blocking = serializers.BooleanField()
    status = serializers.ChoiceField(choices=[gates.PASS, gates.FAIL, gates.MISSING])
    detail = serializers.CharField(help_text="What the gate found, as a sentence a person can act on.")
    description = serializers.CharField(allow_blank=True, help_text="The policy's own words for the gate.")


class StatusSignerOutput(serializers.Serializer):
    role = serializers.CharField()
    signer = serializers.CharField()
    printed_name = serializers.CharField()
    signed_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class StatusApprovalsOutput(serializers.Serializer):
    required = serializers.ListField(child=serializers.CharField(), help_text="Roles whose approval is needed.")
    signed = serializers.ListField(
        child=serializers.CharField(), help_text="Required roles that hold a standing approval."
    )
    missing = serializers.ListField(child=serializers.CharField(), help_text="Required roles still to sign.")
    signers = StatusSignerOutput(many=True)
    notes = serializers.ListField(
        child=serializers.CharField(), help_text="Why a signature given does not count (expired, evidence changed…)."
    )


class StatusOutput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.Outcome.choices)
    product = serializers.CharField()
    release = serializers.CharField(allow_null=True, help_text="null when no release contains the digest")
    promotion = serializers.CharField(allow_null=True, help_text="PRM-<n>, or null when none was requested")
    environment = serializers.CharField()
    policy = StatusPolicyOutput()
    gates = StatusGateOutput(many=True)
    approvals = StatusApprovalsOutput()
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why the decision is not allowed.")
    evaluated_at = serializers.DateTimeField()


class ReleaseOutput(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key")
    created_by = serializers.CharField(source="created_by.username")
    artifacts = serializers.SerializerMethodField()
    change_requests = serializers.SerializerMethodField()
    promotions = serializers.SerializerMethodField()
    frozen = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = [
            "product",
            "version",
            "created_by",
            "created_at",
            "frozen",
            "frozen_at",
            "artifacts",
            "change_requests",
            "manifest",
            "manifest_sha256",
            "manifest_key_id",
            "manifest_signature",
            "promotions",
        ]

    def get_frozen(self, release) -> bool:
        return release.is_frozen()

    # Releases come through selectors.with_release_contents: artifacts, CRs and promotions are prefetched, in order.
    def get_artifacts(self, release) -> list[dict]:
        return [
            {"digest": a.digest, "name": a.name, "kind": a.kind, "build": a.build.human_id}
            for a in release.artifacts.all()
        ]

    def get_change_requests(self, release) -> list[dict]:
        return [
            {"id": cr.human_id, "title": cr.title, "tier": cr.tier, "state": cr.state}
            for cr in release.change_requests.all()
        ]

    def get_promotions(self, release) -> list[dict]:
        return [
            {"id": p.human_id, "environment": p.environment.key, "state": p.state, "requested_at": p.requested_at}
            for p in release.promotions.all()
        ]


class PromotionOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="human_id")
    product = serializers.CharField(source="release.product.key")
    release = serializers.CharField(source="release.version")
    environment = serializers.CharField(source="environment.key")
    requester = serializers.CharField(source="requester.username")
    policy_version = serializers.IntegerField(source="policy_version.version")
    signatures = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    content_sha256 = serializers.SerializerMethodField(
        help_text="sha256 of the content a signature on this promotion is bound to now: the release's digests and "
        "manifest, the policy version in force and the evidence that counts. Send it as content_sha256 when signing; "
        "it changes when a report arrives or a policy is activated."
    )

    class Meta:
        model = Promotion
        fields = [
            "id",
            "product",
            "release",
            "environment",
            "state",
            "tier",
            "requester",
            "requested_at",
            "decided_at",
            "deployed_at",
            "rejection_reason",
            "reopened_at",
            "reopen_reason",
            "policy_version",
            "signatures",
            "status",
            "content_sha256",
        ]

    def get_content_sha256(self, promotion) -> str:
        return esign.content_sha256(selectors.promotion_signing_content(promotion))

    def get_signatures(self, promotion) -> list:
        return SignatureOutput(selectors.promotion_signatures(promotion), many=True).data

    @extend_schema_field(StatusOutput)
    def get_status(self, promotion) -> dict:
        answer = approval_status.promotion_status(promotion)
        answer.pop("_inputs", None)
        return answer


class ReleaseInput(serializers.Serializer):
    version = serializers.CharField(max_length=100, help_text=f"Use only {releases.RELEASE_VERSION_RULE}.")
    artifacts = serializers.ListField(child=serializers.CharField(max_length=80), allow_empty=False, max_length=1000)
    change_requests = serializers.ListField(
        child=serializers.CharField(max_length=30), required=False, default=list, max_length=1000
    )
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class ReleaseListCreateApi(APIView):
    @extend_schema(responses=ReleaseOutput(many=True))
    def get(self, request, product):
        product = product_for(request, product)
        return Response(ReleaseOutput(selectors.with_release_contents(product.releases.all())[:200], many=True).data)

    @extend_schema(request=ReleaseInput, responses={201: ReleaseOutput})
    def post(self, request, product):
        product = product_for(request, product, scope="releases:write")
        data = validated(ReleaseInput, request.data)
        release = releases.release_create(
            product=product,
            actor=request.user,
            version=data["version"],
            artifact_digests=data["artifacts"],
            change_request_ids=data["change_requests"],
            notes=data["notes"],
        )
        release = selectors.with_release_contents(Release.objects.all()).get(pk=release.pk)
        return Response(ReleaseOutput(release).data, status=status.HTTP_201_CREATED)


class ReleaseEditInput(serializers.Serializer):
    """What may change before a release is frozen; a field left out stays as it is."""

    artifacts = serializers.ListField(
        child=serializers.CharField(max_length=80), required=False, allow_empty=False, max_length=1000
    )
    change_requests = serializers.ListField(child=serializers.CharField(max_length=30), required=False, max_length=1000)

    def validate(self, attrs):
        if "version" in self.initial_data:
            # The version names the release in every URL, signature and packet: a new version is a new release.
            raise serializers.ValidationError({"version": ["a release's version cannot change; create a new release"]})
        if not attrs:
            raise serializers.ValidationError("send artifacts, change_requests or both: the content to replace")
        return attrs


class ReleaseDetailApi(APIView):
    @extend_schema(responses=ReleaseOutput)
    def get(self, request, product, version):
        return Response(ReleaseOutput(release_for(request, product, version, with_contents=True)).data)

    @extend_schema(request=ReleaseEditInput, responses={200: ReleaseOutput})
    def patch(self, request, product, version):
        """Replace a release's artifacts and/or change requests; 409 once frozen (its first promotion request)."""
        release = release_for(request, product, version)
        require_scope(token_of(request), "releases:write")
        data = validated(ReleaseEditInput, request.data)
        releases.release_update(
            release=release,
            actor=request.user,
            artifact_digests=data.get("artifacts"),
            change_request_ids=data.get("change_requests"),
        )
        return Response(ReleaseOutput(release_for(request, product, version, with_contents=True)).data)


class PromotionRequestInput(serializers.Serializer):
    environment = serializers.CharField(max_length=40)


class PromotionRequestedOutput(serializers.Serializer):
    """Documents the answer to a promotion request (the view builds it as a dict)."""

    id = serializers.CharField()
    state = serializers.ChoiceField(choices=Promotion.State.choices)
    status = StatusOutput()
    url = serializers.CharField()


class PromotionCreateApi(APIView):
    @extend_schema(request=PromotionRequestInput, responses={201: PromotionRequestedOutput})
    def post(self, request, product, version):
        release = release_for(request, product, version)
        require_scope(token_of(request), "releases:write")
        data = validated(PromotionRequestInput, request.data)
        promotion = services.promotion_request(release=release, environment_key=data["environment"], actor=request.user)
        answer = approval_status.promotion_status(promotion)
        answer.pop("_inputs", None)
        body = {
            "id": promotion.human_id,
            "state": promotion.state,
            "status": answer,
            "url": f"/promotions/{promotion.human_id}",
        }
        return Response(body, status=status.HTTP_201_CREATED)


class PromotionDetailApi(APIView):
    @extend_schema(responses=PromotionOutput)
    def get(self, request, promotion_id):
        return Response(PromotionOutput(promotion_for(request, promotion_id)).data)


class PromotionSignApi(APIView):
    """Part 11 signature on a promotion with the content_sha256 the signer reviewed; 403 names any separation-of-duties
    rule that refuses it; 409 `content_changed` when evidence or the policy changed since."""

    @extend_schema(request=SignInput, responses={201: SignatureOutput, **SIGNING_ERRORS})
    def post(self, request, promotion_id):
        promotion = promotion_for(request, promotion_id)
        require_person(request, scope="changes:write")
        data = validated(SignInput, request.data, context=signing_context(f"/api/v1/promotions/{promotion.human_id}"))
        if data["meaning"] not in ("approved", "rejected"):
            raise ValidationFailed("a promotion is signed with meaning 'approved' or 'rejected'")
        signature = services.promotion_sign(promotion=promotion, signer=request.user, **data)
        promotion.refresh_from_db()
        body = SignatureOutput(signature).data
        body["promotion"] = PromotionOutput(promotion).data
        return Response(body, status=status.HTTP_201_CREATED)


class PendingApprovalsApi(APIView):
    """Promotions awaiting a signature the caller could give."""

    @extend_schema(
        responses=inline_serializer(
            "PendingApproval",
            {
                "id": serializers.CharField(),
                "product": serializers.CharField(),
                "release": serializers.CharField(),
                "environment": serializers.CharField(),
                "tier": serializers.CharField(),
                "requester": serializers.CharField(),
                "requested_at": serializers.DateTimeField(),
                "url": serializers.CharField(),
            },
            many=True,
        )
    )
    def get(self, request):
        if token_of(request) is not None and request.user.is_service_account:
            return Response([])
        return Response(
            [
                {
                    "id": p.human_id,
                    "product": p.release.product.key,
                    "release": p.release.version,
                    "environment": p.environment.key,
                    "tier": p.tier,
                    "requester": p.requester.username,
                    "requested_at": p.requested_at,
                    "url": f"/promotions/{p.human_id}",
                }
                for p in selectors.pending_approvals_for(request.user)
            ]
        )


def _environment_key(request) -> str:
    key = (request.query_params.get("environment") or "").strip()
    if not key:
        raise ValidationFailed(
            "give ?environment=<key> (e.g. production)", errors={"environment": ["This field is required."]}
        )
    return key


def _status_params(request) -> tuple[Artifact, Environment]:
    require_scope(token_of(request), "status:read")
    artifact = artifact_for(request, request.query_params.get("artifact", ""))
    key = _environment_key(request)
    environment = Environment.objects.filter(product=artifact.product, key=key).first()
    if environment is None:
        known = ", ".join(artifact.product.environments.values_list("key", flat=True))
        raise NotFound(f"{artifact.product.key} has no environment {key!r} (environments: {known})")
    return artifact, environment


class StatusApi(APIView):
    """May this digest go to this environment? allowed | blocked | pending, with gates, approvals and reasons."""

    @extend_schema(
        parameters=[
            OpenApiParameter("artifact", str, required=True),
            OpenApiParameter("environment", str, required=True),
            OpenApiParameter(
                "product", str, required=False, description="Needed only when several of your products hold the digest."
            ),
        ],
        responses=StatusOutput,
    )
    def get(self, request):
        token = token_of(request)
        require_scope(token, "status:read")
        digest = digest_or_400(request.query_params.get("artifact", ""))
        key = _environment_key(request)
        # The CI gate's hot path: one query finds the digest among what the caller may see, the environment and
        # the inputs stamp, so a cached answer costs nothing more. A service account's token sees exactly its
        # products (access.visible_product_ids), so its visibility joins into that query.
        product_key = (request.query_params.get("product") or "").strip()
        if token is not None and request.user.is_service_account and not product_key:
            found = selectors.status_key(digest=digest, environment_key=key, token_id=token.pk)
        else:
            visible = visible_product_ids(request.user, token)
            if product_key:
                visible &= set(Product.objects.filter(key=product_key).values_list("id", flat=True))
            found = selectors.status_key(digest=digest, environment_key=key, product_ids=visible)
        if found is None:
            raise Http404
        if found.matches > 1:
            artifact_for(request, digest)  # raises the 400 that names the products to choose from
        return Response(approval_status.status_answer_for(found=found, environment_key=key))


class DecisionOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="human_id")
    artifact = serializers.CharField(source="artifact.digest")
    environment = serializers.CharField(source="environment.key")
    promotion = serializers.SerializerMethodField()
    policy_version = serializers.IntegerField(source="policy_version.version", allow_null=True)

    class Meta:
        model = Decision
        fields = [
            "id",
            "artifact",
            "environment",
            "promotion",
            "decision",
            "gates",
            "approvals",
            "reasons",
            "policy_version",
            "inputs_sha256",
            "evaluated_at",
        ]

    def get_promotion(self, decision) -> str | None:
        return f"PRM-{decision.promotion_id}" if decision.promotion_id else None


class DecisionHistoryApi(APIView):
    """Every stored answer for a digest and environment, newest first (each can be replayed)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("artifact", str, required=True),
            OpenApiParameter("environment", str, required=True),
        ],
        responses=DecisionOutput(many=True),
    )
    def get(self, request):
        artifact, environment = _status_params(request)
        decisions = (
            Decision.objects.filter(artifact=artifact, environment=environment)
            .select_related("artifact", "environment", "policy_version")
            .order_by("-id")[:200]
        )
        return Response(DecisionOutput(decisions, many=True).data)
