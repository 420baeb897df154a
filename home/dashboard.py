"""The home dashboard: one selector per panel, each a fixed number of queries, ordered by the person's roles.

Every panel reads only the products the person may see (`role_map`), returns its full count and at most
`ROW_LIMIT` rows, and so costs the same number of queries however much data there is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Count, JSONField, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from approvals.models import Decision, Promotion
from approvals.selectors import pending_approvals_for
from changecontrol.models import ChangeRequest, Product, Role, Signature, User, record_type
from changecontrol.roles import role_map
from evidence.models import Evidence
from runtime.models import AdvisoryFinding, BreakGlassReview, Deployment, DriftFinding

ROW_LIMIT = 8
AGEING_DAYS = 7  # a submitted CR undecided for longer than this is ageing
EVIDENCE_WINDOW_DAYS = 30  # failed and rejected evidence older than this has been dealt with or superseded
UNAUTHORISED_WINDOW_DAYS = 90
SIGNING_ROLES = frozenset({Role.QUALITY, Role.SECURITY, Role.PRODUCT})

# What each role looks at first; roles are taken in this order, so a quality reviewer who is also an
# auditor still sees pending approvals first.
ROLE_FOCUS: dict[str, tuple[str, ...]] = {
    Role.QUALITY: ("pending_approvals", "break_glass_reviews", "failed_evidence"),
    Role.SECURITY: ("pending_approvals", "failed_evidence", "vulnerability_findings"),
    Role.PRODUCT: ("pending_approvals",),
    Role.RELEASE_MANAGER: ("blocked_promotions", "ageing_change_requests", "my_drafts"),
    Role.SRE: ("drift_findings", "break_glass_reviews", "unauthorised_deployments", "vulnerability_findings"),
    Role.AUDITOR: ("unauthorised_deployments", "break_glass_reviews", "drift_findings", "failed_evidence"),
    Role.ENGINEER: ("my_drafts", "failed_evidence", "blocked_promotions"),
    Role.ADMIN: ("failed_evidence", "unauthorised_deployments"),
}
PANEL_ORDER = (
    "pending_approvals",
    "blocked_promotions",
    "break_glass_reviews",
    "drift_findings",
    "vulnerability_findings",
    "unauthorised_deployments",
    "failed_evidence",
    "ageing_change_requests",
    "my_drafts",
)


@dataclass
class Panel:
    """One dashboard panel: a full count, the first rows, and where to see the rest."""

    key: str
    title: str
    count: int = 0
    rows: list[Any] = field(default_factory=list)
    empty: str = ""
    link: str = ""
    link_label: str = ""
    # "error" or "warning" when the count is not zero; the page colours the panel with it.
    tone: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def template(self) -> str:
        return f"home/_{self.key}.html"

    @property
    def more(self) -> int:
        return max(self.count - len(self.rows), 0)

    @property
    def state(self) -> str:
        return self.tone if self.count else "clear"


@dataclass
class Dashboard:
    """The panels of one person's home page, the ones their roles put first and the rest."""

    focus: list[Panel]
    others: list[Panel]
    roles: frozenset[str]
    product_ids: list[int]

    @property
    def panels(self) -> list[Panel]:
        return self.focus + self.others

    def panel(self, key: str) -> Panel:
        return next(p for p in self.panels if p.key == key)


# ---------------------------------------------------------------- assembling


