"""GET a release's PDF packet or evidence bundle: 200 with the file when a rendering of its current state is
kept, else 202 with progress while a Celery worker renders it (DESIGN §7). Hidden releases are 404."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from changecontrol.access import get_visible_or_404
from changecontrol.api_base import parse_human_id, token_of
from evidence.exports import current_export, release_export_request
from evidence.models import ReleaseExport

CONTENT_TYPES = {ReleaseExport.Kind.PACKET: "application/pdf", ReleaseExport.Kind.BUNDLE: "application/zip"}


class ExportStatusOutput(serializers.Serializer):
    id = serializers.CharField(source="human_id")
    kind = serializers.CharField()
    state = serializers.CharField()
    progress = serializers.IntegerField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    requested_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    def get_status_url(self, export) -> str:
        return reverse("api-release-export", kwargs={"export_id": export.human_id})

    def get_download_url(self, export) -> str:
        name = "api-release-packet" if export.kind == ReleaseExport.Kind.PACKET else "api-release-bundle"
        return reverse(name, kwargs={"product": export.release.product.key, "version": export.release.version})


def _release_for(request, product: str, version: str):
    from approvals.models import Release

    return get_visible_or_404(
        Release.objects.select_related("product", "created_by"),
        user=request.user,
        token=token_of(request),
        product__key=product,
        version=version,
    )


def _file_response(release, export: ReleaseExport) -> FileResponse:
    extension = "pdf" if export.kind == ReleaseExport.Kind.PACKET else "zip"
    filename = f"{release.product.key}-{release.version}-{export.kind}.{extension}".replace('"', "").replace("/", "_")
    response = FileResponse(
        default_storage.open(export.storage_name, "rb"),
        as_attachment=True,
        filename=filename,
        content_type=CONTENT_TYPES[export.kind],
    )
    response["X-Content-SHA256"] = export.sha256
    response["X-Content-Type-Options"] = "nosniff"
    return response


class _ReleaseExportApi(APIView):
    kind: str = ""

    @extend_schema(responses={(200, "application/octet-stream"): bytes, 202: ExportStatusOutput})
    def get(self, request, product, version):
        release = _release_for(request, product, version)
        done = current_export(release=release, kind=self.kind)
        if done is not None:
            return _file_response(release, done)
        export, created = release_export_request(release=release, kind=self.kind, actor=request.user)
        if created:
            from evidence.export_tasks import render_release_export

            transaction.on_commit(lambda: render_release_export.delay(export.pk))
        return Response(ExportStatusOutput(export).data, status=status.HTTP_202_ACCEPTED)


class ReleasePacketApi(_ReleaseExportApi):
    """The PDF release packet of a release (auditors may download; nothing changes)."""

    kind = ReleaseExport.Kind.PACKET


class ReleaseBundleApi(_ReleaseExportApi):
    """The signed evidence bundle of a release, verifiable offline with `custody verify-bundle`."""

    kind = ReleaseExport.Kind.BUNDLE


class ReleaseExportDetailApi(APIView):
    """The state and progress of one rendering (EXP-<n>)."""

    @extend_schema(responses=ExportStatusOutput)
    def get(self, request, export_id):
        export = get_visible_or_404(
            ReleaseExport.objects.select_related("release", "release__product"),
            user=request.user,
            token=token_of(request),
            product_field="release__product",
            pk=parse_human_id(export_id, "EXP-"),
        )
        return Response(ExportStatusOutput(export).data)
