"""Writes of release exports (issue 7): request a rendering of the packet or bundle, and render it.

A rendering is kept with its sha256 under `exports/` in default storage, and is reused for as long as the
release's facts (`packets.release_state_sha256`) are unchanged. Rendering runs in a Celery task and moves
`progress` in small committed steps so a page or an API client can poll it.
"""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from changecontrol import audit
from changecontrol.models import User
from reports.models import ReleaseExport
from reports.packets import release_state_sha256, render_packet_pdf

EXTENSIONS = {ReleaseExport.Kind.PACKET: "pdf", ReleaseExport.Kind.BUNDLE: "zip"}


def current_export(*, release, kind: str, state_sha256: str | None = None) -> ReleaseExport | None:
    """The newest finished rendering of the release as it is now, if there is one."""
    state_sha256 = state_sha256 or release_state_sha256(release)
    return (
        ReleaseExport.objects.filter(release=release, kind=kind, release_state_sha256=state_sha256, state="done")
        .order_by("-pk")
        .first()
    )


@transaction.atomic
def release_export_request(*, release, kind: str, actor: User) -> tuple[ReleaseExport, bool]:
    """A queued or running rendering of the release's current state: the one in flight, or a new one."""
    from approvals.models import Release

    # 1. Lock the release so two simultaneous downloads queue one rendering, not two.
    release = Release.objects.select_for_update().select_related("product").get(pk=release.pk)
    state_sha256 = release_state_sha256(release)
    in_flight = (
        ReleaseExport.objects.filter(
            release=release, kind=kind, release_state_sha256=state_sha256, state__in=["queued", "rendering"]
        )
        .order_by("-pk")
        .first()
    )
    if in_flight is not None:
        return in_flight, False
    export = ReleaseExport.objects.create(
        release=release, kind=kind, release_state_sha256=state_sha256, requested_by=actor
    )
    # Recorded against the export, not the release: a download must not change the facts it describes.
    audit.record(
        actor=actor,
        action="release_export.requested",
        obj=export,
        product_key=release.product.key,
        after={"release": release.human_id, "kind": kind, "release_state_sha256": state_sha256},
    )
    return export, True


def _set_progress(export_id: int, **fields) -> None:
    # Its own short transaction, committed at once, so pollers see progress while the rendering runs.
    with transaction.atomic():
        ReleaseExport.objects.filter(pk=export_id).update(**fields)


def _packet_bytes(export: ReleaseExport) -> bytes:
    """A bundle carries the packet of the same release state: reuse a kept one, else render it now."""
    kept = current_export(
        release=export.release, kind=ReleaseExport.Kind.PACKET, state_sha256=export.release_state_sha256
    )
    if kept is not None:
        with default_storage.open(kept.storage_name, "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() == kept.sha256:
            return data
    return render_packet_pdf(export.release, generated_by=export.requested_by)


def release_export_render(*, export_id: int) -> ReleaseExport | None:
    """Render one export; a finished one is left as it is (the task may be delivered twice)."""
    from reports.bundles import build_release_bundle

    # 1. Claim it: only a queued (or a crashed, still "rendering") export is worked on.
    with transaction.atomic():
        export = (
            ReleaseExport.objects.select_for_update()
            .select_related("release", "release__product", "requested_by")
            .filter(pk=export_id)
            .first()
        )
        if export is None or export.is_finished():
            return export
        export.state, export.progress = ReleaseExport.State.RENDERING, 5
        export.save(update_fields=["state", "progress"])
    try:
        # 2. Render.
        if export.kind == ReleaseExport.Kind.PACKET:
            data = render_packet_pdf(export.release, generated_by=export.requested_by)
            _set_progress(export.pk, progress=80)
        else:
            pdf = _packet_bytes(export)
            _set_progress(export.pk, progress=50)
            data = build_release_bundle(export.release, pdf_bytes=pdf)
            _set_progress(export.pk, progress=90)
        # 3. Keep the bytes under their sha256 (content-addressed: a name is never overwritten).
        sha256 = hashlib.sha256(data).hexdigest()
        name = f"exports/{export.release.product.key}/{export.kind}-{sha256}.{EXTENSIONS[export.kind]}"
        if not default_storage.exists(name):
            name = default_storage.save(name, ContentFile(data))
    except Exception as error:
        with transaction.atomic():
            ReleaseExport.objects.filter(pk=export.pk).update(
                state=ReleaseExport.State.FAILED,
                error=f"{type(error).__name__}: {error}"[:2000],
                finished_at=timezone.now(),
            )
            audit.record(
                actor=None,
                action="release_export.failed",
                obj=export,
                product_key=export.release.product.key,
                reason=f"{type(error).__name__}: {error}"[:500],
            )
        raise
    # 4. Done, and recorded.
    with transaction.atomic():
        export = ReleaseExport.objects.select_for_update().get(pk=export.pk)
        export.state, export.progress = ReleaseExport.State.DONE, 100
        export.sha256, export.size, export.storage_name = sha256, len(data), name
        export.finished_at = timezone.now()
        export.save(update_fields=["state", "progress", "sha256", "size", "storage_name", "finished_at"])
        audit.record(
            actor=None,
            action="release_export.rendered",
            obj=export,
            product_key=export.release.product.key,
            after={"kind": export.kind, "sha256": sha256, "size": len(data), "storage_name": name},
        )
    return export