def dashboard_for(user: User, *, now=None) -> Dashboard:
    """Every panel for this person, with the ones their roles care about first."""
    now = now or timezone.now()
    roles_by_product = role_map(user)
    product_ids = sorted(roles_by_product)
    held = frozenset(role for roles in roles_by_product.values() for role in roles)
    builders = {
        "pending_approvals": lambda: pending_approvals(user=user),
        "blocked_promotions": lambda: blocked_promotions(product_ids=product_ids),
        "break_glass_reviews": lambda: break_glass_reviews(product_ids=product_ids, now=now),
        "drift_findings": lambda: drift_findings(product_ids=product_ids),
        "vulnerability_findings": lambda: vulnerability_findings(product_ids=product_ids),
        "unauthorised_deployments": lambda: unauthorised_deployments(product_ids=product_ids, now=now),
        "failed_evidence": lambda: failed_evidence(product_ids=product_ids, now=now),
        "ageing_change_requests": lambda: ageing_change_requests(product_ids=product_ids, now=now),
        "my_drafts": lambda: my_drafts(user=user, product_ids=product_ids),
    }
    focus_keys: list[str] = []
    for role in ROLE_FOCUS:
        if role in held:
            focus_keys.extend(key for key in ROLE_FOCUS[role] if key not in focus_keys)
    other_keys = [key for key in PANEL_ORDER if key not in focus_keys]
    if not product_ids:
        return Dashboard(focus=[], others=[], roles=held, product_ids=[])
    return Dashboard(
        focus=[builders[key]() for key in focus_keys],
        others=[builders[key]() for key in other_keys],
        roles=held,
        product_ids=product_ids,
    )


def my_products(user: User) -> list[dict]:
    """The products the person holds a role on, with those roles' labels."""
    roles_by_product = role_map(user)
    return [
        {"product": product, "roles": sorted(Role(r).label for r in roles_by_product[product.pk])}
        for product in Product.objects.filter(id__in=roles_by_product)
    ]


# ---------------------------------------------------------------- panels


def change_requests_awaiting(user: User) -> list[ChangeRequest]:
    """Submitted CRs whose tier asks for a role this person holds, not yet signed by them, not their own."""
    roles_by_product = role_map(user)
    submitted = (
        ChangeRequest.objects.filter(product_id__in=list(roles_by_product), state=ChangeRequest.State.SUBMITTED)
        .exclude(authors=user)
        .exclude(requester=user)
        .select_related("product", "requester", "policy_version")
        .order_by("submitted_at", "id")
    )
    signed = set(
        Signature.objects.filter(
            signer=user, invalidated_at__isnull=True, subject_type=record_type(ChangeRequest)
        ).values_list("subject_id", flat=True)
    )
    documents: dict[int, Any] = {}  # one parse per policy version, not per CR
    awaiting = []
    for change_request in submitted:
        if change_request.pk in signed or change_request.policy_version_id is None:
            continue
        document = documents.get(change_request.policy_version_id)
        if document is None:
            document = documents[change_request.policy_version_id] = change_request.policy_version.document
        rule = document.change_approval_for(change_request.tier)
        if set(rule.roles) & roles_by_product.get(change_request.product_id, frozenset()):
            awaiting.append(change_request)
    return awaiting


def pending_approvals(*, user: User) -> Panel:
    """Promotions and change requests waiting for this person's signature, the longest-waiting first."""
    rows = [
        {
            "kind": "Promotion",
            "human_id": p.human_id,
            "url": reverse("promotion", args=[p.human_id]),
            "title": f"{p.release.product.key} {p.release.version} → {p.environment.name}",
            "product": p.release.product.key,
            "tier": p.tier,
            "requester": p.requester.printed_name,
            "since": p.requested_at,
        }
        for p in pending_approvals_for(user)
    ] + [
        {
            "kind": "Change request",
            "human_id": cr.human_id,
            "url": reverse("change-request", args=[cr.human_id]),
            "title": cr.title,
            "product": cr.product.key,
            "tier": cr.tier,
            "requester": cr.requester.printed_name,
            "since": cr.submitted_at,
        }
        for cr in change_requests_awaiting(user)
    ]
    rows.sort(key=lambda row: (row["since"] is None, row["since"]))
    return Panel(
        key="pending_approvals",
        title="Awaiting my signature",
        count=len(rows),
        rows=rows[:ROW_LIMIT],
        empty="Nothing is waiting for your signature.",
        link=reverse("pending-approvals"),
        link_label="All my pending promotion approvals",
        tone="warning",
    )


