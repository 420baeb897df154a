"""Traceability: requirements, hazards and risk controls, their versions and links, and release baselines.

These tables were born in the core app; they keep their names (`db_table`) and the record types their audit
events and signatures carry (`RECORD_TYPE`), so nothing recorded before the move changes meaning.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from changecontrol.models import ChangeRequest, Product


class TraceItem(models.Model):
    """A requirement, hazard or risk control of one product, as it reads in its current version."""

    RECORD_TYPE = "changecontrol.traceitem"  # the type its audit events and signatures carry

    class Kind(models.TextChoices):
        REQUIREMENT = "requirement", "Requirement"
        HAZARD = "hazard", "Hazard"
        RISK_CONTROL = "risk_control", "Risk control"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="trace_items")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    identifier = models.CharField(max_length=120, help_text="REQ-017, HAZ-3, RC-5, or the ID of the tool it came from.")
    title = models.CharField(max_length=500)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=60, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    # ISO 14971 risk analysis; hazards only (empty otherwise).
    hazardous_situation = models.TextField(blank=True)
    harm = models.TextField(blank=True)
    severity = models.CharField(max_length=60, blank=True)
    probability = models.CharField(max_length=60, blank=True)
    initial_risk = models.CharField(max_length=60, blank=True)
    residual_risk = models.CharField(max_length=60, blank=True)
    acceptability = models.CharField(max_length=60, blank=True)
    version = models.PositiveIntegerField(default=1)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the versioned content (item_formats).")
    # Copied from the current version so the trace matrix compares test times without a join.
    version_created_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "changecontrol_traceitem"
        ordering = ["product", "kind", "identifier"]
        constraints = [
            models.UniqueConstraint(fields=["product", "identifier"], name="%(app_label)s_%(class)s_unique_identifier"),
            models.CheckConstraint(
                condition=Q(kind__in=["requirement", "hazard", "risk_control"]),
                name="%(app_label)s_%(class)s_kind_valid",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="%(app_label)s_%(class)s_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.identifier} {self.title}"

    @property
    def human_id(self) -> str:
        return self.identifier

    @property
    def content_version(self) -> int:
        return self.version


class TraceItemVersion(models.Model):
    """One immutable version of an item's content; a content edit makes the next one."""

    RECORD_TYPE = "changecontrol.traceitemversion"  # the type its audit events and signatures carry

    item = models.ForeignKey(TraceItem, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=500)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=60, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    hazard = models.JSONField(default=dict, blank=True, help_text="The ISO 14971 fields of a hazard, by name.")
    fingerprint = models.CharField(max_length=64)
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "changecontrol_traceitemversion"
        ordering = ["item", "version"]
        constraints = [
            models.UniqueConstraint(fields=["item", "version"], name="%(app_label)s_%(class)s_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.item.identifier} v{self.version}"


class TraceLink(models.Model):
    """A typed, directed link between two items of one product; suspect when its upstream end changed."""

    RECORD_TYPE = "changecontrol.tracelink"  # the type its audit events and signatures carry

    class Kind(models.TextChoices):
        IMPLEMENTS = "implements", "risk control is implemented by requirement"
        MITIGATES = "mitigates", "risk control mitigates hazard"
        DERIVES_FROM = "derives_from", "requirement derives from requirement"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="trace_links")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.ForeignKey(TraceItem, on_delete=models.PROTECT, related_name="links_out")
    target = models.ForeignKey(TraceItem, on_delete=models.PROTECT, related_name="links_in")
    suspect = models.BooleanField(default=False)
    suspect_since = models.DateTimeField(null=True, blank=True)
    suspect_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_comment = models.TextField(blank=True)

    class Meta:
        db_table = "changecontrol_tracelink"
        ordering = ["product", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "kind"], name="%(app_label)s_%(class)s_unique_link"),
            models.CheckConstraint(
                condition=Q(kind__in=["implements", "mitigates", "derives_from"]),
                name="%(app_label)s_%(class)s_kind_valid",
            ),
            models.CheckConstraint(
                condition=~Q(source=models.F("target")), name="%(app_label)s_%(class)s_not_to_itself"
            ),
            models.CheckConstraint(
                condition=Q(suspect=False) | Q(suspect_since__isnull=False),
                name="%(app_label)s_%(class)s_suspect_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.human_id

    @property
    def human_id(self) -> str:
        return f"{self.source.identifier} {self.kind} {self.target.identifier}"

    def upstream_is_source(self) -> bool:
        """Risk controls sit upstream of the requirements implementing them; hazards and parents of the rest."""
        return self.kind == self.Kind.IMPLEMENTS


class ChangeRequestItem(models.Model):
    """A change request's explicit statement that it affects a requirement, hazard or risk control."""

    RECORD_TYPE = "changecontrol.changerequestitem"  # the type its audit events and signatures carry

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="item_links")
    item = models.ForeignKey(TraceItem, on_delete=models.PROTECT, related_name="change_links")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "changecontrol_changerequestitem"
        ordering = ["change_request", "item"]
        constraints = [
            models.UniqueConstraint(fields=["change_request", "item"], name="%(app_label)s_%(class)s_unique_link"),
        ]

    def __str__(self) -> str:
        return f"CR-{self.change_request_id} affects {self.item.identifier}"


class TraceBaseline(models.Model):
    """The frozen trace snapshot of one release (items, versions, links, results); never changes afterwards."""

    RECORD_TYPE = "changecontrol.tracebaseline"  # the type its audit events and signatures carry
    SEALED_FIELDS = (
        "content",
        "product",
        "release_version",
        "sha256",
        "taken_at",
        "taken_by",
    )

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="trace_baselines")
    release_version = models.CharField(max_length=100)
    taken_at = models.DateTimeField(default=timezone.now)
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    content = models.JSONField()
    sha256 = models.CharField(max_length=64, help_text="Of the canonical JSON of `content`.")

    class Meta:
        db_table = "changecontrol_tracebaseline"
        ordering = ["product", "-taken_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "release_version"], name="%(app_label)s_%(class)s_unique_release"
            ),
        ]

    def __str__(self) -> str:
        return self.human_id

    @property
    def human_id(self) -> str:
        return f"{self.product.key} {self.release_version} baseline"
