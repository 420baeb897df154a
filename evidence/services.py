"""Writes of the evidence app: builds, artifacts, evidence intake, signer keys, VEX, CI credentials.

Each is one transaction that locks what it changes, checks state, writes and records the audit event.
Processing of evidence bytes runs later in Celery (evidence.processing), queued on commit.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import datetime
from typing import IO, Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from changecontrol import audit
from changecontrol.models import Product, User
from common.digests import digest_or_400
from common.errors import Conflict, InvalidState, ValidationFailed
from common.links import check_url
from evidence import storage
from evidence.models import (
    Artifact,
    Build,
    BuildCommit,
    Evidence,
    ProviderCredential,
    SignerKey,
)

log = logging.getLogger(__name__)

SUPPORTED_TYPES = tuple(Evidence.Type.values)

# ---------------------------------------------------------------- builds


def _locked_product(product: Product) -> Product:
    # Build numbers are per product: the product row serialises their allocation.
    return Product.objects.select_for_update().get(pk=product.pk)


@transaction.atomic
def build_register(
    *,
    product: Product,
    actor: User,
    commit: str,
    pipeline_url: str,
    branch: str = "",
    ci_system: str = "",
    build_number: str = "",
    builder_identity: str = "",
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    commits: list[dict[str, str]] | None = None,
    parameters: dict | None = None,
) -> tuple[Build, bool]:
    """Register a CI run; the same pipeline URL again returns the existing build (DESIGN §7, idempotent), unless it
    names another commit: a pipeline URL names one run, so evidence must not be filed under the wrong commit."""
    pipeline_url = check_url(pipeline_url, field="pipeline_url")
    _locked_product(product)
    existing = Build.objects.filter(product=product, pipeline_url=pipeline_url).first()
    if existing is not None:
        old, new = existing.commit.lower(), commit.lower()
        if not (old.startswith(new) or new.startswith(old)):
            raise Conflict(
                f"pipeline_url {pipeline_url} is already build {existing.human_id} of commit {existing.commit}; "
                "send the URL of this run (each CI run has its own), not a URL shared by several runs",
                build=existing.human_id,
            )
        return existing, False
    if started_at and finished_at and finished_at < started_at:
        raise ValidationFailed("finished_at is before started_at; send the times the CI run reported")
    last = Build.objects.filter(product=product).order_by("-number").values_list("number", flat=True).first()
    build = Build.objects.create(
        product=product,
        number=(last or 0) + 1,
        pipeline_url=pipeline_url,
        commit=commit,
        branch=branch,
        ci_system=ci_system,
        ci_build_number=build_number,
        builder_identity=builder_identity,
        started_at=started_at,
        finished_at=finished_at,
        parameters=parameters or {},
        registered_by=actor,
    )
    seen: set[str] = set()
    rows = []
    for position, item in enumerate(commits or []):
        sha = item["sha"]
        if sha in seen:  # a commit listed twice is one commit
            continue
        seen.add(sha)
        rows.append(
            BuildCommit(
                build=build,
                sha=sha,
                author_email=item.get("author_email", ""),
                author_name=item.get("author_name", ""),
                message=item.get("message", ""),
                position=position,
            )
        )
    BuildCommit.objects.bulk_create(rows)
    audit.record(
        actor=actor,
        action="build.registered",
        obj=build,
        after={
            "commit": commit,
            "branch": branch,
            "pipeline_url": pipeline_url,
            "ci_system": ci_system,
            "build_number": build_number,
            "builder_identity": builder_identity,
            "commits": [row.sha for row in rows],
        },
    )
    return build, True


# ---------------------------------------------------------------- artifacts


@transaction.atomic
def artifact_register(
    *, product: Product, actor: User, build: Build, name: str, digest: str, kind: str = "", uri: str = ""
) -> tuple[Artifact, bool]:
    """Register a built thing by digest; the same digest under the same build returns it, another build of the
    product is 409. Another product's artifact of the same digest plays no part: the product gets its own record,
    exactly as for a digest nobody registered (docs/security.md, "Existence across products").

    Idempotent under concurrency too: of ten identical registrations at once one inserts, and the others wait on the
    unique index, then find that row and answer exactly as a registration made a moment later would."""
    digest = digest_or_400(digest, field="digest")
    if build.product_id != product.pk:
        raise ValidationFailed(f"build {build.human_id} belongs to another product")
    mine = Artifact.objects.filter(product=product, digest=digest).select_related("build")
    existing = mine.first()
    if existing is None:
        try:
            with transaction.atomic():
                artifact = Artifact.objects.create(
                    product=product, build=build, digest=digest, name=name, kind=kind, uri=uri, registered_by=actor
                )
        except IntegrityError:
            # Another request inserted this digest first; the unique index made us wait until it committed.
            existing = mine.first()
            if existing is None:  # it rolled back after all: nothing stands in the way any more
                raise Conflict(f"digest {digest} was being registered by another request that failed; retry") from None
        else:
            audit.record(
                actor=actor,
                action="artifact.registered",
                obj=artifact,
                after={"digest": digest, "name": name, "kind": kind, "uri": uri, "build": build.human_id},
                object_human_id=digest,
            )
            return artifact, True
    if existing.build_id != build.pk:
        raise Conflict(
            f"digest {digest} is already registered under build {existing.build.human_id}; an artifact belongs to "
            "the one build that made it (promote it, never rebuild it)",
            build=existing.build.human_id,
        )
    return existing, False


# ---------------------------------------------------------------- evidence intake


def check_evidence_type(evidence_type: str) -> None:
    if evidence_type not in SUPPORTED_TYPES:
        raise ValidationFailed(
            f"unknown evidence type {evidence_type!r}; supported types are: {', '.join(SUPPORTED_TYPES)}",
            supported_types=list(SUPPORTED_TYPES),
        )


def evidence_receive(
    *,
    artifact: Artifact,
    actor: User,
    evidence_type: str,
    content: IO[bytes],
    signature: IO[bytes] | None = None,
    name: str = "",
) -> tuple[Evidence, bool]:
    """Keep the bytes as received (content-addressed) and queue their processing; same bytes → same evidence."""
    check_evidence_type(evidence_type)
    # 1. Bytes first, outside the transaction: storing is idempotent and a file nobody references is harmless.
    blob = storage.store_stream(content)
    signature_blob = storage.store_stream(signature) if signature is not None else None
    return _evidence_record(
        artifact=artifact, actor=actor, evidence_type=evidence_type, blob=blob, signature_blob=signature_blob, name=name
    )


@transaction.atomic
def _evidence_record(
    *,
    artifact: Artifact,
    actor: User,
    evidence_type: str,
    blob: storage.StoredBlob,
    signature_blob: storage.StoredBlob | None,
    name: str,
) -> tuple[Evidence, bool]:
    # 2. Lock the artifact so two uploads of the same bytes make one evidence.
    artifact = Artifact.objects.select_for_update().select_related("product").get(pk=artifact.pk)
    signature_sha256 = signature_blob.sha256 if signature_blob else ""
    # The same file is the same evidence only with the same detached signature (or again none): a signature sent
    # with a file already held unsigned (or signed otherwise) must be verified, not dropped, so it makes a copy of
    # its own; processing lets one copy of a file count (evidence.processing._settle_copies).
    existing = Evidence.objects.filter(
        artifact=artifact, evidence_type=evidence_type, sha256=blob.sha256, signature_sha256=signature_sha256
    ).first()
    if existing is not None:
        return existing, False
    evidence = Evidence.objects.create(
        product=artifact.product,
        artifact=artifact,
        evidence_type=evidence_type,
        name=(name or "")[:300],
        sha256=blob.sha256,
        size=blob.size,
        storage_name=blob.storage_name,
        signature_sha256=signature_sha256,
        signature_storage_name=signature_blob.storage_name if signature_blob else "",
        uploaded_by=actor,
    )
    audit.record(
        actor=actor,
        action="evidence.uploaded",
        obj=evidence,
        after={
            "artifact": artifact.digest,
            "type": evidence_type,
            "name": evidence.name,
            "sha256": blob.sha256,
            "size": blob.size,
            "signature_sha256": evidence.signature_sha256,
        },
        seal=[evidence],
    )
    evidence_id = evidence.pk
    transaction.on_commit(lambda: _queue_processing(evidence_id))
    return evidence, True


# Publishing to a broker that is down is retried this briefly: the upload answers 202 either way, and the sweep
# (evidence.processing.evidence_sweep) queues the evidence again once the broker is back.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def _queue_processing(evidence_id: int, reprocess: bool = False) -> None:
    from evidence.tasks import process_evidence

    try:
        process_evidence.apply_async((evidence_id, reprocess), retry=True, retry_policy=PUBLISH_RETRY)
    except Exception:  # pylint: disable=broad-exception-caught  # any broker failure: the row is kept, pending
        log.warning("evidence %s is kept pending: the task broker could not be reached", evidence_id, exc_info=True)


def evidence_receive_bytes(
    *, artifact: Artifact, actor: User, evidence_type: str, data: bytes, name: str = "", signature: bytes | None = None
) -> tuple[Evidence, bool]:
    """The same intake for bytes Custody fetched itself (CI pulls, demo data)."""
    check_evidence_type(evidence_type)
    blob = storage.store_bytes(data)
    signature_blob = storage.store_bytes(signature) if signature is not None else None
    return _evidence_record(
        artifact=artifact, actor=actor, evidence_type=evidence_type, blob=blob, signature_blob=signature_blob, name=name
    )


@transaction.atomic
def evidence_reprocess(*, evidence: Evidence, actor: User) -> Evidence:
    """Queue a fresh processing run (after a parser fix or a new signer key); the result replaces the old one."""
    evidence = Evidence.objects.select_for_update().get(pk=evidence.pk)
    if evidence.state == Evidence.State.PROCESSING:
        raise InvalidState(f"{evidence.human_id} is processing right now; wait for it to finish")
    before = evidence.state
    # A superseded copy is judged afresh when it finishes: it counts again if no other copy does by then.
    Evidence.objects.filter(pk=evidence.pk).update(state=Evidence.State.PENDING, progress=0, superseded_by=None)
    audit.record(
        actor=actor, action="evidence.reprocess_requested", obj=evidence, before={"state": before}, seal=[evidence]
    )
    evidence_id = evidence.pk
    transaction.on_commit(lambda: _queue_reprocessing(evidence_id))
    evidence.refresh_from_db()
    return evidence


def _queue_reprocessing(evidence_id: int) -> None:
    _queue_processing(evidence_id, reprocess=True)


# ---------------------------------------------------------------- signer keys


@transaction.atomic
def signer_key_register(
    *,
    product: Product,
    name: str,
    public_key_pem: str,
    actor: User,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    allowed_evidence_types: list[str] | None = None,
) -> SignerKey:
    """Trust a public key (Ed25519 or ECDSA P-256) to sign this product's evidence; key id = sha256(DER SPKI)."""
    from evidence.verification import SignatureError, key_id_for, load_public_key

    try:
        _, algorithm = load_public_key(public_key_pem)
        key_id = key_id_for(public_key_pem)
    except SignatureError as exc:
        raise ValidationFailed(str(exc)) from None
    types = sorted(set(allowed_evidence_types or []))
    for evidence_type in types:
        check_evidence_type(evidence_type)
    valid_from = valid_from or timezone.now()
    if valid_until is not None and valid_until <= valid_from:
        raise ValidationFailed("valid_until must be after valid_from")
    _locked_product(product)
    if SignerKey.objects.filter(product=product, key_id=key_id).exists():
        raise Conflict(f"key {key_id} is already registered for {product.key}", key_id=key_id)
    key = SignerKey.objects.create(
        product=product,
        name=name,
        key_id=key_id,
        algorithm=algorithm,
        public_key_pem=public_key_pem.strip() + "\n",
        valid_from=valid_from,
        valid_until=valid_until,
        allowed_evidence_types=types,
        created_by=actor,
    )
    audit.record(
        actor=actor,
        action="signer_key.registered",
        obj=key,
        after={
            "name": name,
            "key_id": key_id,
            "algorithm": algorithm,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "allowed_evidence_types": types,
        },
        product_key=product.key,
        object_human_id=f"key {key_id[:16]}",
    )
    return key