def blocked_promotions(*, product_ids: list[int]) -> Panel:
    """Open promotions whose latest stored status answer is "blocked", with the blocking gates that failed."""
    latest = Decision.objects.filter(promotion=OuterRef("pk")).order_by("-id")
    blocked = (
        Promotion.objects.filter(
            release__product_id__in=product_ids,
            state__in=(Promotion.State.REQUESTED, *Promotion.SIGNABLE_STATES),
        )
        .annotate(
            latest_decision=Subquery(latest.values("decision")[:1]),
            latest_gates=Subquery(latest.values("gates")[:1], output_field=JSONField()),
            latest_reasons=Subquery(latest.values("reasons")[:1], output_field=JSONField()),
            latest_evaluated_at=Subquery(latest.values("evaluated_at")[:1]),
        )
        .filter(latest_decision=Decision.Outcome.BLOCKED)
        .select_related("release", "release__product", "environment")
        .order_by("requested_at", "id")
    )
    rows = []
    for promotion in blocked[:ROW_LIMIT]:
        failing = [g for g in (promotion.latest_gates or []) if g.get("blocking") and g.get("status") != "pass"]
        rows.append({"promotion": promotion, "failing": failing, "reasons": promotion.latest_reasons or []})
    return Panel(
        key="blocked_promotions",
        title="Promotions blocked",
        count=blocked.count(),
        rows=rows,
        empty="No open promotion is blocked by a gate.",
        tone="error",
        note="Blocking gates that failed in the latest status answer.",
    )


def failed_evidence(*, product_ids: list[int], now) -> Panel:
    """Evidence that failed to parse or was rejected in the last 30 days, newest first."""
    queryset = (
        Evidence.objects.filter(
            product_id__in=product_ids,
            state__in=(Evidence.State.FAILED, Evidence.State.REJECTED),
            uploaded_at__gte=now - timedelta(days=EVIDENCE_WINDOW_DAYS),
        )
        .select_related("artifact", "product")
        .order_by("-uploaded_at", "-id")
    )
    return Panel(
        key="failed_evidence",
        title="Evidence that failed or was rejected",
        count=queryset.count(),
        rows=list(queryset[:ROW_LIMIT]),
        empty=f"All evidence uploaded in the last {EVIDENCE_WINDOW_DAYS} days was parsed.",
        tone="warning",
        note=f"Uploaded in the last {EVIDENCE_WINDOW_DAYS} days.",
    )


def ageing_change_requests(*, product_ids: list[int], now) -> Panel:
    """Change requests submitted more than a week ago and still undecided, the oldest first."""
    queryset = (
        ChangeRequest.objects.filter(
            product_id__in=product_ids,
            state=ChangeRequest.State.SUBMITTED,
            decided_at__isnull=True,
            submitted_at__lt=now - timedelta(days=AGEING_DAYS),
        )
        .select_related("product", "requester")
        .order_by("submitted_at", "id")
    )
    rows = [{"change_request": cr, "age_days": (now - cr.submitted_at).days} for cr in queryset[:ROW_LIMIT]]
    return Panel(
        key="ageing_change_requests",
        title="Ageing change requests",
        count=queryset.count(),
        rows=rows,
        empty=f"No change request has waited more than {AGEING_DAYS} days for a decision.",
        link=reverse("change-requests") + "?state=submitted",
        link_label="All submitted change requests",
        tone="warning",
        note=f"Submitted more than {AGEING_DAYS} days ago, no decision yet.",
    )


def my_drafts(*, user: User, product_ids: list[int]) -> Panel:
    """The person's own draft change requests, the most recently edited first."""
    queryset = (
        ChangeRequest.objects.filter(product_id__in=product_ids, requester=user, state=ChangeRequest.State.DRAFT)
        .select_related("product")
        .order_by("-updated_at", "-id")
    )
    return Panel(
        key="my_drafts",
        title="My drafts",
        count=queryset.count(),
        rows=list(queryset[:ROW_LIMIT]),
        empty="You have no draft change requests.",
        link=reverse("change-requests") + "?state=draft",
        link_label="All draft change requests",
    )


