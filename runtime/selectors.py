"""Reads of the runtime record: the deployment log, what runs now, the walk-back from a deployment, drift, reviews."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from approvals.models import Promotion
from changecontrol.access import visible_product_ids
from changecontrol.models import ApiToken, ChangeRequest, Environment, Signature, User, record_type
from common.errors import ValidationFailed
from common.times import query_moment
from evidence.models import BuildCommit, TestResult
from runtime.models import BreakGlassReview, Deployment, DriftFinding, EnvironmentSnapshot
from traceability.services import REFERENCE_PATTERN

CSV_COLUMNS = [
    "id",
    "deployed_at",
    "product",
    "environment",
    "kind",
    "authorised",
    "artifact",
    "digest",
    "release",
    "build",
    "commit",
    "deployer",
    "pipeline_url",
    "decision",
    "reasons",
]


def deployments_visible_to(user: User, token: ApiToken | None = None) -> QuerySet[Deployment]:
    # Everything a row of the log, its CSV and its API shows, joined: the build's human ID names its product, and
    # a reviewed break-glass row shows its reviewer and the signature.
    return Deployment.objects.filter(product_id__in=visible_product_ids(user, token)).select_related(
        "product",
        "environment",
        "artifact",
        "artifact__build__product",
        "release",
        "deployer",
        "review__reviewer",
        "review__signature__signer",
    )


def deployment_filters(params) -> dict[str, Any]:
    """Validate the log's query parameters (API, page and CSV share them); bad values are 400 naming the field."""
    kind = (params.get("kind") or "").strip()
    if kind and kind not in Deployment.Kind.values:
        raise ValidationFailed(f"kind must be one of {', '.join(Deployment.Kind.values)}, not {kind[:40]!r}")
    authorised = (params.get("authorised") or "").strip().lower()
    if authorised not in ("", "true", "false", "1", "0", "yes", "no"):
        raise ValidationFailed(f"authorised must be true or false, not {authorised[:20]!r}")
    return {
        "product": (params.get("product") or "").strip(),
        "environment": (params.get("environment") or "").strip(),
        "since": query_moment(params.get("since"), name="since"),
        "until": query_moment(params.get("until"), end_of_day=True, name="until"),
        "kind": kind,
        "authorised": None if authorised == "" else authorised in ("true", "1", "yes"),
    }


def deployments_filter(
    queryset: QuerySet[Deployment], *, product="", environment="", since=None, until=None, kind="", authorised=None
) -> QuerySet[Deployment]:
    if product:
        queryset = queryset.filter(product__key=product)
    if environment:
        queryset = queryset.filter(environment__key=environment)
    if since is not None:
        queryset = queryset.filter(deployed_at__gte=since)
    if until is not None:
        queryset = queryset.filter(deployed_at__lte=until)
    if kind:
        queryset = queryset.filter(kind=kind)
    if authorised is not None:
        queryset = queryset.filter(authorised=authorised)
    return queryset.order_by("-deployed_at", "-id")


def csv_row(deployment: Deployment) -> list[str]:
    artifact = deployment.artifact  # none for a digest no build registered
    build = artifact.build if artifact is not None and artifact.build_id else None
    return [
        deployment.human_id,
        deployment.deployed_at.isoformat(),
        deployment.product.key,
        deployment.environment.key,
        deployment.kind,
        "true" if deployment.authorised else "false",
        artifact.name if artifact is not None else "",
        deployment.digest,
        deployment.release.version if deployment.release_id else "",
        build.human_id if build is not None else "",
        build.commit if build is not None else "",
        deployment.deployer.username,
        deployment.pipeline_url,
        (deployment.decision_snapshot or {}).get("decision", ""),
        "; ".join(deployment.reasons or []),
    ]


def running_now(environment: Environment) -> list[Deployment]:
    """What runs in an environment now by the deployment record: the latest deployment of each artifact name."""

    def shown_as(deployment: Deployment) -> str:
        # A digest no build registered has no name to stand for: it is its own row, after the named ones.
        return deployment.artifact.name if deployment.artifact_id else deployment.digest

    latest: dict[str, Deployment] = {}
    for deployment in (
        Deployment.objects.filter(environment=environment)
        .select_related("artifact", "artifact__build__product", "release", "deployer", "environment", "product")
        .order_by("-deployed_at", "-id")[:5000]
    ):
        latest.setdefault(shown_as(deployment), deployment)
    return sorted(latest.values(), key=lambda d: (d.artifact_id is None, shown_as(d)))


def latest_snapshot(environment: Environment) -> EnvironmentSnapshot | None:
    return EnvironmentSnapshot.objects.filter(environment=environment).order_by("-taken_at", "-id").first()


def findings_for(environment: Environment, *, state: str = DriftFinding.State.OPEN) -> QuerySet[DriftFinding]:
    queryset = DriftFinding.objects.filter(environment=environment).select_related("opened_by", "resolved_by")
    return queryset.filter(state=state) if state else queryset


