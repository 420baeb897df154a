"""Separation of duties for a promotion (DESIGN §4.5, §8): who may never approve it, and by which rule.

No single person both writes the code and ships it: the requester, a commit author, the builder, an author of a
change request the release delivers, and whoever deployed its digests cannot approve it. Each refusal names its
rule (`sod.<rule>`), and the signing service audits it.
"""

from __future__ import annotations

from approvals.models import Promotion
from changecontrol import esign
from changecontrol.models import User
from evidence.models import Build, BuildCommit


def refusal(*, promotion: Promotion, signer: User) -> esign.Refusal | None:
    """The first separation-of-duties rule that excludes this signer from approving, or None."""
    release = promotion.release
    if signer.pk == promotion.requester_id:
        return esign.Refusal(
            "sod.requester_cannot_sign", f"you requested {promotion.human_id}, so you cannot approve it"
        )
    builds = Build.objects.filter(artifacts__releases=release).distinct()
    email = (signer.email or "").strip().lower()
    if email and BuildCommit.objects.filter(build__in=builds, author_email__iexact=email).exists():
        return esign.Refusal(
            "sod.commit_author_cannot_sign",
            f"you ({email}) authored a commit in {release}, so you cannot approve its promotion",
        )
    identities = {signer.username.lower(), *([email] if email else [])}
    for build in builds:
        if build.registered_by_id == signer.pk or build.builder_identity.strip().lower() in identities:
            return esign.Refusal(
                "sod.builder_cannot_sign",
                f"you are the builder of {build.human_id} in {release}, so you cannot approve its promotion",
            )
    for change_request in release.change_requests.all():
        if change_request.requester_id == signer.pk or change_request.authors.filter(pk=signer.pk).exists():
            return esign.Refusal(
                "sod.change_author_cannot_sign",
                f"you requested or wrote {change_request.human_id}, which "
                f"{release} delivers, so you cannot approve its promotion",
            )
    # DESIGN §4.5: whoever shipped the release's digests anywhere does not also approve where they go next.
    # Deployments are the runtime app's records, above this one: they are reached through the relation it
    # declares on each artifact (`artifact.deployments`), never by importing it.
    deployment = min(
        (
            found
            for artifact in release.artifacts.all()
            for found in artifact.deployments.filter(deployer=signer).select_related("environment")
        ),
        key=lambda found: (found.deployed_at, found.pk),
        default=None,
    )
    if deployment is not None:
        return esign.Refusal(
            "sod.deployer_cannot_sign",
            f"you deployed {release} to {deployment.environment.key} ({deployment.human_id}), "
            "so you cannot approve its promotion",
        )
    return None
