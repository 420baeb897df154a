"""REST API of evidence intake (DESIGN §7): builds, artifacts, evidence upload and status, signer keys."""

from __future__ import annotations

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from changecontrol.access import product_for, require_person, require_scope, token_of
from changecontrol.models import Product, Role
from changecontrol.roles import roles_of
from common.api import MULTIPART_OVERHEAD, validated
from common.api_parsers import MultiPartParser
from common.errors import NotPermitted, ValidationFailed
from common.links import HttpUrlField
from evidence import selectors, services, storage
from evidence.models import Artifact, Build, Evidence, SignerKey

WRITE_SCOPE = "evidence:write"
# People who may register builds and upload evidence with their session; auditors change nothing.
WRITER_ROLES = {Role.ENGINEER, Role.RELEASE_MANAGER, Role.SRE, Role.ADMIN, Role.QUALITY, Role.SECURITY}
KEY_ADMIN_ROLES = {Role.ADMIN, Role.SECURITY}
PRODUCT_PARAMETER = OpenApiParameter(
    "product", str, required=False, description="Needed only when several of your products registered the digest."
)


def require_writer(request, product: Product) -> None:
    """A token needs the evidence:write scope; a person needs a role that may write evidence."""
    token = token_of(request)
    require_scope(token, WRITE_SCOPE)
    if not request.user.is_service_account and not roles_of(request.user, product) & WRITER_ROLES:
        raise NotPermitted(
            f"your roles on {product.key} do not allow registering builds or evidence "
            f"(needs one of: {', '.join(sorted(WRITER_ROLES))})"
        )


# ---------------------------------------------------------------- builds


class CommitInput(serializers.Serializer):
    sha = serializers.RegexField(r"^[0-9a-fA-F]{7,64}$")
    # Whatever git recorded: `root@buildbox` or `jenkins@localhost` are real authors, and refusing them would
    # refuse the whole build. Separation of duties compares them case-insensitively with people's e-mails.
    author_email = serializers.CharField(required=False, allow_blank=True, default="", max_length=254)
    author_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    message = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class BuildInput(serializers.Serializer):
    commit = serializers.RegexField(r"^[0-9a-fA-F]{7,64}$")
    branch = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    pipeline_url = HttpUrlField()
    ci_system = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    build_number = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    builder_identity = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    started_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    finished_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    commits = CommitInput(many=True, required=False, default=list)
    parameters = serializers.DictField(required=False, default=dict)


class CommitOutput(serializers.Serializer):
    sha = serializers.CharField()
    author_email = serializers.CharField()
    author_name = serializers.CharField()
    message = serializers.CharField()


class BuildOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="human_id")
    product = serializers.CharField(source="product.key")
    build_number = serializers.CharField(source="ci_build_number")
    commits = CommitOutput(many=True)
    artifacts = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Build
        fields = [
            "id",
            "product",
            "commit",
            "branch",
            "pipeline_url",
            "ci_system",
            "build_number",
            "builder_identity",
            "started_at",
            "finished_at",
            "parameters",
            "commits",
            "artifacts",
            "pull_state",
            "pull_attempts",
            "pull_detail",
            "pulled_at",
            "created_at",
            "url",
        ]

    def get_artifacts(self, build) -> list[str]:
        return [a.digest for a in build.artifacts.all()]

    def get_url(self, build) -> str:
        return reverse("evidence-build", args=[build.human_id])


