"""Electronic signatures (21 CFR Part 11): re-authentication, the content hash, refusals, the signature row.

Used by every signed record (change requests, promotions, policies, break-glass reviews) so the rules hold
in one place: §11.200(a) re-enter both components at signing; §11.50 printed name, date/time and meaning;
§11.70 the signature is bound to the exact content it signs (a sha256 of its canonical form), and that content is
the content the signer was shown: every signing request carries the `content_sha256` the signer reviewed, and
`signature_create` refuses to sign anything else (409 `content_changed`, both hashes named).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from django.contrib.auth.hashers import check_password
from django.db import transaction

from changecontrol import audit
from changecontrol.auth import account_register_failure, account_register_success
from changecontrol.models import PolicyVersion, Product, Signature, User, record_type
from common.canonical import canonical_sha256, jsonable
from common.errors import (
    AccountLocked,
    ContentChanged,
    ReauthenticationFailed,
    SeparationOfDutiesViolation,
    ValidationFailed,
)

# The name of the hash in every signing request (API field, page form field) and in every record's GET answer.
SEEN_FIELD = "content_sha256"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def content_sha256(content: dict[str, Any]) -> str:
    """The hash a signature over `content` is bound to, and the one a signer is shown before signing."""
    return canonical_sha256(content)


@dataclass(frozen=True)
class Seen:
    """The content hash the signer reviewed. Only `sign` makes one; `signature_create` signs nothing else."""

    sha256: str


def seen_content(value: str | None) -> Seen:
    """The signer's `content_sha256`, checked for form: missing or malformed is a 400 naming the field."""
    text = (value or "").strip().lower()
    if not text:
        raise ValidationFailed(
            f"a signature must carry the {SEEN_FIELD} of the record as you reviewed it (the {SEEN_FIELD} field of "
            "the record's GET answer, which the signing dialog also carries): reload the record, review it and sign "
            "again; nothing was signed",
            errors={SEEN_FIELD: ["This field is required."]},
        )
    if not SHA256_HEX.fullmatch(text):
        raise ValidationFailed(
            f"{SEEN_FIELD} must be 64 hexadecimal characters, as the {SEEN_FIELD} field of the record's GET answer "
            "gives it",
            errors={SEEN_FIELD: ["Not a sha256 in hexadecimal."]},
        )
    return Seen(sha256=text)


def stale_content_detail(*, seen: str, current: str) -> str:
    """The one sentence a signer reads when the record changed under them (API detail and page message alike)."""
    return (
        f"you reviewed content sha256 {seen}; the record is now {current}: reload it and review again "
        "(nothing was signed)"
    )


def _reauthenticate(*, signer: User, username: str, password: str, subject_human_id: str, product: Product) -> None:
    """Part 11 §11.200(a)(1): both components again. A wrong one signs nothing, is audited, counts to lockout.

    The failure is audited under the product and the record being signed, where that product's auditor looks.
    """
    if signer.is_locked():
        raise AccountLocked("your account is locked after repeated failed password attempts; ask an administrator")
    if username != signer.username:
        with transaction.atomic():
            audit.record(
                actor=signer,
                action="signature.failed",
                reason=f"username {username[:150]!r} is not the signed-in user",
                product_key=product.key,
                object_human_id=subject_human_id,
            )
        raise ReauthenticationFailed("sign with your own username: the username given is not the signed-in user's")
    if not check_password(password, signer.password):
        locked = account_register_failure(
            user=signer, context="signature", product=product, subject_human_id=subject_human_id
        )
        detail = "the password is not correct; nothing was signed"
        if locked:
            detail += ", and the account is now locked"
        raise ReauthenticationFailed(detail)
    account_register_success(user=signer)


class Refusal(Exception):  # noqa: N818 - a signal inside services, never seen by callers
    """Raised inside a signing transaction (a separation-of-duties rule); `sign` audits it outside the rollback."""

    def __init__(self, rule: str, detail: str):
        super().__init__(detail)
        self.rule, self.detail = rule, detail


class _StaleContent(Exception):  # noqa: N818 - a signal between signature_create and sign, never seen by callers
    """The content about to be signed is not the content the signer reviewed; `sign` audits it outside the rollback."""

    def __init__(self, *, seen: str, current: str):
        super().__init__(stale_content_detail(seen=seen, current=current))
        self.seen, self.current = seen, current


def _audit_refusal(*, signer: User, subject_human_id: str, product: Product, reason: str, after=None) -> None:
    """A refused signature is on record: audited in a transaction of its own, after the signing one rolled back."""
    with transaction.atomic():
        audit.record(
            actor=signer,
            action="signature.refused",
            reason=reason,
            product_key=product.key,
            object_human_id=subject_human_id,
            after=after,
        )


def _refuse(*, signer: User, subject_human_id: str, product: Product, refusal: Refusal) -> NoReturn:
    """Audit a separation-of-duties refusal in its own transaction, then raise it (403 naming the rule)."""
    _audit_refusal(
        signer=signer, subject_human_id=subject_human_id, product=product, reason=f"{refusal.rule}: {refusal.detail}"
    )
    raise SeparationOfDutiesViolation(refusal.detail, rule=refusal.rule)


