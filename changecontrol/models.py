"""The core domain: people and roles, products, policies, change requests, signatures, the audit trail."""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone


class User(AbstractUser):
    """A person or a service account that acts in Custody."""

    full_name = models.CharField(max_length=200, blank=True, help_text="Printed name shown with signatures.")
    is_service_account = models.BooleanField(default=False)
    failed_login_count = models.PositiveIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)

    @property
    def printed_name(self) -> str:
        return self.full_name or self.get_full_name() or self.username

    def is_locked(self) -> bool:
        if self.locked_at is None:
            return False
        minutes = settings.CUSTODY_LOCKOUT_MINUTES
        if minutes == 0:
            return True
        return timezone.now() < self.locked_at + timezone.timedelta(minutes=minutes)

    def __str__(self) -> str:
        return self.printed_name


class Role(models.TextChoices):
    """The one role vocabulary: product permissions, global groups and policy documents all use these values."""

    ENGINEER = "engineer", "Engineer"
    RELEASE_MANAGER = "release_manager", "Release manager"
    QUALITY = "quality", "Quality reviewer"
    SECURITY = "security", "Security reviewer"
    PRODUCT = "product", "Product owner"
    SRE = "sre", "SRE"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Administrator"

    @classmethod
    def in_sentence(cls, value: str) -> str:
        """'quality' → 'quality reviewer', for "needs a signature from a quality reviewer"; acronyms stay."""
        if value not in cls.values:
            return value
        label = cls(value).label
        return label if label.isupper() else label[0].lower() + label[1:]