class BuildRegisterApi(APIView):
    """Register a CI run; the same pipeline URL again answers 200 with the existing build."""

    @extend_schema(request=BuildInput, responses={201: BuildOutput, 200: BuildOutput})
    def post(self, request, product):
        product = product_for(request, product)
        require_writer(request, product)
        data = validated(BuildInput, request.data)
        build, created = services.build_register(product=product, actor=request.user, **data)
        build = Build.objects.prefetch_related("commits", "artifacts").select_related("product").get(pk=build.pk)
        return Response(BuildOutput(build).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class BuildDetailApi(APIView):
    @extend_schema(responses=BuildOutput)
    def get(self, request, build_id):
        build = selectors.build_get(human_id=build_id, user=request.user, token=token_of(request))
        return Response(BuildOutput(build).data)


class BuildPullApi(APIView):
    """Ask a worker to pull this build's reports from its CI provider (GitHub Actions, GitLab)."""

    @extend_schema(request=None, responses={202: BuildOutput})
    def post(self, request, build_id):
        build = selectors.build_get(human_id=build_id, user=request.user, token=token_of(request))
        require_writer(request, build.product)
        build = services.build_pull_request(build=build, actor=request.user)
        return Response(BuildOutput(build).data, status=status.HTTP_202_ACCEPTED)


# ---------------------------------------------------------------- artifacts


class ArtifactInput(serializers.Serializer):
    name = serializers.CharField(max_length=300)
    digest = serializers.CharField(max_length=80)
    build = serializers.CharField(max_length=60, help_text='The build id as registration returned it, e.g. "rsd-b3".')
    kind = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    uri = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ArtifactOutput(serializers.ModelSerializer):
    product = serializers.CharField(source="product.key")
    build = serializers.CharField(source="build.human_id")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = ["digest", "name", "kind", "uri", "product", "build", "created_at", "url"]

    def get_url(self, artifact) -> str:
        return selectors.artifact_page_url(artifact.digest, artifact.product.key)


class ArtifactRegisterApi(APIView):
    """Register an artifact by digest; idempotent on the digest; the digest under another build is 409."""

    @extend_schema(request=ArtifactInput, responses={201: ArtifactOutput, 200: ArtifactOutput})
    def post(self, request, product):
        product = product_for(request, product)
        require_writer(request, product)
        data = validated(ArtifactInput, request.data)
        build = selectors.build_get(human_id=data.pop("build"), user=request.user, token=token_of(request))
        if build.product_id != product.pk:
            from django.http import Http404

            raise Http404
        artifact, created = services.artifact_register(product=product, actor=request.user, build=build, **data)
        return Response(
            ArtifactOutput(artifact).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class ArtifactDetailApi(APIView):
    @extend_schema(parameters=[PRODUCT_PARAMETER], responses=dict)
    def get(self, request, digest):
        artifact = selectors.artifact_get(
            digest=digest,
            user=request.user,
            token=token_of(request),
            product_key=request.query_params.get("product", ""),
        )
        body = ArtifactOutput(artifact).data
        body["evidence"] = EvidenceOutput(artifact.evidence.select_related("signer_key").all(), many=True).data
        body["tests"] = selectors.test_counts(artifact)
        body["vulnerabilities"] = selectors.vulnerability_counts(artifact)
        return Response(body)


# ---------------------------------------------------------------- evidence


class EvidenceOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="human_id")
    type = serializers.CharField(source="evidence_type")
    artifact = serializers.CharField(source="artifact.digest")
    signer_key = serializers.SerializerMethodField()
    counts_as_evidence = serializers.BooleanField()
    superseded_by = serializers.SerializerMethodField(
        help_text="EV-<n>: another copy of the same file that counts instead (a signed copy over an unsigned one)."
    )
    status_url = serializers.SerializerMethodField()
    raw_url = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = [
            "id",
            "type",
            "name",
            "artifact",
            "sha256",
            "size",
            "state",
            "progress",
            "verdict",
            "verdict_detail",
            "signer_key",
            "counts_as_evidence",
            "superseded_by",
            "summary",
            "error",
            "attempts",
            "uploaded_at",
            "processed_at",
            "status_url",
            "raw_url",
        ]

    def get_signer_key(self, evidence) -> dict | None:
        key = evidence.signer_key
        if key is None:
            return None
        return {"key_id": key.key_id, "name": key.name, "algorithm": key.algorithm}

    def get_superseded_by(self, evidence) -> str | None:
        return f"EV-{evidence.superseded_by_id}" if evidence.superseded_by_id else None

    def get_status_url(self, evidence) -> str:
        return reverse("api-evidence", args=[evidence.human_id])

    def get_raw_url(self, evidence) -> str:
        return reverse("api-evidence-raw", args=[evidence.human_id])


class EvidenceUploadApi(APIView):
    """Multipart upload: `type`, `file`, optional `signature` and `name` → 202 with where to poll."""

    parser_classes = [MultiPartParser]
    single_parts = ("type", "file", "signature", "name")

    def initialize_request(self, request, *args, **kwargs):
        # Stop reading the body the moment the files pass the limit (not after spooling 50 MB+).
        from django.conf import settings
        from django.core.files.uploadhandler import load_handler

        request.upload_handlers = [storage.LimitedUploadHandler(request)] + [
            load_handler(path, request) for path in settings.FILE_UPLOAD_HANDLERS
        ]
        return super().initialize_request(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        # 413 before anything reads the body: Content-Length says it is too large.
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > storage.max_upload_bytes() + MULTIPART_OVERHEAD:
            raise storage.too_large(int(length))
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "EvidenceUpload",
                {
                    "type": serializers.ChoiceField(choices=services.SUPPORTED_TYPES),
                    "file": serializers.FileField(),
                    "signature": serializers.FileField(required=False),
                    "name": serializers.CharField(required=False),
                    "product": serializers.CharField(
                        required=False, help_text="Needed only when several of your products registered the digest."
                    ),
                },
            )
        },
        responses={202: EvidenceOutput},
    )
    def post(self, request, digest):
        artifact = selectors.artifact_get(
            digest=digest,
            user=request.user,
            token=token_of(request),
            product_key=str(request.query_params.get("product") or request.data.get("product") or ""),
        )
        require_writer(request, artifact.product)
        evidence_type = str(request.data.get("type", "")).strip()
        if not evidence_type:
            raise ValidationFailed(
                "send the evidence type as the multipart part `type` (curl: -F type=junit); "
                f"supported types are: {', '.join(services.SUPPORTED_TYPES)}",
                supported_types=list(services.SUPPORTED_TYPES),
            )
        services.check_evidence_type(evidence_type)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed("send the report as the multipart part `file` (curl: -F file=@report.xml)")
        signature = request.FILES.get("signature")
        name = str(request.data.get("name", "") or upload.name or "")
        evidence, created = services.evidence_receive(
            artifact=artifact,
            actor=request.user,
            evidence_type=evidence_type,
            content=upload,
            signature=signature,
            name=name,
        )
        evidence.refresh_from_db()
        body = EvidenceOutput(evidence).data
        body["created"] = created
        return Response(body, status=status.HTTP_202_ACCEPTED)


