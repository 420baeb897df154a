"""REST API of the core domain (DESIGN §7): products, change requests and their signatures, audit, keys."""

from __future__ import annotations

import csv
import json

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from changecontrol import esign, selectors, services
from changecontrol.access import (
    change_request_for,
    product_for,
    require_person,
    signature_for,
    token_of,
    visible_products,
)
from changecontrol.models import ChangeRequest, PolicyVersion, Product, Signature
from common.api import validated
from common.errors import NotFound
from common.keys import keyring
from common.times import query_moment


class SignatureOutput(serializers.ModelSerializer):
    signer = serializers.CharField(source="signer.username")
    manifestation = serializers.CharField()
    valid = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(
        help_text="The signature's own page: its manifestation and the exact content it is bound to "
        "(GET /api/v1/signatures/{id} answers the same as JSON)"
    )

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
            "url",
        ]

    def get_valid(self, signature) -> bool:
        return signature.is_valid()

    def get_url(self, signature) -> str:
        return f"/signatures/{signature.pk}"


class SignatureDetailOutput(SignatureOutput):
    """One signature with the signed record and the exact content the signature is bound to (Part 11 §11.50, §11.70)."""

    subject_type = serializers.CharField(help_text="the kind of record signed, e.g. changecontrol.changerequest")
    subject = serializers.CharField(source="subject_human_id", help_text="the signed record, e.g. CR-42 or PRM-12")
    subject_url = serializers.SerializerMethodField(help_text="the page of the signed record")
    product = serializers.CharField(source="product.key")
    policy_version = serializers.IntegerField(source="policy_version.version", allow_null=True, default=None)
    content = serializers.JSONField(help_text="the content signed, as the signer was shown it")
    content_hash_matches = serializers.SerializerMethodField(
        help_text="whether the sha256 of `content` in Custody's canonical JSON form, computed now, is `content_sha256`"
    )

    class Meta(SignatureOutput.Meta):
        fields = [
            *SignatureOutput.Meta.fields,
            "subject_type",
            "subject",
            "subject_url",
            "product",
            "policy_version",
            "content",
            "content_hash_matches",
        ]

    def get_subject_url(self, signature) -> str | None:
        return selectors.signed_record_path(signature)

    def get_content_hash_matches(self, signature) -> bool:
        return esign.content_sha256(signature.content) == signature.content_sha256


class SeenContentField(serializers.CharField):
    """`content_sha256` in a signing request: the hash of the record as the signer reviewed it (Part 11 §11.70).

    A missing or malformed one is a 400 that says where to read it: the view puts the record's GET path in the
    serializer's context (`record_path`)."""

    default_error_messages = {
        "required": (
            "Required: the sha256 of the record as you reviewed it. Read it from the content_sha256 field of "
            "{where}, review that answer, and send its content_sha256 with your signature."
        ),
        "not_sha256": "Must be the 64 hexadecimal characters of the content_sha256 field of {where}.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text",
            "Required. The content_sha256 of the record as you reviewed it, from the record's GET answer (or the "
            "signing dialog). If the record changed since, nothing is signed: 409 content_changed names both hashes.",
        )
        super().__init__(source="seen_sha256", **kwargs)

    def fail(self, key, **kwargs):
        # One message for absent, null and empty alike, naming where the hash comes from.
        key = {"null": "required", "blank": "required", "invalid": "not_sha256"}.get(key, key)
        where = self.context.get("record_path") or "the record's GET answer"
        return super().fail(key, where=where, **kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data).strip().lower()
        if not esign.SHA256_HEX.fullmatch(text):
            self.fail("not_sha256")
        return text


class ChangeRequestOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="human_id")
    product = serializers.CharField(source="product.key")
    type = serializers.CharField(source="change_type")
    requester = serializers.CharField(source="requester.username")
    policy_version = serializers.IntegerField(source="policy_version.version", allow_null=True, default=None)
    approval = serializers.SerializerMethodField()
    signatures = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    content_sha256 = serializers.SerializerMethodField(
        help_text="sha256 of the content a signature on this change request is bound to, as shown here: send it as "
        "content_sha256 when signing (POST …/signatures)"
    )

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
            "content_sha256",
        ]

    def get_content_sha256(self, change_request) -> str:
        return esign.content_sha256(selectors.change_request_signing_content(change_request))

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
    content_sha256 = SeenContentField()


