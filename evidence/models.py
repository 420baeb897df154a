"""Builds, artifacts, evidence as received, its verification verdict, and the facts parsed from it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from changecontrol.models import Product
from common.digests import DIGEST_PATTERN


class Build(models.Model):
    """One CI run (`<product>-b<n>`): commit, branch, pipeline, builder identity, the commits it contains."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="builds")
    number = models.PositiveIntegerField(help_text="Per-product build number.")
    pipeline_url = models.URLField(max_length=500)
    commit = models.CharField(max_length=64)
    branch = models.CharField(max_length=200, blank=True)
    ci_system = models.CharField(max_length=40, blank=True)
    ci_build_number = models.CharField(max_length=60, blank=True)
    builder_identity = models.CharField(
        max_length=300, blank=True, help_text="Who or what built it (CI workflow identity)."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class PullState(models.TextChoices):
        NONE = "none", "Not pulled"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        RETRYING = "retrying", "Retrying after an error"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # Pulling evidence from the CI provider (issue 3, item 7): its state is shown on the build page.
    pull_state = models.CharField(max_length=10, choices=PullState.choices, default=PullState.NONE)
    pull_attempts = models.PositiveSmallIntegerField(default=0)
    pull_detail = models.TextField(blank=True, help_text="What the last pull fetched, or why it failed.")
    pulled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Registration is idempotent on product + pipeline URL (DESIGN §7).
            models.UniqueConstraint(fields=["product", "pipeline_url"], name="%(app_label)s_%(class)s_unique_pipeline"),
            models.UniqueConstraint(fields=["product", "number"], name="%(app_label)s_%(class)s_unique_number"),
            models.CheckConstraint(
                condition=Q(pull_state__in=["none", "queued", "running", "retrying", "done", "failed"]),
                name="%(app_label)s_%(class)s_pull_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.human_id

    @property
    def human_id(self) -> str:
        return f"{self.product.key}-b{self.number}"


class BuildCommit(models.Model):
    """A commit contained in a build; its message links CR and REQ IDs, its author matters for SoD."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="commits")
    sha = models.CharField(max_length=64)
    author_email = models.EmailField(blank=True)
    author_name = models.CharField(max_length=200, blank=True)
    message = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["build", "position"]
        constraints = [models.UniqueConstraint(fields=["build", "sha"], name="%(app_label)s_%(class)s_unique_sha")]

    def __str__(self) -> str:
        return self.sha[:12]


class Artifact(models.Model):
    """A built thing of one product, identified by its digest `sha256:<64 hex>`; belongs to one build.

    A digest is unique within a product, not across products: the same bytes built by two products are two records,
    so that what one product registered never shows (or stands in the way) in another (docs/security.md)."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="artifacts")
    build = models.ForeignKey(Build, on_delete=models.PROTECT, related_name="artifacts")
    digest = models.CharField(max_length=71, db_index=True)  # serves the status API lookup by digest
    name = models.CharField(max_length=300)
    kind = models.CharField(max_length=40, blank=True, help_text="container-image, package, binary, …")
    uri = models.CharField(max_length=500, blank=True)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(digest__regex=f"^{DIGEST_PATTERN}$"), name="%(app_label)s_%(class)s_digest_format"
            ),
            models.UniqueConstraint(fields=["product", "digest"], name="%(app_label)s_%(class)s_digest_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.digest[:19]}…"


class SignerKey(models.Model):
    """A public key a product trusts to sign its evidence (Ed25519 or ECDSA P-256)."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="signer_keys")
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=64, help_text="sha256 of the DER SubjectPublicKeyInfo.")
    algorithm = models.CharField(max_length=20)
    public_key_pem = models.TextField()
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.TextField(blank=True)
    allowed_evidence_types = models.JSONField(default=list, blank=True, help_text="Empty: every type.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["product", "name"]
        constraints = [models.UniqueConstraint(fields=["product", "key_id"], name="%(app_label)s_%(class)s_unique_key")]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id[:12]})"


# Which evidence counts (DESIGN §6): parsed, and signed by a registered key or honestly unsigned. Invalid and
# mismatched evidence is kept but never counts, nor does a copy superseded by another copy of the same file.
COUNTING_STATE = "parsed"
COUNTING_VERDICTS = ("signed", "unsigned")


class EvidenceQuerySet(models.QuerySet):
    def counting(self) -> EvidenceQuerySet:
        """The evidence that counts for its artifact (the one rule; the trace matrix's SQL spells the same)."""
        return self.filter(state=COUNTING_STATE, verdict__in=COUNTING_VERDICTS)


class FactQuerySet(models.QuerySet):
    def counting(self) -> FactQuerySet:
        """Facts (test results, components, findings, …) parsed from evidence that counts."""
        return self.filter(evidence__state=COUNTING_STATE, evidence__verdict__in=COUNTING_VERDICTS)


class Evidence(models.Model):
    """One document about an artifact, stored raw and content-addressed, then verified and parsed."""

    # Sealed (changecontrol.seals): the bytes' hash, what they are, the verdict, what the evidence counts as, and
    # every fact parsed from it. Processing bookkeeping (progress, attempts, error text) is not part of the record.
    SEALED_FIELDS = (
        "artifact",
        "evidence_type",
        "name",
        "processed_at",
        "product",
        "sha256",
        "signature_sha256",
        "signature_storage_name",
        "signer_key",
        "size",
        "state",
        "storage_name",
        "summary",
        "superseded_by",
        "uploaded_at",
        "uploaded_by",
        "verdict",
        "verdict_detail",
    )
    SEALED_RELATED = (
        "components",
        "coverage_files",
        "provenance",
        "static_findings",
        "test_results",
        "vex_statements",
        "vulnerabilities",
    )

    class Type(models.TextChoices):
        JUNIT = "junit", "JUnit XML test report"
        COBERTURA = "cobertura", "Cobertura XML coverage"
        LCOV = "lcov", "LCOV coverage"
        JACOCO = "jacoco", "JaCoCo XML coverage"
        SARIF = "sarif", "SARIF static analysis"
        CYCLONEDX = "cyclonedx", "CycloneDX SBOM"
        SPDX = "spdx", "SPDX SBOM"
        GRYPE = "grype", "Grype vulnerability scan"
        TRIVY = "trivy", "Trivy vulnerability scan"
        OSV = "osv", "OSV-Scanner vulnerability scan"
        OPENVEX = "openvex", "OpenVEX statements"
        DSSE = "dsse", "DSSE envelope (in-toto attestation)"
        COSIGN = "cosign", "cosign signature"
        GENERIC = "generic", "Generic document (kept, not parsed)"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        PARSED = "parsed", "Parsed"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"
        # Parsed, but another copy of the same file counts instead (see superseded_by).
        SUPERSEDED = "superseded", "Superseded by another copy of the same file"

    class Verdict(models.TextChoices):
        SIGNED = "signed", "Signed by a registered key"
        INVALID_SIGNATURE = "invalid_signature", "Invalid signature"
        SUBJECT_MISMATCH = "subject_mismatch", "Subject does not match the artifact"
        UNSIGNED = "unsigned", "Unsigned"
        UNVERIFIED = "unverified", "Not verified yet"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="evidence")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="evidence")
    evidence_type = models.CharField(max_length=20, choices=Type.choices)
    name = models.CharField(max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, help_text="Of the raw bytes as received.")
    size = models.BigIntegerField()
    storage_name = models.CharField(max_length=300)
    signature_sha256 = models.CharField(max_length=64, blank=True, help_text="Of the detached signature, if any.")
    signature_storage_name = models.CharField(max_length=300, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    verdict = models.CharField(max_length=20, choices=Verdict.choices, default=Verdict.UNVERIFIED)
    signer_key = models.ForeignKey(SignerKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    verdict_detail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done while processing.")
    attempts = models.PositiveSmallIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The copy of the same file that counts instead of this one (a signed copy over an unsigned one).",
    )

    objects = EvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            # The same bytes with the same detached signature (or none) for the same artifact and type are one
            # evidence (re-upload returns it); the same bytes with another signature are a copy verified on its own.
            models.UniqueConstraint(
                fields=["artifact", "evidence_type", "sha256", "signature_sha256"],
                name="%(app_label)s_%(class)s_unique_signed_content",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "processing", "parsed", "rejected", "failed", "superseded"]),
                name="%(app_label)s_%(class)s_state_valid",
            ),
            # A superseded copy always names the copy that counts instead, and only a superseded one does.
            models.CheckConstraint(
                condition=Q(state="superseded", superseded_by__isnull=False)
                | (~Q(state="superseded") & Q(superseded_by__isnull=True)),
                name="%(app_label)s_%(class)s_superseded_names_copy",
            ),
        ]
        indexes = [models.Index(fields=["artifact", "evidence_type", "state"])]

    def __str__(self) -> str:
        return f"{self.human_id} {self.get_evidence_type_display()}"

    @property
    def human_id(self) -> str:
        return f"EV-{self.pk}"

    def counts_as_evidence(self) -> bool:
        """Whether this evidence counts (`EvidenceQuerySet.counting` says the same of a query)."""
        return self.state == COUNTING_STATE and self.verdict in COUNTING_VERDICTS