def reviews_visible_to(user: User) -> QuerySet[BreakGlassReview]:
    # Everything a row shows and the content a reviewer would sign (break_glass_review_signing_content) reads, joined.
    return BreakGlassReview.objects.filter(product_id__in=visible_product_ids(user)).select_related(
        "deployment",
        "deployment__product",
        "deployment__environment",
        "deployment__artifact",
        "deployment__release__product",
        "deployment__deployer",
        "product",
        "reviewer",
        "signature",
    )


def break_glass_review_signing_content(review: BreakGlassReview) -> dict[str, Any]:
    """What a retrospective review's signature is bound to and what its reviewer is shown (Part 11 §11.70): the
    break-glass deployment as recorded. The reviewer's findings are their own words, written with the signature
    (its comment, like any signer's comment) rather than part of what they were shown."""
    deployment = review.deployment
    return {
        "review": review.human_id,
        "deployment": deployment.human_id,
        "product": deployment.product.key,
        "environment": deployment.environment.key,
        "artifact": deployment.digest,
        "release": str(deployment.release) if deployment.release_id else None,
        "deployer": deployment.deployer.username,
        "deployed_at": deployment.deployed_at.isoformat(),
        "justification": deployment.justification,
    }


def walk_back(deployment: Deployment) -> dict[str, Any]:
    """artifact → build → commits → CRs and requirements → approvals and gates: where this piece came from.

    A digest no build registered walks back no further than itself (`artifact.registered` is false)."""
    artifact, release = deployment.artifact, deployment.release
    build = artifact.build if artifact is not None else None
    commits = list(BuildCommit.objects.filter(build=build).order_by("position", "id")) if build else []
    references = {m.upper() for c in commits for m in REFERENCE_PATTERN.findall(c.message or "")}
    change_requests = list(release.change_requests.order_by("pk")) if release else []
    cited_pks = [int(r[3:]) for r in references if r.startswith("CR-") and r[3:].isdigit()]
    cited = ChangeRequest.objects.filter(product=deployment.product, pk__in=cited_pks).exclude(
        pk__in=[cr.pk for cr in change_requests]
    )
    change_requests += list(cited)
    requirements = {r for r in references if r.startswith("REQ-")}
    for change_request in change_requests:
        requirements |= {
            m.upper()
            for m in REFERENCE_PATTERN.findall(change_request.affected_items or "")
            if m.upper().startswith("REQ-")
        }
    for ids in (
        TestResult.objects.filter(artifact=artifact)
        .exclude(requirement_ids=[])
        .values_list("requirement_ids", flat=True)[:2000]
        if artifact is not None
        else []
    ):
        requirements |= {str(i).upper() for i in ids or []}
    promotions = list(release.promotions.select_related("environment").order_by("id")) if release else []
    here = next((p for p in reversed(promotions) if p.environment_id == deployment.environment_id), None)
    approvals = (
        list(
            Signature.objects.filter(subject_type=record_type(Promotion), subject_id=here.pk)
            .select_related("signer")
            .order_by("signed_at")
        )
        if here
        else []
    )
    snapshot = deployment.decision_snapshot or {}
    return {
        "artifact": (
            {
                "digest": artifact.digest,
                "name": artifact.name,
                "kind": artifact.kind,
                "uri": artifact.uri,
                "registered": True,
            }
            if artifact is not None
            else {"digest": deployment.digest, "name": None, "kind": None, "uri": None, "registered": False}
        ),
        "build": (
            {
                "id": build.human_id,
                "commit": build.commit,
                "branch": build.branch,
                "pipeline_url": build.pipeline_url,
                "ci_system": build.ci_system,
                "builder_identity": build.builder_identity,
            }
            if build
            else None
        ),
        "commits": [
            {
                "sha": c.sha,
                "author_email": c.author_email,
                "message": (c.message or "").splitlines()[0][:200] if c.message else "",
                "references": sorted({m.upper() for m in REFERENCE_PATTERN.findall(c.message or "")}),
            }
            for c in commits[:200]
        ],
        "release": (
            {"product": release.product.key, "version": release.version, "manifest_sha256": release.manifest_sha256}
            if release
            else None
        ),
        "change_requests": [
            {"id": cr.human_id, "title": cr.title, "tier": cr.tier, "state": cr.state} for cr in change_requests
        ],
        "requirements": sorted(requirements, key=lambda r: (len(r), r)),
        "promotions": [
            {"id": p.human_id, "environment": p.environment.key, "state": p.state, "decided_at": p.decided_at}
            for p in promotions
        ],
        "approvals": [
            {
                "promotion": here.human_id,
                "signer": s.signer.username,
                "printed_name": s.printed_name,
                "meaning": s.meaning,
                "role": s.role,
                "signed_at": s.signed_at,
                "valid": s.invalidated_at is None,
                "url": f"/signatures/{s.pk}",
            }
            for s in approvals
        ],
        "gates": snapshot.get("gates") or [],
        "decision": {
            "id": deployment.decision.human_id if deployment.decision_id else None,
            "decision": snapshot.get("decision"),
            "policy": snapshot.get("policy"),
            "reasons": snapshot.get("reasons") or [],
            "evaluated_at": snapshot.get("evaluated_at"),
        },
    }