class Product(models.Model):
    """A software system under change control, with its IEC 62304 safety class."""

    class SafetyClass(models.TextChoices):
        A = "A", "Class A — no injury or damage to health is possible"
        B = "B", "Class B — non-serious injury is possible"
        C = "C", "Class C — death or serious injury is possible"

    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    safety_class = models.CharField(max_length=1, choices=SafetyClass.choices)
    safety_rationale = models.TextField()
    repository_url = models.URLField(blank=True, help_text="Source repository; provenance must name it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]
        permissions = [(f"role_{role}", f"Holds the {label} role") for role, label in Role.choices]
        constraints = [
            models.CheckConstraint(
                condition=Q(safety_class__in=["A", "B", "C"]), name="%(app_label)s_%(class)s_safety_class_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.key


class Environment(models.Model):
    """A place a product runs, in promotion order (integration → staging → production)."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="environments")
    key = models.SlugField(max_length=40)
    name = models.CharField(max_length=100)
    order = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["product", "order"]
        constraints = [
            models.UniqueConstraint(fields=["product", "key"], name="%(app_label)s_%(class)s_unique_key"),
            models.UniqueConstraint(fields=["product", "order"], name="%(app_label)s_%(class)s_unique_order"),
        ]

    def __str__(self) -> str:
        return f"{self.product.key}/{self.key}"


class PolicyVersion(models.Model):
    """One immutable version of a product's policy document (YAML), with who uploaded it and why."""

    # Sealed (changecontrol.seals): the document and its state, in the audit event of each change.
    SEALED_FIELDS = (
        "activated_at",
        "author",
        "created_at",
        "product",
        "reason",
        "sha256",
        "source",
        "state",
        "version",
    )

    class State(models.TextChoices):
        PROPOSED = "proposed", "Proposed — awaiting a quality reviewer's signature"
        ACTIVE = "active", "Active"
        SUPERSEDED = "superseded", "Superseded"
        REJECTED = "rejected", "Rejected"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="policy_versions")
    version = models.PositiveIntegerField()
    source = models.TextField()
    sha256 = models.CharField(max_length=64)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PROPOSED)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["product", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["product", "version"], name="%(app_label)s_%(class)s_unique_version"),
            models.UniqueConstraint(
                fields=["product"], condition=Q(state="active"), name="%(app_label)s_%(class)s_one_active"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["proposed", "active", "superseded", "rejected"]),
                name="%(app_label)s_%(class)s_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.key} policy v{self.version}"

    @property
    def human_id(self) -> str:
        return f"{self.product.key} policy v{self.version}"

    @property
    def document(self):
        """The parsed document (validated when the version was stored)."""
        return _parsed_policy(self.sha256, self.source)


@functools.lru_cache(maxsize=64)
def _parsed_policy(sha256: str, source: str):
    # Versions are immutable and keyed by their sha256, so one parse per process serves every row that
    # carries the version (a list of 500 change requests used to parse the YAML 500 times).
    from changecontrol.policy import parse_policy

    return parse_policy(source)


class ChangeRequest(models.Model):
    """A proposed change (CR-<n>): why, what, its risk tier and its approval state."""

    class Kind(models.TextChoices):
        CODE = "code", "Code"
        CONFIGURATION = "configuration", "Configuration"
        OPERATIONAL = "operational", "Operational"
        FEATURE_FLAG = "feature_flag", "Feature flag"

    class Type(models.TextChoices):
        STANDARD = "standard", "Standard (pre-approved)"
        NORMAL = "normal", "Normal"
        EMERGENCY = "emergency", "Emergency"

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        IMPLEMENTED = "implemented", "Implemented"
        CLOSED = "closed", "Closed"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="change_requests")
    title = models.CharField(max_length=200)
    why = models.TextField("why", blank=True)
    what_changes = models.TextField(blank=True)
    affected_items = models.TextField(blank=True, help_text="Modules, services, requirements or hazards touched.")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CODE)
    change_type = models.CharField(max_length=20, choices=Type.choices, default=Type.NORMAL)
    verification_plan = models.TextField(blank=True)
    rollback_plan = models.TextField(blank=True)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requested_changes")
    # Everyone who wrote the CR's content; none of them may approve it (separation of duties).
    authors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="authored_changes", blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    risk_answers = models.JSONField(default=dict, blank=True)
    risk_score = models.PositiveIntegerField(null=True, blank=True)
    tier = models.CharField(max_length=20, blank=True)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    content_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    approved_automatically = models.BooleanField(default=False)
    rejection_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    state__in=["draft", "submitted", "approved", "implemented", "closed", "rejected", "withdrawn"]
                ),
                name="%(app_label)s_%(class)s_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["code", "configuration", "operational", "feature_flag"]),
                name="%(app_label)s_%(class)s_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(change_type__in=["standard", "normal", "emergency"]),
                name="%(app_label)s_%(class)s_type_valid",
            ),
            # Submitted and later states always carry a computed tier and its policy version.
            models.CheckConstraint(
                condition=Q(state__in=["draft", "withdrawn"]) | (~Q(tier="") & Q(policy_version__isnull=False)),
                name="%(app_label)s_%(class)s_classified_when_submitted",
            ),
        ]
        indexes = [models.Index(fields=["product", "state"])]

    HUMAN_PREFIX = "CR-"
    # What a person writes; editing any of it after approval resets the approval (risk answers aside).
    CONTENT_FIELDS = (
        "title",
        "why",
        "what_changes",
        "affected_items",
        "kind",
        "change_type",
        "verification_plan",
        "rollback_plan",
    )

    def __str__(self) -> str:
        return f"{self.human_id} {self.title}"

    @property
    def human_id(self) -> str:
        return f"{self.HUMAN_PREFIX}{self.pk}"

    def canonical_content(self) -> dict:
        """What a signature on this CR is bound to: editing any of it invalidates the approval."""
        return {
            "id": self.human_id,
            "product": self.product.key,
            "content_version": self.content_version,
            "title": self.title,
            "why": self.why,
            "what_changes": self.what_changes,
            "affected_items": self.affected_items,
            "kind": self.kind,
            "type": self.change_type,
            "verification_plan": self.verification_plan,
            "rollback_plan": self.rollback_plan,
            "risk_answers": self.risk_answers,
            "risk_score": self.risk_score,
            "tier": self.tier,
            "policy_version": self.policy_version.version if self.policy_version_id else None,
        }

    def is_editable(self) -> bool:
        return self.state in (self.State.DRAFT, self.State.SUBMITTED, self.State.APPROVED)


class Signature(models.Model):
    """An electronic signature (21 CFR Part 11 §11.50): who, printed name, when, meaning, role, what content."""

    # Sealed (changecontrol.seals): everything but the id; only an invalidation (with its reason) may follow.
    SEALED_FIELDS = (
        "comment",
        "content",
        "content_sha256",
        "expires_at",
        "invalidated_at",
        "invalidated_reason",
        "meaning",
        "policy_version",
        "printed_name",
        "product",
        "role",
        "signed_at",
        "signer",
        "subject_human_id",
        "subject_id",
        "subject_type",
    )

    class Meaning(models.TextChoices):
        REVIEWED = "reviewed", "Reviewed"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        RELEASED = "released", "Released"
        BREAK_GLASS_AUTHORISED = "break_glass_authorised", "Break-glass authorised"
        RETROSPECTIVE_REVIEWED = "retrospective_reviewed", "Retrospectively reviewed"
        FAILURE_ACCEPTED = "failure_accepted", "Failure accepted"

    # The signed record, addressed by type and id so that change requests, promotions, policies and
    # break-glass reviews share one signature table (one manifestation rule, one query for packets).
    subject_type = models.CharField(max_length=40)
    subject_id = models.BigIntegerField()
    subject_human_id = models.CharField(max_length=60)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    printed_name = models.CharField(max_length=200)
    signed_at = models.DateTimeField(default=timezone.now)
    meaning = models.CharField(max_length=30, choices=Meaning.choices)
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    comment = models.TextField(blank=True)
    content_sha256 = models.CharField(max_length=64)
    content = models.JSONField(help_text="The canonical content that was signed, as the signer saw it.")
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    invalidated_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["signed_at", "id"]
        constraints = [
            # One person counts once per record and meaning while the signature stands (also the race guard).
            models.UniqueConstraint(
                fields=["subject_type", "subject_id", "signer", "meaning"],
                condition=Q(invalidated_at__isnull=True),
                name="%(app_label)s_%(class)s_one_per_signer",
            ),
        ]
        indexes = [models.Index(fields=["subject_type", "subject_id"])]

    def __str__(self) -> str:
        return f"{self.get_meaning_display()} by {self.printed_name} at {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"

    @property
    def human_id(self) -> str:
        return f"SIG-{self.pk}"

    def is_valid(self, *, at=None) -> bool:
        at = at or timezone.now()
        if self.invalidated_at is not None:
            return False
        return self.expires_at is None or at < self.expires_at

    @property
    def manifestation(self) -> str:
        """Part 11 §11.50: printed name, date and time, and meaning, shown wherever the record is."""
        role = f" as {self.get_role_display()}" if self.role else ""
        return f"{self.printed_name} — {self.get_meaning_display()}{role} — {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"