class TestResult(models.Model):
    """One test case's result from a test report, with the requirement IDs it claims to verify."""

    class Status(models.TextChoices):
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        ERROR = "error", "Error"
        SKIPPED = "skipped", "Skipped"

    evidence = models.ForeignKey(Evidence, on_delete=models.PROTECT, related_name="test_results")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="test_results")
    suite = models.CharField(max_length=500, blank=True)
    classname = models.CharField(max_length=500, blank=True)
    name = models.CharField(max_length=1000)
    status = models.CharField(max_length=10, choices=Status.choices)
    duration_s = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True)
    requirement_ids = models.JSONField(default=list, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)

    objects = FactQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["artifact", "status"])]

    def __str__(self) -> str:
        return f"{self.classname} {self.name}: {self.status}"


class CoverageFile(models.Model):
    """Line and branch coverage of one source file, from a coverage report."""

    evidence = models.ForeignKey(Evidence, on_delete=models.PROTECT, related_name="coverage_files")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="coverage_files")
    path = models.CharField(max_length=1000)
    lines_valid = models.PositiveIntegerField()
    lines_covered = models.PositiveIntegerField()
    branches_valid = models.PositiveIntegerField(null=True, blank=True)
    branches_covered = models.PositiveIntegerField(null=True, blank=True)

    objects = FactQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.path} {self.lines_covered}/{self.lines_valid}"


