"""REST API of the core domain (DESIGN §7): products, change requests and their signatures, audit, keys."""

from __future__ import annotations

import csv
import json

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from changecontrol import selectors, services
from changecontrol.access import change_request_for, product_for, require_person, token_of, visible_products
from changecontrol.models import ChangeRequest, PolicyVersion, Product, Signature
from common.api import validated
from common.errors import NotFound
from common.keys import keyring
from common.times import query_moment


class SignatureOutput(serializers.ModelSerializer):
    signer = serializers.CharField(source="signer.username")
    manifestation = serializers.CharField()
    valid = serializers.SerializerMethodField()

    class Meta:
        model = Signature
        fields = [
            "id",
            "signer",
            "printed_name",
            "signed_at",
            "meaning",
            "role",
            "comment",
            "content_sha256",
            "manifestation",
            "valid",
            "expires_at",
            "invalidated_at",
            "invalidated_reason",
        ]

    def get_valid(self, signature) -> bool:
        return signature.is_valid()


class ChangeRequestOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="human_id")
    product = serializers.CharField(source="product.key")
    type = serializers.CharField(source="change_type")
    requester = serializers.CharField(source="requester.username")
    policy_version = serializers.IntegerField(source="policy_version.version", allow_null=True, default=None)
    approval = serializers.SerializerMethodField()
    signatures = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "product",
            "title",
            "why",
            "what_changes",
            "affected_items",
            "kind",
            "type",
            "verification_plan",
            "rollback_plan",
            "requester",
            "state",
            "risk_answers",
            "risk_score",
            "tier",
            "policy_version",
            "content_version",
            "created_at",
            "updated_at",
            "submitted_at",
            "decided_at",
            "approved_automatically",
            "rejection_reason",
            "approval",
            "signatures",
            "url",
        ]

    def get_approval(self, change_request) -> dict:
        return services.approval_requirement(change_request, signatures=self._signatures(change_request))

    def get_signatures(self, change_request) -> list:
        return SignatureOutput(self._signatures(change_request), many=True).data

    def _signatures(self, change_request):
        # A list hands every row's signatures over in the context (selectors.signatures_by_subject, one query).
        by_subject = self.context.get("signatures")
        if by_subject is not None:
            return by_subject.get(change_request.pk, [])
        return selectors.signatures_of(change_request)

    def get_url(self, change_request) -> str:
        return f"/change-requests/{change_request.human_id}"


class ChangeRequestInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    why = serializers.CharField(required=False, allow_blank=True)
    what_changes = serializers.CharField(required=False, allow_blank=True)
    affected_items = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=ChangeRequest.Kind.values, required=False)
    type = serializers.ChoiceField(choices=ChangeRequest.Type.values, required=False, source="change_type")
    verification_plan = serializers.CharField(required=False, allow_blank=True)
    rollback_plan = serializers.CharField(required=False, allow_blank=True)
    risk_answers = serializers.DictField(child=serializers.CharField(), required=False)
    reason = serializers.CharField(required=False, allow_blank=True)


class ProductOutput(serializers.ModelSerializer):
    environments = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["key", "name", "safety_class", "safety_rationale", "repository_url", "environments", "roles"]

    def get_environments(self, product) -> list[str]:
        return [e.key for e in product.environments.all()]

    def get_roles(self, product) -> list[str]:
        from changecontrol.roles import roles_of

        return sorted(roles_of(self.context["request"].user, product))


class ProductListApi(APIView):
    @extend_schema(responses=ProductOutput(many=True))
    def get(self, request):
        products = visible_products(request.user, token_of(request)).prefetch_related("environments")
        return Response(ProductOutput(products, many=True, context={"request": request}).data)


class ProductDetailApi(APIView):
    @extend_schema(responses=ProductOutput)
    def get(self, request, product):
        return Response(ProductOutput(product_for(request, product), context={"request": request}).data)


class ChangeRequestListCreateApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter(name, str, required=False) for name in ("state", "tier", "kind", "type")],
        responses=ChangeRequestOutput(many=True),
    )
    def get(self, request, product):
        product = product_for(request, product)
        change_requests = list(selectors.change_requests(product=product, filters=request.query_params)[:500])
        signatures = selectors.signatures_by_subject(change_requests)
        return Response(ChangeRequestOutput(change_requests, many=True, context={"signatures": signatures}).data)

    @extend_schema(request=ChangeRequestInput, responses={201: ChangeRequestOutput})
    def post(self, request, product):
        product = product_for(request, product)
        require_person(request, scope="changes:write")
        data = validated(ChangeRequestInput, request.data)
        data.pop("reason", None)
        risk_answers = data.pop("risk_answers", None)
        change_request = services.change_request_create(
            product=product, requester=request.user, risk_answers=risk_answers, **data
        )
        return Response(ChangeRequestOutput(change_request).data, status=status.HTTP_201_CREATED)


