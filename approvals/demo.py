"""Demo data for `make run`: releases of rsd promoted through integration and staging to production, signed.

Called by `config.demo` after `evidence.demo.seed`. Everything goes through the real services, so freezing,
gates, separation of duties and signatures are genuine; where the policy blocks (e.g. evidence the demo
lacks), the promotion stays waiting and the page shows why. Safe to run twice.
"""

from __future__ import annotations

import json

from approvals import releases, selectors, services, sod
from approvals import status as approval_status
from approvals.models import Promotion, Release
from changecontrol import esign
from changecontrol.models import ChangeRequest, User
from changecontrol.roles import roles_of
from common.errors import DomainError
from evidence import services as evidence_services
from evidence.models import Artifact, Evidence
from evidence.processing import evidence_process

HOTFIX_DIGEST = "sha256:" + "b0f1" * 16  # the break-glass hotfix the runtime demo deploys: in no release

# A scan of the demo image that found nothing critical (what a clean Grype run reports).
GRYPE_CLEAN = {
    "matches": [],
    "source": {"type": "image"},
    "distro": {"name": "debian", "version": "12"},
    "descriptor": {"name": "grype", "version": "0.80.0"},
}


def _scan(artifact: Artifact, ci: User) -> None:
    """Upload a clean vulnerability scan if the evidence demo did not (the staging gate needs one)."""
    if Evidence.objects.filter(artifact=artifact, evidence_type__in=("grype", "trivy", "osv")).exists():
        return
    evidence, _ = evidence_services.evidence_receive_bytes(
        artifact=artifact,
        actor=ci,
        evidence_type="grype",
        data=json.dumps(GRYPE_CLEAN).encode(),
        name="grype.json",
        signature=None,
    )
    evidence_process(evidence_id=evidence.pk)


def seed(context) -> None:
    out = context.stdout
    product = context.products.get("rsd")
    if product is None:
        out.write("approvals demo: no product 'rsd'; skipped\n")
        return
    # The break-glass hotfix (seeded below) belongs to no release, on this run or the next.
    artifacts = list(Artifact.objects.filter(product=product).exclude(digest=HOTFIX_DIGEST).order_by("id"))
    if not artifacts:
        out.write("approvals demo: rsd has no artifacts (evidence demo not run); skipped\n")
        return
    manager = context.person("ravi", "rory")
    reviewer = context.person("grace", "quinn")
    if manager is None or reviewer is None:
        out.write("approvals demo: the demo release manager or quality reviewer is missing; skipped\n")
        return
    ci = User.objects.filter(username="ci-rsd").first() or manager
    crs = list(ChangeRequest.objects.filter(product=product, state__in=("approved", "implemented")).order_by("id")[:2])
    # 7.2.3 is the older artifact when there are two; with one, the demo shows 7.2.4 only.
    plan = [("7.2.4", artifacts[-1])] if len(artifacts) == 1 else [("7.2.3", artifacts[-2]), ("7.2.4", artifacts[-1])]
    for version, artifact in plan:
        if Release.objects.filter(product=product, version=version).exists():
            out.write(f"approvals demo: rsd {version} already seeded\n")
            continue
        _scan(artifact, ci)
        try:
            release = releases.release_create(
                product=product,
                actor=manager,
                version=version,
                artifact_digests=[artifact.digest],
                change_request_ids=[cr.human_id for cr in crs],
            )
        except DomainError as error:
            out.write(f"approvals demo: rsd {version} not created: {error.detail}\n")
            continue
        for environment in ("integration", "staging", "production"):
            try:
                promotion = services.promotion_request(release=release, environment_key=environment, actor=manager)
            except DomainError as error:
                out.write(f"approvals demo: {release} → {environment} not requested: {error.detail}\n")
                break
            promotion.refresh_from_db()
            _sign_missing(context, promotion, preferred=reviewer)
            promotion.refresh_from_db()
            if promotion.state != Promotion.State.APPROVED:
                reasons = approval_status.promotion_status(promotion)["reasons"]
                out.write(
                    f"approvals demo: {promotion.human_id} ({release} → "
                    f"{environment}) waits: {'; '.join(reasons[:3])}\n"
                )
                break
            out.write(f"approvals demo: {promotion.human_id} {release} → {environment} approved\n")


def _sign_missing(context, promotion: Promotion, *, preferred: User) -> None:
    """Each missing role signed by a demo person who holds it and whom separation of duties allows."""
    people = [preferred, *[p for p in context.people.values() if p.pk != preferred.pk]]
    for role in approval_status.promotion_status(promotion)["approvals"]["missing"]:
        signer = next(
            (
                p
                for p in people
                if role in roles_of(p, promotion.release.product) and sod.refusal(promotion=promotion, signer=p) is None
            ),
            None,
        )
        if signer is None:
            context.stdout.write(f"approvals demo: nobody in the demo may sign {promotion.human_id} as {role}\n")
            continue
        try:
            services.promotion_sign(
                promotion=promotion,
                signer=signer,
                username=signer.username,
                password=context.password,
                meaning="approved",
                seen_sha256=esign.content_sha256(selectors.promotion_signing_content(promotion)),
                role=role,
                comment="Demo: gates and evidence reviewed.",
            )
        except DomainError as error:
            context.stdout.write(
                f"approvals demo: {promotion.human_id} not signed by {signer.username}: {error.detail}\n"
            )