class StaticFinding(models.Model):
    """A static-analysis result (SARIF)."""

    evidence = models.ForeignKey(Evidence, on_delete=models.PROTECT, related_name="static_findings")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="static_findings")
    tool = models.CharField(max_length=100, blank=True)
    rule_id = models.CharField(max_length=300)
    level = models.CharField(max_length=10)
    severity = models.CharField(max_length=10)
    message = models.TextField(blank=True)
    path = models.CharField(max_length=1000, blank=True)
    start_line = models.PositiveIntegerField(null=True, blank=True)
    fingerprint = models.CharField(max_length=200, blank=True)
    suppressed = models.BooleanField(default=False)

    objects = FactQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.rule_id} {self.path}:{self.start_line or ''}"


class SbomComponent(models.Model):
    """A component listed in an SBOM, with its purl and SPDX licence expression."""

    evidence = models.ForeignKey(Evidence, on_delete=models.PROTECT, related_name="components")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="components")
    name = models.CharField(max_length=500)
    version = models.CharField(max_length=200, blank=True)
    purl = models.CharField(max_length=1000, blank=True)
    license_expression = models.CharField(
        max_length=1000, blank=True, help_text='SPDX id or expression; "unknown" when the declared text is not one.'
    )
    license_declared = models.CharField(
        max_length=2000, blank=True, default="", help_text="The licence as the SBOM wrote it, when it differs."
    )
    hashes = models.JSONField(default=dict, blank=True)
    bom_ref = models.CharField(max_length=1000, blank=True)

    objects = FactQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["artifact"]),
            # serve the affected-release search (runtime.affected): a purl prefix (LIKE 'pkg:npm/x@%') and a
            # case-blind component name, across every release's SBOM
            models.Index(fields=["purl"], opclasses=["varchar_pattern_ops"], name="evidence_sbomcomp_purl_prefix"),
            models.Index(Upper("name"), name="evidence_sbomcomp_name_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class VexStatement(models.Model):
    """A VEX statement (OpenVEX / CycloneDX VEX); it suppresses only when its evidence is signed."""

    evidence = models.ForeignKey(Evidence, on_delete=models.PROTECT, related_name="vex_statements")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="vex_statements")
    vuln_id = models.CharField(max_length=200)
    aliases = models.JSONField(default=list, blank=True)
    products = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=30)
    justification = models.CharField(max_length=200, blank=True)
    impact_statement = models.TextField(blank=True)

    objects = FactQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.vuln_id} {self.status}"


