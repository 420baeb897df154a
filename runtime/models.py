"""The runtime record: deployments, environment snapshots and drift, break-glass and its retrospective review.

These tables were born in the approvals app; they keep their names (`db_table`) and the record types their audit
events and signatures carry (`RECORD_TYPE`), so nothing recorded before the move changes meaning.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models import Decision, Release
from changecontrol.models import Environment, Product, Signature
from common.digests import DIGEST_PATTERN
from evidence.models import Artifact


class Deployment(models.Model):
    """The fact (DEP-<n>) that an artifact reached an environment, with the status decision it had at that moment."""

    RECORD_TYPE = "approvals.deployment"  # the type its audit events and signatures carry
    # Sealed (changecontrol.seals): a deployment is a fact, never edited.
    SEALED_FIELDS = (
        "artifact",
        "authorised",
        "decision",
        "decision_snapshot",
        "deployed_at",
        "deployer",
        "digest",
        "environment",
        "justification",
        "kind",
        "pipeline_url",
        "product",
        "reasons",
        "release",
    )

    class Kind(models.TextChoices):
        NORMAL = "normal", "Normal"
        ROLLBACK = "rollback", "Rollback"
        BREAK_GLASS = "break_glass", "Break-glass"

    HUMAN_PREFIX = "DEP-"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deployments")
    # Empty when no build of the product ever registered the digest: the fact is recorded all the same (§4.6).
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, null=True, blank=True, related_name="deployments")
    digest = models.CharField(max_length=71, help_text="What was deployed, registered or not: sha256:<64 hex>.")
    release = models.ForeignKey(Release, on_delete=models.PROTECT, null=True, blank=True, related_name="deployments")
    pipeline_url = models.CharField(max_length=500, blank=True)
    deployer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    deployed_at = models.DateTimeField(default=timezone.now, help_text="Server UTC time the fact was recorded.")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.NORMAL)
    justification = models.TextField(blank=True)
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decision_snapshot = models.JSONField(default=dict, help_text="The status answer at the moment of deployment.")
    authorised = models.BooleanField()
    reasons = models.JSONField(default=list)

    class Meta:
        db_table = "approvals_deployment"
        ordering = ["-deployed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["normal", "rollback", "break_glass"]), name="%(app_label)s_%(class)s_kind_valid"
            ),
            # Break-glass without a reason is not a break-glass: the service refuses it, the database too.
            models.CheckConstraint(
                condition=~Q(kind="break_glass") | ~Q(justification=""),
                name="%(app_label)s_%(class)s_break_glass_justified",
            ),
            models.CheckConstraint(
                condition=Q(digest__regex=f"^{DIGEST_PATTERN}$"), name="%(app_label)s_%(class)s_digest_format"
            ),
            # Nothing vouches for a digest no build registered: it is never an authorised deployment.
            models.CheckConstraint(
                condition=Q(artifact__isnull=False) | Q(authorised=False),
                name="%(app_label)s_%(class)s_unregistered_unauthorised",
            ),
            # The digest equals the artifact's when there is one: a composite foreign key (artifact_id, digest) →
            # evidence_artifact (id, digest), created in migration 0003 because Django cannot declare one.
        ]
        indexes = [
            # serves the deployment log (per environment, newest first) and the drift "expected" set
            models.Index(fields=["environment", "-deployed_at"]),
            models.Index(fields=["product", "-deployed_at"]),
            # serves drift's "ever authorised here" anti-join by artifact
            models.Index(fields=["artifact", "environment", "authorised"]),
        ]

    def __str__(self) -> str:
        return f"{self.human_id} {self.environment.key}"

    @property
    def human_id(self) -> str:
        return f"DEP-{self.pk}"


class EnvironmentSnapshot(models.Model):
    """What was reported running in an environment; a new immutable row only when the running set changes."""

    RECORD_TYPE = "approvals.environmentsnapshot"  # the type its audit events and signatures carry

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="snapshots")
    taken_at = models.DateTimeField(default=timezone.now)
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    artifacts = models.JSONField(default=list, help_text="[{name, digest}] sorted by digest.")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the sorted running set.")
    last_reported_at = models.DateTimeField(default=timezone.now, help_text="The latest report of this same set.")

    class Meta:
        db_table = "approvals_environmentsnapshot"
        ordering = ["-taken_at", "-id"]
        indexes = [models.Index(fields=["environment", "-taken_at"])]

    def __str__(self) -> str:
        return self.human_id

    @property
    def human_id(self) -> str:
        return f"SNAP-{self.pk}"


class DriftFinding(models.Model):
    """A difference between what runs in an environment and what was approved there; open until a snapshot resolves it."""

    RECORD_TYPE = "approvals.driftfinding"  # the type its audit events and signatures carry

    class Kind(models.TextChoices):
        UNAPPROVED = "unapproved", "Running but never approved here"
        UNKNOWN_PROVENANCE = "unknown_provenance", "Running but never registered by a build"
        MISSING = "missing", "Approved deployment not running"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="drift_findings")
    digest = models.CharField(max_length=71)
    name = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    opened_by = models.ForeignKey(EnvironmentSnapshot, on_delete=models.PROTECT, related_name="opened_findings")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        EnvironmentSnapshot, on_delete=models.PROTECT, null=True, blank=True, related_name="resolved_findings"
    )

    class Meta:
        db_table = "approvals_driftfinding"
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["unapproved", "unknown_provenance", "missing"]),
                name="%(app_label)s_%(class)s_kind_valid",
            ),
            models.CheckConstraint(
                condition=(Q(state="open") & Q(resolved_at__isnull=True))
                | (Q(state="resolved") & Q(resolved_at__isnull=False)),
                name="%(app_label)s_%(class)s_resolved_has_time",
            ),
            # The race guard: one open finding per environment, digest and kind.
            models.UniqueConstraint(
                fields=["environment", "digest", "kind"],
                condition=Q(state="open"),
                name="%(app_label)s_%(class)s_one_open",
            ),
        ]
        indexes = [models.Index(fields=["environment", "state"])]

    def __str__(self) -> str:
        return f"{self.human_id} {self.kind} {self.digest[:19]}"

    @property
    def human_id(self) -> str:
        return f"DRIFT-{self.pk}"


class BreakGlassReview(models.Model):
    """The retrospective review a break-glass deployment demands, signed by a quality reviewer within the window."""

    RECORD_TYPE = "approvals.breakglassreview"  # the type its audit events and signatures carry
    # Sealed (changecontrol.seals): due, then reviewed once with its signature.
    SEALED_FIELDS = (
        "deployment",
        "due_at",
        "findings",
        "product",
        "reviewed_at",
        "reviewer",
        "signature",
        "state",
    )

    class State(models.TextChoices):
        DUE = "due", "Due"
        REVIEWED = "reviewed", "Reviewed"

    deployment = models.OneToOneField(Deployment, on_delete=models.PROTECT, related_name="review")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    due_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.DUE)
    findings = models.TextField(blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    signature = models.ForeignKey(Signature, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        db_table = "approvals_breakglassreview"
        ordering = ["due_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["due", "reviewed"]), name="%(app_label)s_%(class)s_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(state="due")
                | (
                    Q(reviewer__isnull=False)
                    & Q(reviewed_at__isnull=False)
                    & Q(signature__isnull=False)
                    & ~Q(findings="")
                ),
                name="%(app_label)s_%(class)s_reviewed_is_signed",
            ),
        ]
        indexes = [models.Index(fields=["state", "due_at"])]

    def __str__(self) -> str:
        return self.human_id

    @property
    def human_id(self) -> str:
        return f"BGR-{self.pk}"

    def is_overdue(self, at=None) -> bool:
        return self.state == self.State.DUE and (at or timezone.now()) > self.due_at


class Advisory(models.Model):
    """An OSV advisory as imported (id, aliases, the affected packages and ranges), replaced by a newer `modified`."""

    osv_id = models.CharField(max_length=200, unique=True)  # serves the import's upsert and the finding's link
    aliases = models.JSONField(default=list, blank=True)
    summary = models.TextField(blank=True)
    modified = models.DateTimeField(null=True, blank=True)
    withdrawn = models.DateTimeField(null=True, blank=True)
    document = models.JSONField(help_text="The OSV record as imported.")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the canonical JSON of the record.")
    imported_at = models.DateTimeField(default=timezone.now)
    packages = models.JSONField(default=list, blank=True, help_text="The purls (no version) the advisory affects.")

    class Meta:
        ordering = ["osv_id"]
        # serves matching a newly running artifact's components against every stored advisory
        indexes = [GinIndex(fields=["packages"], name="runtime_advisory_packages_gin")]

    def __str__(self) -> str:
        return self.osv_id

    @property
    def ids(self) -> list[str]:
        return [self.osv_id, *self.aliases]


class AdvisoryFinding(models.Model):
    """A released artifact running somewhere whose SBOM lists a package an advisory affects (FDA 524B monitoring)."""

    RECORD_TYPE = "runtime.advisoryfinding"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed by VEX"

    HUMAN_PREFIX = "VULN-"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="advisory_findings")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="advisory_findings")
    advisory = models.ForeignKey(Advisory, on_delete=models.PROTECT, related_name="findings")
    components = models.JSONField(default=list, help_text="[{name, version, purl}] the advisory affects.")
    environments = models.JSONField(default=list, help_text="[{product, environment, via}] running it when opened.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        "evidence.VexStatement", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["open", "closed"]), name="%(app_label)s_%(class)s_state_valid"
            ),
            models.CheckConstraint(
                condition=(Q(state="open") & Q(closed_at__isnull=True))
                | (Q(state="closed") & Q(closed_at__isnull=False) & Q(closed_by__isnull=False)),
                name="%(app_label)s_%(class)s_closed_by_vex",
            ),
            # One finding per release, artifact and advisory: a re-import never opens it twice.
            models.UniqueConstraint(
                fields=["release", "artifact", "advisory"], name="%(app_label)s_%(class)s_one_per_release"
            ),
        ]
        indexes = [models.Index(fields=["product", "state"])]  # serves the dashboard card

    def __str__(self) -> str:
        return f"{self.human_id} {self.advisory.osv_id}"

    @property
    def human_id(self) -> str:
        return f"VULN-{self.pk}"