class AuditEvent(models.Model):
    """One append-only, hash-chained record of something that happened (PostgreSQL refuses edits)."""

    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=200)
    action = models.CharField(max_length=80)
    product_key = models.CharField(max_length=40, blank=True)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=80, blank=True)
    object_human_id = models.CharField(max_length=80, blank=True)
    object_version = models.CharField(max_length=40, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_address = models.CharField(max_length=64, blank=True)
    via_token = models.CharField(max_length=120, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # The seals of the records this event changed ([{type, id, sha256, fields}], changecontrol.seals); the hash
    # covers them. Null on events that seal nothing (and on every event recorded before seals existed).
    seals = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["product_key", "at"]),
            models.Index(fields=["actor", "at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_human_id}"


class AuditChainHead(models.Model):
    """The single row that serialises appends to the audit chain (locked FOR UPDATE by each writer)."""

    singleton = models.BooleanField(default=True, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(singleton=True), name="%(app_label)s_%(class)s_singleton")]

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_event_id}"


class AuditCheckpoint(models.Model):
    """Custody's signature over the chain head at a moment, so a rewrite of the whole chain shows."""

    SEALED_FIELDS = (
        "created_at",
        "event",
        "event_count",
        "event_hash",
        "key_id",
        "signature",
    )

    event = models.ForeignKey(AuditEvent, on_delete=models.PROTECT, related_name="+")
    event_hash = models.CharField(max_length=64)
    event_count = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    key_id = models.CharField(max_length=64)
    signature = models.TextField(help_text="Base64 Ed25519 signature over the checkpoint statement.")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint of #{self.event_id} ({self.created_at:%Y-%m-%d %H:%M} UTC)"

    @property
    def human_id(self) -> str:
        return f"checkpoint {self.pk}"

    def statement(self) -> bytes:
        return checkpoint_statement(event_id=self.event_id, event_hash=self.event_hash, created_at=self.created_at)

    def signed_blob(self):
        from common.signing import SignedBlob

        return SignedBlob(key_id=self.key_id, algorithm="ed25519", signature_b64=self.signature)


def checkpoint_statement(*, event_id: int, event_hash: str, created_at) -> bytes:
    return f"custody-audit-checkpoint/1 event={event_id} hash={event_hash} at={created_at.isoformat()}".encode()


class ApiToken(models.Model):
    """A bearer token for CI or a person: scoped to products and actions, stored only as a hash."""

    SCOPES = (
        "evidence:write",
        "status:read",
        "deployments:write",
        "snapshots:write",
        "releases:write",
        "requirements:write",
        "changes:write",
    )

    name = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    prefix = models.CharField(max_length=12, help_text="The first characters, to recognise a token in lists.")
    token_sha256 = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    products = models.ManyToManyField(Product, related_name="api_tokens")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_secret(secret: str) -> str:
        # Tokens are 256-bit random: a plain sha256 is enough (no dictionary to attack), and lookup stays indexed.
        return hashlib.sha256(secret.encode()).hexdigest()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


def record_type(model) -> str:
    """The name a kind of record carries in the audit trail (`object_type`) and on signatures (`subject_type`).

    It is the model's `app_label.modelname`, except for models that moved to another app: they keep the name they
    were born with (their `RECORD_TYPE`), because recorded events and signatures are never renamed."""
    return getattr(model, "RECORD_TYPE", "") or model._meta.label_lower
