"""Demo data for `make run`: deployments of what the approvals demo approved, a break-glass and drift.

Called by `config.demo` after `approvals.demo.seed`. Everything goes through the real services, so authorisation,
the break-glass review and drift findings are genuine. Safe to run twice.
"""

from __future__ import annotations

from approvals.demo import HOTFIX_DIGEST
from approvals.models import Promotion
from changecontrol.models import User
from common.errors import DomainError
from evidence import services as evidence_services
from evidence.models import Artifact
from runtime import deployments, drift
from runtime.models import Deployment

HOTFIX_BUILDER = "https://github.com/acme/rsd/.github/workflows/hotfix.yml@refs/heads/hotfix/cert-rotation"
UNKNOWN_DIGEST = "sha256:" + "d1f7" * 16  # an image nobody's build registered: drift of unknown provenance


def _hotfix_artifact(product, *, ci: User) -> Artifact:
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


def seed(context) -> None:
    """Deployments of what was approved, one break-glass with its review due, and a snapshot that shows drift."""
    out = context.stdout
    product = context.products.get("rsd")
    if product is None:
        out.write("runtime demo: no product 'rsd'; skipped\n")
        return
    ci = User.objects.filter(username="ci-rsd").first() or context.person("ravi", "rory")
    if Deployment.objects.filter(product=product).exists():
        out.write("runtime demo: rsd deployments already seeded\n")
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
            out.write(f"runtime demo: {deployment.human_id} {artifact.name} → {promotion.environment.key}\n")
    sre = context.person("sean")
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
            out.write(f"runtime demo: {deployment.human_id} break-glass by {sre.username}; review due\n")
        except DomainError as error:
            out.write(f"runtime demo: break-glass not recorded: {error.detail}\n")
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
            f"runtime demo: {result.snapshot.human_id} of production: {len(result.opened)} drift finding(s) opened\n"
        )