@transaction.atomic
def signer_key_revoke(*, key: SignerKey, actor: User, reason: str) -> SignerKey:
    """Stop trusting a key: evidence it signs from now on is rejected (parsed evidence is re-checked on reprocess)."""
    key = SignerKey.objects.select_for_update().select_related("product").get(pk=key.pk)
    if key.revoked_at is not None:
        raise InvalidState(f"key {key.key_id[:16]} was already revoked at {key.revoked_at:%Y-%m-%d %H:%M} UTC")
    if not reason.strip():
        raise ValidationFailed("say why the key is revoked (compromised, rotated, person left …)")
    key.revoked_at = timezone.now()
    key.revocation_reason = reason
    key.save(update_fields=["revoked_at", "revocation_reason"])
    audit.record(
        actor=actor,
        action="signer_key.revoked",
        obj=key,
        after={"revoked_at": key.revoked_at},
        reason=reason,
        product_key=key.product.key,
        object_human_id=f"key {key.key_id[:16]}",
    )
    return key


def trusted_keys(*, product: Product, evidence_type: str, at: datetime) -> list[SignerKey]:
    """The product's keys that may vouch for this type at that moment: unrevoked and inside their window."""
    keys = SignerKey.objects.filter(product=product, revoked_at__isnull=True, valid_from__lte=at).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=at)
    )
    return [k for k in keys if not k.allowed_evidence_types or evidence_type in k.allowed_evidence_types]


