"""Releases, their promotions into environments, and the stored answers of the status API."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from changecontrol.models import ChangeRequest, Environment, PolicyVersion, Product
from evidence.models import Artifact


class Release(models.Model):
    """A named version of a product: a set of artifact digests and the change requests it delivers."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="releases")
    version = models.CharField(max_length=100)
    artifacts = models.ManyToManyField(Artifact, related_name="releases")
    change_requests = models.ManyToManyField(ChangeRequest, related_name="releases", blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # Frozen at the first promotion request: from then on the manifest below is the release.
    frozen_at = models.DateTimeField(null=True, blank=True)
    manifest = models.JSONField(null=True, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    manifest_key_id = models.CharField(max_length=64, blank=True)
    manifest_signature = models.TextField(blank=True, help_text="Base64 Ed25519 signature by Custody's key.")

    class Meta:
        ordering = ["product", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "version"], name="%(app_label)s_%(class)s_unique_version"),
            # A frozen release always carries its signed manifest.
            models.CheckConstraint(
                condition=Q(frozen_at__isnull=True) | ~Q(manifest_sha256=""),
                name="%(app_label)s_%(class)s_frozen_has_manifest",
            ),
        ]

    def __str__(self) -> str:
        return self.human_id

    @property
    def human_id(self) -> str:
        return f"{self.product.key} {self.version}"

    def is_frozen(self) -> bool:
        return self.frozen_at is not None


class Promotion(models.Model):
    """A request (PRM-<n>) to move a release into an environment, judged by the policy and its approvals."""

    class State(models.TextChoices):
        REQUESTED = "requested", "Requested"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved"
        DEPLOYED = "deployed", "Deployed"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        SUPERSEDED = "superseded", "Superseded"

    OPEN_STATES = ("requested", "awaiting_approval", "approved")
    PASSED_STATES = ("approved", "deployed")

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="promotions")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="promotions")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.REQUESTED)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    tier = models.CharField(max_length=20, blank=True, help_text="The highest tier among the release's CRs.")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    state__in=[
                        "requested",
                        "awaiting_approval",
                        "approved",
                        "deployed",
                        "rejected",
                        "expired",
                        "superseded",
                    ]
                ),
                name="%(app_label)s_%(class)s_state_valid",
            ),
            # The race guard: two requests for the same release and environment cannot both be open.
            models.UniqueConstraint(
                fields=["release", "environment"],
                condition=Q(state__in=["requested", "awaiting_approval", "approved"]),
                name="%(app_label)s_%(class)s_one_open",
            ),
            models.CheckConstraint(
                condition=~Q(state="rejected") | ~Q(rejection_reason=""),
                name="%(app_label)s_%(class)s_rejection_has_reason",
            ),
        ]
        indexes = [models.Index(fields=["environment", "state"])]

    HUMAN_PREFIX = "PRM-"

    def __str__(self) -> str:
        return f"{self.human_id} {self.release.version} → {self.environment.key}"

    @property
    def human_id(self) -> str:
        return f"PRM-{self.pk}"

    @property
    def product(self) -> Product:
        return self.release.product

    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class Decision(models.Model):
    """One answer of the status API, stored when it changes, with the inputs and policy version it used."""

    class Outcome(models.TextChoices):
        ALLOWED = "allowed", "Allowed"
        BLOCKED = "blocked", "Blocked"
        PENDING = "pending", "Pending"

    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="decisions")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="decisions")
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions")
    decision = models.CharField(max_length=10, choices=Outcome.choices)
    gates = models.JSONField(default=list)
    approvals = models.JSONField(default=dict)
    reasons = models.JSONField(default=list)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    inputs = models.JSONField(default=dict, help_text="The facts the answer was computed from (for replay).")
    inputs_sha256 = models.CharField(max_length=64)
    answer_sha256 = models.CharField(max_length=64)
    evaluated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=["allowed", "blocked", "pending"]),
                name="%(app_label)s_%(class)s_decision_valid",
            ),
        ]
        # serves "the latest answer for this digest and environment"
        indexes = [models.Index(fields=["artifact", "environment", "-id"])]

    def __str__(self) -> str:
        return f"{self.human_id} {self.decision}"

    @property
    def human_id(self) -> str:
        return f"DEC-{self.pk}"


# ---------------------------------------------------------------- runtime: deployments, snapshots, drift, break-glass


class Deployment(models.Model):
    """The fact (DEP-<n>) that an artifact reached an environment, with the status decision it had at that moment."""

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
                condition=Q(digest__regex=r"^sha256:[0-9a-f]{64}$"), name="%(app_label)s_%(class)s_digest_format"
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

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="snapshots")
    taken_at = models.DateTimeField(default=timezone.now)
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    artifacts = models.JSONField(default=list, help_text="[{name, digest}] sorted by digest.")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the sorted running set.")
    last_reported_at = models.DateTimeField(default=timezone.now, help_text="The latest report of this same set.")

    class Meta:
        ordering = ["-taken_at", "-id"]
        indexes = [models.Index(fields=["environment", "-taken_at"])]

    def __str__(self) -> str:
        return self.human_id

    @property
    def human_id(self) -> str:
        return f"SNAP-{self.pk}"


class DriftFinding(models.Model):
    """A difference between what runs in an environment and what was approved there; open until a snapshot resolves it."""

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
    signature = models.ForeignKey(
        "changecontrol.Signature", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
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
