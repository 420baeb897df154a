"""Releases, their promotions into environments, and the stored answers of the status API."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from changecontrol.models import ChangeRequest, Environment, PolicyVersion, Product
from evidence.models import Artifact

# A version is one path segment of /api/v1/releases/{product}/{version} and of the release page's URL, so it
# holds only characters that need no escaping there: semver (7.2.4, 1.0.0-rc.1, 1.0.0+build.5) and calendar
# versions (2025.03.1) fit; '/' would split the segment, and a leading '.' could make it '.' or '..'. The service
# (approvals.releases) and the page's form check it, and the database holds every row to it (the same regex reads
# the same in Python and PostgreSQL; \A and \Z, not ^ and $, so a trailing newline never passes).
RELEASE_VERSION_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+\-]*"
# /products/{product}/releases/new is the form that creates a release.
RESERVED_RELEASE_VERSIONS = ("new",)


class Release(models.Model):
    """A named version of a product: a set of artifact digests and the change requests it delivers."""

    # Sealed once frozen (changecontrol.seals): the signed manifest and what the release holds.
    SEALED_FIELDS = (
        "frozen_at",
        "manifest",
        "manifest_key_id",
        "manifest_sha256",
        "manifest_signature",
        "product",
        "version",
    )
    SEALED_RELATED = ("artifacts", "change_requests")
    SEALED_WHEN = Q(frozen_at__isnull=False)

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
            models.CheckConstraint(
                condition=Q(version__regex=rf"\A{RELEASE_VERSION_PATTERN}\Z")
                & ~Q(version__in=RESERVED_RELEASE_VERSIONS),
                name="%(app_label)s_%(class)s_version_valid",
            ),
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
        # Approved, then an input it was approved on changed before deployment (new evidence, a policy activated,
        # a change request reset): its approvals no longer count and it is judged, and signed, again.
        REOPENED = "reopened", "Reopened"

    OPEN_STATES = ("requested", "awaiting_approval", "approved", "reopened")
    # Open and waiting for signatures: what the signing dialog, the inbox and `_settle` act on.
    SIGNABLE_STATES = ("awaiting_approval", "reopened")
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
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopen_reason = models.TextField(blank=True, help_text="What changed after approval (the last time it reopened).")

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
                        "reopened",
                    ]
                ),
                name="%(app_label)s_%(class)s_state_valid",
            ),
            # The race guard: two requests for the same release and environment cannot both be open.
            models.UniqueConstraint(
                fields=["release", "environment"],
                condition=Q(state__in=["requested", "awaiting_approval", "approved", "reopened"]),
                name="%(app_label)s_%(class)s_one_open",
            ),
            models.CheckConstraint(
                condition=~Q(state="rejected") | ~Q(rejection_reason=""),
                name="%(app_label)s_%(class)s_rejection_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(state="reopened") | ~Q(reopen_reason=""),
                name="%(app_label)s_%(class)s_reopened_has_reason",
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

    def awaits_signatures(self) -> bool:
        return self.state in self.SIGNABLE_STATES


class Decision(models.Model):
    """One answer of the status API, stored when it changes, with the inputs and policy version it used."""

    # Sealed (changecontrol.seals): a decision is what was decided, never edited.
    SEALED_FIELDS = (
        "answer_sha256",
        "approvals",
        "artifact",
        "decision",
        "environment",
        "evaluated_at",
        "gates",
        "inputs",
        "inputs_sha256",
        "policy_version",
        "promotion",
        "reasons",
    )

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


class AcceptedFailure(models.Model):
    """A reviewer's signed acceptance (AF-<n>) of one failing test for one release, with its justification."""

    # Sealed (changecontrol.seals), and the database refuses any change (common.table_guards): an acceptance is what
    # was signed. Its Part 11 signature (meaning "failure accepted") names it as its subject.
    SEALED_FIELDS = (
        "accepted_at",
        "accepted_by",
        "classname",
        "failures",
        "justification",
        "name",
        "policy_version",
        "problem_report",
        "release",
        "tier",
    )

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="accepted_failures")
    classname = models.CharField(max_length=500, blank=True)
    name = models.CharField(max_length=1000)
    failures = models.JSONField(help_text="The failing results the reviewer saw: evidence, artifact, status, message.")
    justification = models.TextField()
    problem_report = models.CharField(
        max_length=200, blank=True, help_text="A reference to the problem report that tracks the failure (free text)."
    )
    tier = models.CharField(max_length=20, help_text="The release's tier when the failure was accepted.")
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    accepted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["release", "id"]
        constraints = [
            # One acceptance per test and release (also the race guard for two reviewers accepting at once).
            models.UniqueConstraint(
                fields=["release", "classname", "name"], name="%(app_label)s_%(class)s_one_per_test"
            ),
            models.CheckConstraint(condition=~Q(justification=""), name="%(app_label)s_%(class)s_justified"),
        ]

    HUMAN_PREFIX = "AF-"

    def __str__(self) -> str:
        return f"{self.human_id} {self.test} in {self.release}"

    @property
    def human_id(self) -> str:
        return f"AF-{self.pk}"

    @property
    def product(self) -> Product:
        return self.release.product

    @property
    def test(self) -> str:
        return test_key(self.classname, self.name)


def test_key(classname: str, name: str) -> str:
    """How a test is named to people and in the API: `classname::name` (the name alone without a class)."""
    return f"{classname}::{name}" if classname else name