def _refuse_stale(*, signer: User, subject_human_id: str, product: Product, stale: _StaleContent) -> NoReturn:
    """Audit a signature refused because the record changed since it was shown, then raise it (409, both hashes)."""
    _audit_refusal(
        signer=signer,
        subject_human_id=subject_human_id,
        product=product,
        reason=f"content_changed: {stale}",
        after={"seen_content_sha256": stale.seen, "content_sha256": stale.current},
    )
    detail = stale_content_detail(seen=stale.seen, current=stale.current)
    raise ContentChanged(detail, seen_content_sha256=stale.seen, content_sha256=stale.current)


def sign(
    *,
    signer: User,
    username: str,
    password: str,
    seen_sha256: str,
    subject_human_id: str,
    product: Product,
    under_lock: Callable[[Seen], Signature],
) -> Signature:
    """The one signing envelope every signing service goes through (Part 11 §11.50, §11.70, §11.200).

    1. The content hash the signer reviewed must be there and look like one (400 naming `content_sha256`).
    2. Re-authenticate: both components again, before anything is looked at; a failure signs nothing, is audited
       under the record being signed and counts toward lockout.
    3. `under_lock(seen)`: the service's own transaction, which locks the record, checks its state and the rules,
       and creates the signature with `signature_create(seen=seen, content=...)`. That compares the hash of the
       content it is about to sign with the one the signer reviewed, under the same lock the record's edits take,
       so an edit either lands before the check (and is refused) or after the signature (and invalidates it).
    4. A separation-of-duties refusal (`Refusal`) or changed content raised inside it rolls that transaction back;
       it is audited in a transaction of its own, so the refusal itself is on record, and becomes a 403 naming the
       rule, or a 409 `content_changed` naming both hashes.
    """
    seen = seen_content(seen_sha256)
    _reauthenticate(
        signer=signer, username=username, password=password, subject_human_id=subject_human_id, product=product
    )
    try:
        return under_lock(seen)
    except Refusal as refusal:
        _refuse(signer=signer, subject_human_id=subject_human_id, product=product, refusal=refusal)
    except _StaleContent as stale:
        _refuse_stale(signer=signer, subject_human_id=subject_human_id, product=product, stale=stale)


def signature_create(
    *,
    subject: Any,
    product: Product,
    signer: User,
    meaning: str,
    role: str,
    comment: str,
    content: dict[str, Any],
    seen: Seen,
    policy_version: PolicyVersion | None,
    expires_at=None,
) -> Signature:
    """Write the signature row and its audit event (the caller holds the subject's row lock).

    Part 11 §11.70: `content` is what the signature is bound to, computed by the service under its lock by the same
    function the page and the API used to show the signer its hash; anything other than what the signer reviewed
    (`seen`) is refused before a row is written."""
    signed_sha256 = content_sha256(content)
    if signed_sha256 != seen.sha256:
        raise _StaleContent(seen=seen.sha256, current=signed_sha256)
    signature = Signature.objects.create(
        subject_type=record_type(subject),
        subject_id=subject.pk,
        subject_human_id=subject.human_id,
        product=product,
        signer=signer,
        printed_name=signer.printed_name,
        meaning=meaning,
        role=role,
        comment=comment,
        content=jsonable(content),
        content_sha256=signed_sha256,
        policy_version=policy_version,
        expires_at=expires_at,
    )
    audit.record(
        actor=signer,
        action=f"signature.{meaning}",
        obj=subject,
        after={
            "signature_id": signature.pk,
            "meaning": meaning,
            "role": role,
            "printed_name": signature.printed_name,
            "content_sha256": signature.content_sha256,
            "comment": comment,
        },
        seal=[signature],
    )
    return signature


def signatures_for(subject: Any):
    return Signature.objects.filter(subject_type=record_type(subject), subject_id=subject.pk).select_related("signer")


def signatures_invalidate(*, subject: Any, actor: User | None, reason: str) -> int:
    """Editing signed content invalidates its signatures rather than carrying them over (Part 11 §11.70)."""
    standing = list(signatures_for(subject).filter(invalidated_at__isnull=True))
    return signatures_invalidate_these(standing, subject=subject, actor=actor, reason=reason)


def signatures_invalidate_these(signatures: list[Signature], *, subject: Any, actor: User | None, reason: str) -> int:
    """Invalidate these signatures of `subject` with the reason, in one audit event sealing each of them."""
    from django.utils import timezone

    if not signatures:
        return 0
    count = Signature.objects.filter(pk__in=[s.pk for s in signatures], invalidated_at__isnull=True).update(
        invalidated_at=timezone.now(), invalidated_reason=reason
    )
    audit.record(
        actor=actor,
        action="signature.invalidated",
        obj=subject,
        reason=reason,
        after={"count": count, "signatures": [s.human_id for s in signatures]},
        seal=signatures,
    )
    return count