class EvidenceDetailApi(APIView):
    @extend_schema(responses=EvidenceOutput)
    def get(self, request, evidence_id):
        evidence = selectors.evidence_get(evidence_id=evidence_id, user=request.user, token=token_of(request))
        return Response(EvidenceOutput(evidence).data)


class EvidenceRawApi(APIView):
    """The bytes exactly as received (their sha256 is in the evidence record)."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, evidence_id):
        evidence = selectors.evidence_get(evidence_id=evidence_id, user=request.user, token=token_of(request))
        return raw_response(evidence)


def raw_response(evidence: Evidence) -> FileResponse:
    filename = (evidence.name or f"{evidence.human_id}.{evidence.evidence_type}").replace('"', "").split("/")[-1]
    response = FileResponse(
        storage.open_blob(evidence.storage_name),
        as_attachment=True,
        filename=filename,
        content_type="application/octet-stream",
    )
    response["X-Content-SHA256"] = evidence.sha256
    response["X-Content-Type-Options"] = "nosniff"
    return response


# ---------------------------------------------------------------- signer keys


class SignerKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    public_key_pem = serializers.CharField(trim_whitespace=False)
    valid_from = serializers.DateTimeField(required=False, allow_null=True, default=None)
    valid_until = serializers.DateTimeField(required=False, allow_null=True, default=None)
    allowed_evidence_types = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class SignerKeyOutput(serializers.ModelSerializer):
    class Meta:
        model = SignerKey
        fields = [
            "key_id",
            "name",
            "algorithm",
            "public_key_pem",
            "valid_from",
            "valid_until",
            "revoked_at",
            "revocation_reason",
            "allowed_evidence_types",
            "created_at",
        ]


class SignerKeyListCreateApi(APIView):
    """The product's trusted evidence-signing keys; registering one needs an administrator or security reviewer."""

    @extend_schema(responses=SignerKeyOutput(many=True))
    def get(self, request, product):
        product = product_for(request, product)
        return Response(SignerKeyOutput(selectors.signer_keys(product), many=True).data)

    @extend_schema(request=SignerKeyInput, responses={201: SignerKeyOutput})
    def post(self, request, product):
        product = product_for(request, product)
        _require_key_admin(request, product)
        data = validated(SignerKeyInput, request.data)
        key = services.signer_key_register(product=product, actor=request.user, **data)
        return Response(SignerKeyOutput(key).data, status=status.HTTP_201_CREATED)


class SignerKeyRevokeApi(APIView):
    @extend_schema(
        request=inline_serializer("SignerKeyRevoke", {"reason": serializers.CharField()}), responses=SignerKeyOutput
    )
    def post(self, request, product, key_id):
        product = product_for(request, product)
        _require_key_admin(request, product)
        from changecontrol.access import get_visible_or_404

        key = get_visible_or_404(SignerKey.objects.all(), user=request.user, token=token_of(request), key_id=key_id)
        if key.product_id != product.pk:
            from django.http import Http404

            raise Http404
        key = services.signer_key_revoke(key=key, actor=request.user, reason=str(request.data.get("reason", "")))
        return Response(SignerKeyOutput(key).data)


def _require_key_admin(request, product: Product) -> None:
    require_person(request, scope=WRITE_SCOPE)
    if not roles_of(request.user, product) & KEY_ADMIN_ROLES:
        raise NotPermitted(f"registering or revoking signer keys of {product.key} needs the admin or security role")