def break_glass_reviews(*, product_ids: list[int], now) -> Panel:
    """Retrospective reviews of break-glass deployments still due, the earliest deadline (so overdue) first."""
    due = BreakGlassReview.objects.filter(product_id__in=product_ids, state=BreakGlassReview.State.DUE)
    counts = due.aggregate(total=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)))
    rows = [
        {
            "review": review,
            "deployment": review.deployment,
            "overdue": review.is_overdue(now),
            "url": reverse("deployment", args=[review.deployment.human_id]),
        }
        for review in due.select_related(
            "deployment", "deployment__environment", "deployment__deployer", "deployment__artifact", "product"
        ).order_by("due_at", "id")[:ROW_LIMIT]
    ]
    overdue = counts["overdue"]
    return Panel(
        key="break_glass_reviews",
        title="Break-glass reviews",
        count=counts["total"],
        rows=rows,
        empty="No break-glass deployment is waiting for its retrospective review.",
        link=reverse("break-glass"),
        link_label="All break-glass deployments",
        tone="error" if overdue else "warning",
        note=f"{overdue} overdue" if overdue else "",
        extra={"overdue": overdue},
    )


def drift_findings(*, product_ids: list[int]) -> Panel:
    """Open drift findings: what runs but was never approved, has no known build, or is missing."""
    queryset = DriftFinding.objects.filter(product_id__in=product_ids, state=DriftFinding.State.OPEN)
    rows = [
        {"finding": finding, "url": reverse("drift", args=[finding.product.key])}
        for finding in queryset.select_related("environment", "product").order_by("-opened_at", "-id")[:ROW_LIMIT]
    ]
    return Panel(
        key="drift_findings",
        title="Drift findings",
        count=queryset.count(),
        rows=rows,
        empty="What runs matches what was approved: no open drift finding.",
        tone="error",
    )


def vulnerability_findings(*, product_ids: list[int]) -> Panel:
    """Open advisory findings: released versions running somewhere that an imported OSV advisory affects."""
    queryset = AdvisoryFinding.objects.filter(product_id__in=product_ids, state=AdvisoryFinding.State.OPEN)
    rows = [
        {
            "finding": finding,
            "url": reverse("affected") + "?" + urlencode({"vulnerability": finding.advisory.osv_id}),
        }
        for finding in queryset.select_related("advisory", "product", "release").order_by("-opened_at", "-id")[
            :ROW_LIMIT
        ]
    ]
    return Panel(
        key="vulnerability_findings",
        title="Vulnerable releases running",
        count=queryset.count(),
        rows=rows,
        empty="No imported advisory affects a release running now (or signed VEX says it does not apply).",
        tone="error",
    )


def unauthorised_deployments(*, product_ids: list[int], now) -> Panel:
    """Deployments recorded although the status answer did not allow them, in the last 90 days."""
    queryset = Deployment.objects.filter(
        product_id__in=product_ids, authorised=False, deployed_at__gte=now - timedelta(days=UNAUTHORISED_WINDOW_DAYS)
    )
    rows = [
        {"deployment": deployment, "url": reverse("deployment", args=[deployment.human_id])}
        for deployment in queryset.select_related("environment", "artifact", "release", "deployer", "product").order_by(
            "-deployed_at", "-id"
        )[:ROW_LIMIT]
    ]
    return Panel(
        key="unauthorised_deployments",
        title="Unauthorised deployments",
        count=queryset.count(),
        rows=rows,
        empty=f"Every deployment in the last {UNAUTHORISED_WINDOW_DAYS} days was authorised.",
        link=reverse("deployments") + "?authorised=false",
        link_label="Deployment log: unauthorised only",
        tone="error",
        note=f"In the last {UNAUTHORISED_WINDOW_DAYS} days.",
    )