# ---------------------------------------------------------------- VEX


# ---------------------------------------------------------------- CI provider credentials and pulls


def _fernet() -> Fernet:
    configured = getattr(settings, "CUSTODY_CREDENTIALS_KEY", "")
    if configured:
        return Fernet(configured.encode())
    # Derived from SECRET_KEY so a fresh install works; rotate by setting CUSTODY_CREDENTIALS_KEY.
    derived = hashlib.sha256(b"custody-provider-credentials:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def credential_secret(credential: ProviderCredential) -> str:
    try:
        return _fernet().decrypt(credential.secret_encrypted.encode()).decode()
    except InvalidToken:
        raise ValidationFailed(
            f"the stored {credential.get_provider_display()} credential of {credential.product.key} cannot be "
            "decrypted (was the credentials key rotated?); store it again"
        ) from None


@transaction.atomic
def provider_credential_set(
    *, product: Product, provider: str, base_url: str, secret: str, actor: User
) -> ProviderCredential:
    """Store (or replace) the product's token for a CI provider, encrypted; the secret is never audited."""
    if provider not in ProviderCredential.Provider.values:
        raise ValidationFailed(
            f"unknown provider {provider!r}; use one of {', '.join(ProviderCredential.Provider.values)}"
        )
    if not secret:
        raise ValidationFailed("the credential's token is empty")
    base_url = check_url(
        base_url, field="base_url", max_length=ProviderCredential._meta.get_field("base_url").max_length
    )
    _locked_product(product)
    encrypted = _fernet().encrypt(secret.encode()).decode()
    credential, created = ProviderCredential.objects.update_or_create(
        product=product,
        provider=provider,
        defaults={"base_url": base_url.rstrip("/"), "secret_encrypted": encrypted, "created_by": actor},
    )
    audit.record(
        actor=actor,
        action="provider_credential.stored" if created else "provider_credential.replaced",
        obj=credential,
        after={"provider": provider, "base_url": credential.base_url},
        product_key=product.key,
    )
    return credential


@transaction.atomic
def build_pull_request(*, build: Build, actor: User) -> Build:
    """Queue a pull of the build's evidence from its CI provider."""
    build = Build.objects.select_for_update().select_related("product").get(pk=build.pk)
    if build.pull_state in (Build.PullState.QUEUED, Build.PullState.RUNNING):
        raise InvalidState(f"build {build.human_id} is already being pulled ({build.get_pull_state_display()})")
    Build.objects.filter(pk=build.pk).update(pull_state=Build.PullState.QUEUED, pull_detail="")
    audit.record(actor=actor, action="build.pull_requested", obj=build)
    build_id = build.pk
    transaction.on_commit(lambda: _queue_pull(build_id))
    build.refresh_from_db()
    return build


def _queue_pull(build_id: int) -> None:
    from evidence.tasks import pull_build_evidence

    pull_build_evidence.delay(build_id)


def build_pull_mark(*, build_id: int, state: str, detail: str = "", attempt: bool = False) -> None:
    """Record the pull's progress on the build (its page shows it); audited when it ends."""
    with transaction.atomic():
        build = Build.objects.select_for_update().select_related("product").get(pk=build_id)
        fields: dict[str, Any] = {"pull_state": state, "pull_detail": detail[:4000]}
        if attempt:
            fields["pull_attempts"] = build.pull_attempts + 1
        if state in (Build.PullState.DONE, Build.PullState.FAILED):
            fields["pulled_at"] = timezone.now()
        Build.objects.filter(pk=build_id).update(**fields)
        if state in (Build.PullState.DONE, Build.PullState.FAILED):
            audit.record(
                actor=None, action=f"build.pull_{state}", obj=build, after={"state": state, "detail": detail[:1000]}
            )
