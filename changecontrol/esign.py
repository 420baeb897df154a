"""Electronic signatures (21 CFR Part 11): re-authentication, the content hash, refusals, the signature row.

Used by every signed record (change requests, promotions, policies, break-glass reviews) so the rules hold
in one place: §11.200(a) re-enter both components at signing; §11.50 printed name, date/time and meaning;
§11.70 the signature is bound to the exact content it signs (a sha256 of its canonical form).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from django.contrib.auth.hashers import check_password
from django.db import transaction

from changecontrol import audit
from changecontrol.auth import account_register_failure, account_register_success
from changecontrol.models import PolicyVersion, Product, Signature, User, record_type
from common.canonical import canonical_sha256, jsonable
from common.errors import AccountLocked, ReauthenticationFailed, SeparationOfDutiesViolation


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


def _refuse(*, signer: User, subject_human_id: str, product: Product, refusal: Refusal) -> NoReturn:
    """Audit a separation-of-duties refusal in its own transaction, then raise it (403 naming the rule)."""
    with transaction.atomic():
        audit.record(
            actor=signer,
            action="signature.refused",
            reason=f"{refusal.rule}: {refusal.detail}",
            product_key=product.key,
            object_human_id=subject_human_id,
        )
    raise SeparationOfDutiesViolation(refusal.detail, rule=refusal.rule)


def sign(
    *,
    signer: User,
    username: str,
    password: str,
    subject_human_id: str,
    product: Product,
    under_lock: Callable[[], Signature],
) -> Signature:
    """The one signing envelope every signing service goes through (Part 11 §11.50, §11.200).

    1. Re-authenticate: both components again, before anything is looked at; a failure signs nothing, is audited
       under the record being signed and counts toward lockout.
    2. `under_lock()`: the service's own transaction, which locks the record, checks its state and the rules, and
       creates the signature with `signature_create`.
    3. A separation-of-duties refusal raised inside it (`Refusal`) rolls that transaction back; it is audited in a
       transaction of its own, so the refusal itself is on record, and becomes a 403 naming the rule.
    """
    _reauthenticate(
        signer=signer, username=username, password=password, subject_human_id=subject_human_id, product=product
    )
    try:
        return under_lock()
    except Refusal as refusal:
        _refuse(signer=signer, subject_human_id=subject_human_id, product=product, refusal=refusal)


def signature_create(
    *,
    subject: Any,
    product: Product,
    signer: User,
    meaning: str,
    role: str,
    comment: str,
    content: dict[str, Any],
    policy_version: PolicyVersion | None,
    expires_at=None,
) -> Signature:
    """Write the signature row and its audit event (the caller holds the subject's row lock)."""
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
        content_sha256=canonical_sha256(content),
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
