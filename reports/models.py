"""What auditors take away and Custody keeps: each rendering of a release's packet or evidence bundle.

The table was born in the evidence app; it keeps its name (`db_table`) and record type (`RECORD_TYPE`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models import Release


class ReleaseExport(models.Model):
    """One rendering of a release's PDF packet or evidence bundle, kept with its sha256 (issue 7)."""

    RECORD_TYPE = "evidence.releaseexport"  # the type its audit events and signatures carry

    class Kind(models.TextChoices):
        PACKET = "packet", "PDF release packet"
        BUNDLE = "bundle", "Evidence bundle (zip)"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RENDERING = "rendering", "Rendering"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="exports")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done while rendering.")
    release_state_sha256 = models.CharField(
        max_length=64, help_text="Of the release's facts when requested: a later change needs a new rendering."
    )
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    storage_name = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "evidence_releaseexport"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["packet", "bundle"]), name="%(app_label)s_%(class)s_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["queued", "rendering", "done", "failed"]),
                name="%(app_label)s_%(class)s_state_valid",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="%(app_label)s_%(class)s_progress_percent"),
            # A finished rendering always names its bytes.
            models.CheckConstraint(
                condition=~Q(state="done") | (~Q(sha256="") & ~Q(storage_name="")),
                name="%(app_label)s_%(class)s_done_has_file",
            ),
        ]
        # serves "is there a rendering of this release's current state?"
        indexes = [models.Index(fields=["release", "kind", "release_state_sha256"])]

    def __str__(self) -> str:
        return f"{self.human_id} {self.kind} of release #{self.release_id} ({self.state})"

    @property
    def human_id(self) -> str:
        return f"EXP-{self.pk}"

    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)