class ChangeRequestDetailApi(APIView):
    @extend_schema(responses=ChangeRequestOutput)
    def get(self, request, change_request_id):
        return Response(ChangeRequestOutput(change_request_for(request, change_request_id)).data)

    @extend_schema(request=ChangeRequestInput, responses=ChangeRequestOutput)
    def patch(self, request, change_request_id):
        change_request = change_request_for(request, change_request_id)
        require_person(request, scope="changes:write")
        data = validated(ChangeRequestInput, request.data)
        change_request = services.change_request_update(
            change_request=change_request,
            actor=request.user,
            risk_answers=data.pop("risk_answers", None),
            reason=data.pop("reason", ""),
            **data,
        )
        return Response(ChangeRequestOutput(change_request).data)


class ChangeRequestSubmitApi(APIView):
    @extend_schema(request=None, responses=ChangeRequestOutput)
    def post(self, request, change_request_id):
        change_request = change_request_for(request, change_request_id)
        require_person(request, scope="changes:write")
        change_request = services.change_request_submit(change_request=change_request, actor=request.user)
        return Response(ChangeRequestOutput(change_request).data)


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField()


class ChangeRequestWithdrawApi(APIView):
    @extend_schema(request=ReasonInput, responses=ChangeRequestOutput)
    def post(self, request, change_request_id):
        change_request = change_request_for(request, change_request_id)
        require_person(request, scope="changes:write")
        data = validated(ReasonInput, request.data)
        change_request = services.change_request_withdraw(
            change_request=change_request, actor=request.user, reason=data["reason"]
        )
        return Response(ChangeRequestOutput(change_request).data)


class SignInput(serializers.Serializer):
    meaning = serializers.ChoiceField(choices=["approved", "rejected", "reviewed"])
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)
    role = serializers.CharField(required=False, allow_blank=True, default="")


class ChangeRequestSignApi(APIView):
    """Part 11 signature: the signer re-enters username and password; 403 names any SoD rule that refuses."""

    @extend_schema(request=SignInput, responses={201: SignatureOutput})
    def post(self, request, change_request_id):
        change_request = change_request_for(request, change_request_id)
        require_person(request, scope="changes:write")
        data = validated(SignInput, request.data)
        signature = services.change_request_sign(change_request=change_request, signer=request.user, **data)
        change_request.refresh_from_db()
        body = SignatureOutput(signature).data
        body["change_request"] = ChangeRequestOutput(change_request).data
        return Response(body, status=status.HTTP_201_CREATED)


class RiskPreviewApi(APIView):
    @extend_schema(request=inline_serializer("RiskAnswers", {"answers": serializers.DictField()}), responses=dict)
    def post(self, request, product):
        product = product_for(request, product)
        answers = request.data.get("answers", {})
        if not isinstance(answers, dict):
            answers = {}
        return Response(
            services.risk_preview(product=product, answers={str(k): str(v) for k, v in answers.items() if v})
        )


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_name")
    action = serializers.CharField()
    product = serializers.CharField(source="product_key")
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    object_human_id = serializers.CharField()
    object_version = serializers.CharField()
    before = serializers.JSONField()
    after = serializers.JSONField()
    reason = serializers.CharField()
    request_id = serializers.CharField()
    client_address = serializers.CharField()
    via_token = serializers.CharField()
    previous_hash = serializers.CharField()
    seals = serializers.JSONField(
        allow_null=True, help_text="The seals of the sealed records this event changed (its hash covers them)."
    )
    hash = serializers.CharField()