class Vulnerability(models.Model):
    """A vulnerability reported by a scanner, severity normalised, possibly suppressed by a VEX statement."""

    # Which VEX statement suppresses it is decided later by the VEX evidence (evidence.vex), not by the scan: the
    # scan's seal leaves it out, and the trigger lets only this column change.
    SEAL_EXCLUDE = ("suppressed_by",)

    evidence = models.ForeignKey(Evidence, on_delete=models.PROTECT, related_name="vulnerabilities")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="vulnerabilities")
    vuln_id = models.CharField(max_length=200)
    aliases = models.JSONField(default=list, blank=True)
    package_name = models.CharField(max_length=500, blank=True)
    package_version = models.CharField(max_length=200, blank=True)
    purl = models.CharField(max_length=1000, blank=True)
    severity = models.CharField(max_length=10)
    cvss_score = models.FloatField(null=True, blank=True)
    fix_state = models.CharField(max_length=20, blank=True)
    fixed_versions = models.JSONField(default=list, blank=True)
    title = models.TextField(blank=True)
    suppressed_by = models.ForeignKey(
        VexStatement, on_delete=models.PROTECT, null=True, blank=True, related_name="suppresses"
    )

    objects = FactQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["artifact", "severity"]),
            # serve the affected-release search by vulnerability id or alias (runtime.affected)
            models.Index(fields=["vuln_id"], name="evidence_vuln_vuln_id"),
            GinIndex(fields=["aliases"], name="evidence_vuln_aliases_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.vuln_id} {self.package_name} {self.package_version} ({self.severity})"


class Provenance(models.Model):
    """Who built an artifact from what (SLSA provenance from a verified in-toto statement)."""

    evidence = models.OneToOneField(Evidence, on_delete=models.PROTECT, related_name="provenance")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="provenance")
    builder_id = models.CharField(max_length=500)
    build_type = models.CharField(max_length=500, blank=True)
    source_repository = models.CharField(max_length=500, blank=True)
    source_commit = models.CharField(max_length=64, blank=True)
    invocation_id = models.CharField(max_length=500, blank=True)
    predicate_type = models.CharField(max_length=200, blank=True)

    objects = FactQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.builder_id} @ {self.source_commit[:12]}"


class ProviderCredential(models.Model):
    """A product's API credential for one CI provider, stored encrypted (Fernet), used to pull evidence."""

    class Provider(models.TextChoices):
        GITHUB = "github", "GitHub Actions"
        GITLAB = "gitlab", "GitLab CI"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="provider_credentials")
    provider = models.CharField(max_length=20, choices=Provider.choices)
    base_url = models.URLField(
        max_length=300, help_text="API base, e.g. https://api.github.com or https://gitlab.com/api/v4."
    )
    secret_encrypted = models.TextField(help_text="The token, Fernet-encrypted; never shown again.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["product", "provider"]
        constraints = [
            models.UniqueConstraint(fields=["product", "provider"], name="%(app_label)s_%(class)s_one_per_provider"),
            models.CheckConstraint(
                condition=Q(provider__in=["github", "gitlab"]), name="%(app_label)s_%(class)s_provider_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.key} {self.get_provider_display()}"
