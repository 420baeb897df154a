"""Demo data for `make run`: releases of rsd promoted through integration and staging to production, signed.

Called by `seed_demo` after `evidence.demo.seed`. Everything goes through the real services, so freezing,
gates, separation of duties and signatures are genuine; where the policy blocks (e.g. evidence the demo
lacks), the promotion stays waiting and the page shows why. Safe to run twice.
"""

from __future__ import annotations

import json

from approvals import services
from approvals.models import Promotion, Release
from changecontrol.errors import DomainError
from changecontrol.models import ChangeRequest, User
from evidence.models import Artifact, Evidence

# A scan of the demo image that found nothing critical (what a clean Grype run reports).
GRYPE_CLEAN = {
    "matches": [],
    "source": {"type": "image"},
    "distro": {"name": "debian", "version": "12"},
    "descriptor": {"name": "grype", "version": "0.80.0"},
}


def _person(context, *names: str) -> User | None:
    for name in names:
        user = context.people.get(name) if isinstance(context.people, dict) else None
        if user is not None:
            return user
    return None


def _scan(artifact: Artifact, ci: User, out) -> None:
    """Upload a clean vulnerability scan if the evidence demo did not (the staging gate needs one)."""
    if Evidence.objects.filter(artifact=artifact, evidence_type__in=("grype", "trivy", "osv")).exists():
        return
    try:
        from evidence import services as evidence_services
        from evidence.processing import evidence_process
    except ImportError:
        out.write("approvals demo: evidence services unavailable; no scan uploaded\n")
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
    product = context.products.get("rsd") if isinstance(context.products, dict) else None
    if product is None:
        out.write("approvals demo: no product 'rsd'; skipped\n")
        return
    # The break-glass hotfix (seeded below) belongs to no release, on this run or the next.
    artifacts = list(Artifact.objects.filter(product=product).exclude(digest=HOTFIX_DIGEST).order_by("id"))
    if not artifacts:
        out.write("approvals demo: rsd has no artifacts (evidence demo not run); skipped\n")
        return
    manager = _person(context, "ravi", "rory")
    reviewer = _person(context, "grace", "quinn")
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
        _scan(artifact, ci, out)
        try:
            release = services.release_create(
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
                reasons = services.promotion_status(promotion)["reasons"]
                out.write(
                    f"approvals demo: {promotion.human_id} ({release} → "
                    f"{environment}) waits: {'; '.join(reasons[:3])}\n"
                )
                break
            out.write(f"approvals demo: {promotion.human_id} {release} → {environment} approved\n")
    _seed_runtime(context, product, ci=ci)


def _sign_missing(context, promotion: Promotion, *, preferred: User) -> None:
    """Each missing role signed by a demo person who holds it and whom separation of duties allows."""
    from changecontrol.roles import roles_of

    people = [preferred, *[p for p in context.people.values() if p.pk != preferred.pk]]
    for role in services.promotion_status(promotion)["approvals"]["missing"]:
        signer = next(
            (
                p
                for p in people
                if role in roles_of(p, promotion.release.product)
                and services.sod_refusal(promotion=promotion, signer=p) is None
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
                role=role,
                comment="Demo: gates and evidence reviewed.",
            )
        except DomainError as error:
            context.stdout.write(
                f"approvals demo: {promotion.human_id} not signed by {signer.username}: {error.detail}\n"
            )


HOTFIX_DIGEST = "sha256:" + "b0f1" * 16  # the break-glass hotfix: built, never released or approved
HOTFIX_BUILDER = "https://github.com/acme/rsd/.github/workflows/hotfix.yml@refs/heads/hotfix/cert-rotation"
UNKNOWN_DIGEST = "sha256:" + "d1f7" * 16  # an image nobody's build registered: drift of unknown provenance


def _hotfix_artifact(product, *, ci: User) -> Artifact:
    from evidence import services as evidence_services

    build, _ = evidence_services.build_register(
        product=product,
        actor=ci,
        commit="5e1f" * 10,
        pipeline_url="https://ci.example/acme/rsd/pipelines/hotfix-cert-rotation",
        branch="hotfix/cert-rotation",
        ci_system="github",
        builder_identity=HOTFIX_BUILDER,
    )
    artifact, _ = evidence_services.artifact_register(
        product=product,
        actor=ci,
        build=build,
        name="ghcr.io/acme/rsd-scoring-service",
        digest=HOTFIX_DIGEST,
        kind="container",
    )
    return artifact


def _seed_runtime(context, product, *, ci: User) -> None:
    """Deployments of what was approved, one break-glass with its review due, and a snapshot that shows drift."""
    from approvals import deployments, drift
    from approvals.models import Deployment

    out = context.stdout
    if Deployment.objects.filter(product=product).exists():
        out.write("approvals demo: rsd deployments already seeded\n")
        return
    environments = {e.key: e for e in product.environments.all()}
    approved = (
        Promotion.objects.filter(release__product=product, state=Promotion.State.APPROVED)
        .select_related("release", "environment")
        .order_by("environment__order", "id")
    )
    for promotion in approved:
        for artifact in promotion.release.artifacts.all():
            deployment = deployments.deployment_record(
                artifact=artifact,
                environment=promotion.environment,
                deployer=ci,
                pipeline_url=f"https://ci.example/acme/rsd/deploy/{promotion.pk}",
            )
            out.write(f"approvals demo: {deployment.human_id} {artifact.name} → {promotion.environment.key}\n")
    sre = _person(context, "sean")
    production = environments.get("production")
    if sre is not None and production is not None:
        # An emergency: a hotfix image built outside any release, deployed before anyone could approve it, so
        # the deployment log shows it unauthorised with its retrospective review due.
        hotfix = _hotfix_artifact(product, ci=ci)
        try:
            deployment = deployments.deployment_record(
                artifact=hotfix,
                environment=production,
                deployer=sre,
                kind=Deployment.Kind.BREAK_GLASS,
                justification="Demo: the scoring service crash-looped after a certificate rotation; "
                "the fixed image could not wait for the pipeline.",
            )
            out.write(f"approvals demo: {deployment.human_id} break-glass by {sre.username}; review due\n")
        except DomainError as error:
            out.write(f"approvals demo: break-glass not recorded: {error.detail}\n")
    if production is not None:
        running = [
            {"name": d.artifact.name, "digest": d.artifact.digest}
            for d in Deployment.objects.filter(environment=production, artifact__isnull=False).select_related(
                "artifact"
            )
        ]
        running.append({"name": "rsd-sidecar", "digest": UNKNOWN_DIGEST})
        result = drift.snapshot_record(environment=production, reporter=ci, artifacts=running)
        out.write(
            f"approvals demo: {result.snapshot.human_id} of production: {len(result.opened)} drift finding(s) opened\n"
        )