class AuditEventListApi(APIView):
    """Audit events the caller may see, filtered; `?format=csv` downloads CSV."""

    @extend_schema(
        parameters=[
            OpenApiParameter(n, str, required=False)
            for n in ("product", "object", "actor", "action", "since", "until", "format")
        ],
        responses=AuditEventOutput(many=True),
    )
    def get(self, request):
        params = request.query_params
        events = selectors.audit_events(
            user=request.user,
            token=token_of(request),
            product=params.get("product", ""),
            object_human_id=params.get("object", ""),
            actor=params.get("actor", ""),
            action=params.get("action", ""),
            since=query_moment(params.get("since"), name="since"),
            until=query_moment(params.get("until"), end_of_day=True, name="until"),
        )
        limit = (
            min(int(params.get("limit", "1000") or 1000), 100_000)
            if params.get("limit", "").isdigit() or not params.get("limit")
            else 1000
        )
        rows = AuditEventOutput(events[:limit], many=True).data
        if params.get("format") == "csv":
            return audit_csv_response(rows)
        return Response(rows)


def audit_csv_response(rows) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="custody-audit-trail.csv"'
    fields = list(AuditEventOutput().fields)
    writer = csv.DictWriter(response, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(row[key]) for key in fields})
    return response


def _csv_cell(value):
    text = (
        json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else ("" if value is None else str(value))
    )
    # Spreadsheet formula injection: a cell starting with = + - @ is prefixed so it is never evaluated.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


class PublicKeysApi(APIView):
    """Custody's public signing keys, for verifying manifests, bundles and checkpoints offline."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses=dict)
    def get(self, request):
        return Response({"keys": keyring().public_keys()})


# ---------------------------------------------------------------- policy versions (DESIGN §5)


class PolicyVersionOutput(serializers.Serializer):
    version = serializers.IntegerField()
    sha256 = serializers.CharField(help_text="sha256 of the YAML document exactly as proposed")
    state = serializers.ChoiceField(choices=PolicyVersion.State.choices)
    author = serializers.CharField(source="author.username")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    signed_by = serializers.CharField(
        source="signature.signer.username",
        allow_null=True,
        default=None,
        help_text="username of the quality reviewer whose signature activated it",
    )
    signature = SignatureOutput(allow_null=True, default=None)


def _policy_version_body(version: PolicyVersion, signature=None) -> dict:
    version.signature = signature
    return PolicyVersionOutput(version).data


def _policy_version_for(product: Product, version: int) -> PolicyVersion:
    policy_version = product.policy_versions.select_related("product", "author").filter(version=version).first()
    if policy_version is None:
        raise NotFound(
            f"{product.key} has no policy v{version}: GET /api/v1/products/{product.key}/policy-versions lists them"
        )
    return policy_version


class PolicyProposeInput(serializers.Serializer):
    source = serializers.CharField(trim_whitespace=False, help_text="the policy document (YAML)")
    reason = serializers.CharField(help_text="why the policy changes; kept with the version")


class PolicyVersionListCreateApi(APIView):
    """A product's policy versions; a person proposes a new one, which waits for a quality reviewer's signature."""

    @extend_schema(responses=PolicyVersionOutput(many=True))
    def get(self, request, product):
        product = product_for(request, product)
        return Response([_policy_version_body(v, s) for v, s in selectors.policy_versions_with_signatures(product)])

    @extend_schema(request=PolicyProposeInput, responses={201: PolicyVersionOutput, 200: PolicyVersionOutput})
    def post(self, request, product):
        product = product_for(request, product)
        # Changing the rules releases are judged by is a person's act, never a pipeline's.
        require_person(request, scope="changes:write")
        data = validated(PolicyProposeInput, request.data)
        latest = product.policy_versions.order_by("-version").values_list("pk", flat=True).first()
        version = services.policy_version_propose(product=product, author=request.user, **data)
        # The same document as the latest proposed or active version stores nothing new: 200 with that version.
        stored = status.HTTP_200_OK if version.pk == latest else status.HTTP_201_CREATED
        return Response(_policy_version_body(version), status=stored)


class PolicySignInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class PolicyVersionSignApi(APIView):
    """A quality reviewer's Part 11 signature activates a proposed version; 403 names any SoD rule that refuses."""

    @extend_schema(request=PolicySignInput, responses={201: SignatureOutput})
    def post(self, request, product, version):
        product = product_for(request, product)
        require_person(request, scope="changes:write")
        policy_version = _policy_version_for(product, version)
        data = validated(PolicySignInput, request.data)
        signature = services.policy_version_sign(policy_version=policy_version, signer=request.user, **data)
        policy_version.refresh_from_db()
        body = SignatureOutput(signature).data
        body["policy_version"] = _policy_version_body(policy_version, signature)
        return Response(body, status=status.HTTP_201_CREATED)