class ContentChangedOutput(serializers.Serializer):
    """409 `content_changed`: the record changed after the signer was shown it; nothing was signed."""

    error = serializers.CharField(help_text="content_changed")
    detail = serializers.CharField(help_text="names both hashes: reload the record and review it again")
    seen_content_sha256 = serializers.CharField(help_text="the content_sha256 the request carried")
    content_sha256 = serializers.CharField(help_text="the record's content_sha256 now")


# Every signing endpoint answers these besides its 201 (documented once, used by each app's signing view).
SIGNING_ERRORS = {409: ContentChangedOutput}


def signing_context(record_path: str) -> dict:
    """The serializer context of a signing request: where its content_sha256 is read (named by a 400)."""
    return {"record_path": f"GET {record_path}"}


class ChangeRequestSignApi(APIView):
    """Part 11 signature: the signer re-enters username and password and sends the content_sha256 they reviewed;
    403 names any SoD rule that refuses; 409 `content_changed` when the change request was edited since."""

    @extend_schema(request=SignInput, responses={201: SignatureOutput, **SIGNING_ERRORS})
    def post(self, request, change_request_id):
        change_request = change_request_for(request, change_request_id)
        require_person(request, scope="changes:write")
        data = validated(
            SignInput, request.data, context=signing_context(f"/api/v1/change-requests/{change_request.human_id}")
        )
        signature = services.change_request_sign(change_request=change_request, signer=request.user, **data)
        change_request.refresh_from_db()
        body = SignatureOutput(signature).data
        body["change_request"] = ChangeRequestOutput(change_request).data
        return Response(body, status=status.HTTP_201_CREATED)


class RiskAnswersInput(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, help_text="question → the chosen answer"
    )


class RiskPreviewApi(APIView):
    @extend_schema(request=RiskAnswersInput, responses=dict)
    def post(self, request, product):
        product = product_for(request, product)
        answers = validated(RiskAnswersInput, request.data).get("answers", {})
        return Response(services.risk_preview(product=product, answers={k: v for k, v in answers.items() if v}))


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
    content_sha256 = serializers.SerializerMethodField(
        help_text="sha256 of the content a signature on this version is bound to (product, version and the "
        "document's sha256): send it as content_sha256 when signing"
    )

    def get_content_sha256(self, version) -> str:
        return esign.content_sha256(selectors.policy_version_signing_content(version))


def _policy_version_body(version: PolicyVersion, signature=None) -> dict:
    version.signature = signature
    return PolicyVersionOutput(version).data


class PolicyVersionDetailOutput(PolicyVersionOutput):
    source = serializers.CharField(help_text="the policy document (YAML) exactly as proposed")


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


class PolicyVersionDetailApi(APIView):
    """One policy version with its document, the signature that activated it and the content_sha256 a signer sends."""

    @extend_schema(responses=PolicyVersionDetailOutput)
    def get(self, request, product, version):
        policy_version = _policy_version_for(product_for(request, product), version)
        signature = (
            esign.signatures_for(policy_version).filter(invalidated_at__isnull=True).select_related("signer").first()
        )
        policy_version.signature = signature
        return Response(PolicyVersionDetailOutput(policy_version).data)


class PolicySignInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    content_sha256 = SeenContentField()


class PolicyVersionSignApi(APIView):
    """A quality reviewer's Part 11 signature activates a proposed version; 403 names any SoD rule that refuses."""

    @extend_schema(request=PolicySignInput, responses={201: SignatureOutput, **SIGNING_ERRORS})
    def post(self, request, product, version):
        product = product_for(request, product)
        require_person(request, scope="changes:write")
        policy_version = _policy_version_for(product, version)
        data = validated(
            PolicySignInput,
            request.data,
            context=signing_context(f"/api/v1/products/{product.key}/policy-versions/{policy_version.version}"),
        )
        signature = services.policy_version_sign(policy_version=policy_version, signer=request.user, **data)
        policy_version.refresh_from_db()
        body = SignatureOutput(signature).data
        body["policy_version"] = _policy_version_body(policy_version, signature)
        return Response(body, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------- one signature (Part 11 §11.50, §11.70)


class SignatureDetailApi(APIView):
    """A signature with its manifestation and the exact content it is bound to; visible with the signed record's
    product (hidden and missing are both 404)."""

    @extend_schema(responses=SignatureDetailOutput)
    def get(self, request, signature_id):
        return Response(SignatureDetailOutput(signature_for(request, signature_id)).data)
