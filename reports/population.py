"""The population report (issue 7, item 4): every production deployment in a period, with its evidence.

An auditor samples from a population; the population must be provably complete. So the query is versioned
(`POPULATION_QUERY_VERSION`, and the sha256 of the SQL Django sends), and the rows are counted a second time by
an independent raw SQL count over the same table: the report states both numbers and whether they agree.
Exceptions — unauthorised deployments, break-glass, missing or overdue retrospective reviews, deployments of
no release, failing tests — come first, so the auditor's sample starts where the risk is.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from changecontrol.models import ApiToken, ChangeRequest, Signature, User, record_type
from reports.audit_export import render_pdf
from reports.packets import _manifestation, _utc

# Bump when the selection changes (which deployments count, or how the period is bounded); the version and the
# hash of the SQL text are printed on every report, so two reports can be shown to use the same query.
# population/2: deployments of digests no build registered count too (their artifact is empty).
POPULATION_QUERY_VERSION = "population/2"
PRODUCTION = "production"
# The independent count: written by hand against the tables, not derived from the ORM query it checks.
COMPLETENESS_SQL = """
SELECT count(*) FROM approvals_deployment d
JOIN changecontrol_environment e ON e.id = d.environment_id
WHERE d.product_id IN ({products}) AND e.key = %s AND d.deployed_at >= %s AND d.deployed_at < %s
"""
CSV_FIELDS = [
    "deployment",
    "deployed_at",
    "product",
    "environment",
    "kind",
    "authorised",
    "emergency",
    "exceptions",
    "release",
    "artifact",
    "digest",
    "deployer",
    "change_requests",
    "approvals",
    "tests_passed",
    "tests_failed",
    "tests_skipped",
    "break_glass_review",
    "justification",
    "reasons",
]


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after end 00:00 UTC): both days whole, no instant counted twice."""
    return datetime.combine(start, time.min, tzinfo=UTC), datetime.combine(
        end + timedelta(days=1), time.min, tzinfo=UTC
    )


def _population_queryset(*, product_ids, environment: str, since: datetime, until: datetime):
    from runtime.models import Deployment

    return (
        Deployment.objects.filter(
            product_id__in=product_ids, environment__key=environment, deployed_at__gte=since, deployed_at__lt=until
        )
        .select_related("product", "environment", "artifact", "release", "deployer", "review__reviewer")
        .order_by("deployed_at", "id")
    )


def query_text_sha256(queryset) -> tuple[str, str]:
    """The SQL Django sends (parameters as placeholders, IN lists folded so the product count does not matter)."""
    sql, _ = queryset.query.sql_with_params()
    normalised = re.sub(r"IN \(%s(?:, %s)*\)", "IN (%s…)", sql)
    return normalised, hashlib.sha256(normalised.encode()).hexdigest()


def independent_count(*, product_ids, environment: str, since: datetime, until: datetime) -> int:
    ids = sorted(product_ids)
    if not ids:
        return 0
    sql = COMPLETENESS_SQL.format(products=", ".join(["%s"] * len(ids)))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ids, environment, since, until])
        return cursor.fetchone()[0]


def _row_exceptions(deployment, tests: dict[str, int], now: datetime) -> list[str]:
    found = []
    if not deployment.authorised:
        found.append("unauthorised")
    if deployment.kind == "break_glass":
        found.append("break-glass")
        review = getattr(deployment, "review", None)
        if review is None:
            found.append("no retrospective review")
        elif review.state != "reviewed":
            found.append("retrospective review overdue" if review.is_overdue(now) else "retrospective review due")
    if deployment.artifact_id is None:
        found.append("unknown provenance")
    if deployment.release_id is None:
        found.append("no release")
    if tests.get("failed", 0) + tests.get("error", 0):
        found.append("failing tests")
    if tests.get("total", 0) == 0:
        found.append("no test evidence")
    return found


def population_report(
    *,
    user: User,
    token: ApiToken | None = None,
    start: date,
    end: date,
    product: str = "",
    environment: str = PRODUCTION,
) -> dict[str, Any]:
    """Every `environment` deployment of the products the caller may see, from `start` to `end` (UTC days)."""
    from approvals.models import Promotion, Release
    from changecontrol.access import visible_products
    from evidence.models import TestResult

    products = visible_products(user, token)
    if product:
        products = products.filter(key=product)
    product_ids = set(products.values_list("id", flat=True))
    since, until = period_bounds(start, end)
    queryset = _population_queryset(product_ids=product_ids, environment=environment, since=since, until=until)
    sql_text, sql_sha256 = query_text_sha256(queryset)

    # 1. The population itself, then its evidence in one query per kind of fact.
    deployments = list(queryset)
    release_ids = {d.release_id for d in deployments if d.release_id}
    artifact_ids = {d.artifact_id for d in deployments if d.artifact_id}
    # Release human IDs name their product: one query for them all, leaving the population's own SQL (and so
    # its hash) as it is.
    releases = {r.pk: r for r in Release.objects.filter(pk__in=release_ids).select_related("product")}
    crs_by_release = defaultdict(list)
    for link in (
        Release.change_requests.through.objects.filter(release_id__in=release_ids)
        .select_related("changerequest")
        .order_by("changerequest_id")
    ):
        crs_by_release[link.release_id].append(link.changerequest)
    promotions = {
        (p.release_id, p.environment_id): p
        for p in Promotion.objects.filter(release_id__in=release_ids, state__in=Promotion.PASSED_STATES).order_by("id")
    }
    cr_ids = {cr.pk for crs in crs_by_release.values() for cr in crs}
    signatures = Signature.objects.filter(
        Q(subject_type=record_type(ChangeRequest), subject_id__in=cr_ids)
        | Q(subject_type=record_type(Promotion), subject_id__in=[p.pk for p in promotions.values()])
    ).order_by("signed_at", "pk")
    signatures_by_subject = defaultdict(list)
    for signature in signatures:
        signatures_by_subject[signature.subject_human_id].append(_manifestation(signature))
    test_counts = Counter(
        {
            (row["artifact_id"], row["status"]): row["n"]
            for row in TestResult.objects.counting()
            .filter(artifact_id__in=artifact_ids)
            .values("artifact_id", "status")
            .annotate(n=Count("id"))
        }
    )

    # 2. One row per deployment.
    now = timezone.now()
    rows = []
    for d in deployments:
        tests = {s: test_counts.get((d.artifact_id, s), 0) for s in ("passed", "failed", "error", "skipped")}
        tests["total"] = sum(tests.values())
        change_requests = crs_by_release.get(d.release_id, [])
        promotion = promotions.get((d.release_id, d.environment_id))
        approvals = [s for cr in change_requests for s in signatures_by_subject.get(cr.human_id, [])]
        if promotion is not None:
            approvals += signatures_by_subject.get(promotion.human_id, [])
        review = getattr(d, "review", None) if d.kind == "break_glass" else None
        exceptions = _row_exceptions(d, tests, now)
        rows.append(
            {
                "deployment": d.human_id,
                "deployed_at": _utc(d.deployed_at),
                "product": d.product.key,
                "environment": d.environment.key,
                "kind": d.kind,
                "authorised": d.authorised,
                "emergency": d.kind == "break_glass",
                "exceptions": exceptions,
                "release": releases[d.release_id].human_id if d.release_id else "",
                "release_version": d.release.version if d.release_id else "",
                "artifact": d.artifact.name if d.artifact_id else "",
                "digest": d.digest,
                "deployer": d.deployer.printed_name,
                "change_requests": [
                    {"id": cr.human_id, "title": cr.title, "tier": cr.tier, "type": cr.change_type, "state": cr.state}
                    for cr in change_requests
                ],
                "promotion": promotion.human_id if promotion else "",
                "approvals": approvals,
                "tests": tests,
                "break_glass_review": None
                if review is None
                else {
                    "id": review.human_id,
                    "state": review.state,
                    "due_at": _utc(review.due_at),
                    "reviewer": review.reviewer.printed_name if review.reviewer_id else "",
                    "reviewed_at": _utc(review.reviewed_at),
                },
                "justification": d.justification,
                "reasons": d.reasons,
            }
        )
    # Exceptions first (the sample starts where the risk is), then in time order.
    rows.sort(key=lambda r: (not r["exceptions"],))

    # 3. Completeness: the same population counted again, independently.
    counted = independent_count(product_ids=product_ids, environment=environment, since=since, until=until)
    return {
        "query_version": POPULATION_QUERY_VERSION,
        "query_sha256": sql_sha256,
        "query_sql": sql_text,
        "completeness_sql": " ".join(COMPLETENESS_SQL.split()),
        "period": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "since": since.isoformat(),
            "until": until.isoformat(),
        },
        "environment": environment,
        "products": sorted(products.values_list("key", flat=True)),
        "generated_at": _utc(now),
        "generated_by": user.printed_name,
        "custody_version": getattr(settings, "CUSTODY_VERSION", ""),
        "rows": rows,
        "counts": {
            "rows": len(rows),
            "exceptions": sum(1 for r in rows if r["exceptions"]),
            "unauthorised": sum(1 for r in rows if not r["authorised"]),
            "emergency": sum(1 for r in rows if r["emergency"]),
        },
        "completeness": {
            "deployments_in_range": counted,
            "rows_in_report": len(rows),
            "complete": counted == len(rows),
            "statement": (
                f"{counted} {environment} deployment(s) from {start.isoformat()} to {end.isoformat()} (UTC, both days "
                f"whole) counted independently; {len(rows)} row(s) in this report; "
                + ("the report is complete." if counted == len(rows) else "THE REPORT IS INCOMPLETE.")
            ),
        },
    }


def _csv_cell(value: Any) -> str:
    from changecontrol.api import _csv_cell as cell

    return cell(value)


def population_csv(report: dict[str, Any]) -> str:
    """One row per deployment; the query version, hash and completeness statement lead as `#` lines."""
    out = io.StringIO()
    out.write(f"# Custody population report, query {report['query_version']} sha256 {report['query_sha256']}\n")
    out.write(f"# {report['completeness']['statement']}\n")
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in report["rows"]:
        review = row["break_glass_review"]
        writer.writerow(
            {
                **{
                    key: _csv_cell(row[key])
                    for key in CSV_FIELDS
                    if key in row and not isinstance(row[key], list | dict)
                },
                "authorised": "yes" if row["authorised"] else "no",
                "emergency": "yes" if row["emergency"] else "no",
                "exceptions": "; ".join(row["exceptions"]),
                "change_requests": "; ".join(cr["id"] for cr in row["change_requests"]),
                "approvals": "; ".join(
                    f"{a['subject']}: {a['printed_name']} — {a['meaning']}"
                    + (f" as {a['role']}" if a["role"] else "")
                    + f" — {a['signed_at']}"
                    for a in row["approvals"]
                ),
                "tests_passed": row["tests"]["passed"],
                "tests_failed": row["tests"]["failed"] + row["tests"]["error"],
                "tests_skipped": row["tests"]["skipped"],
                "break_glass_review": ""
                if review is None
                else f"{review['id']} {review['state']} {review['reviewer']}",
                "justification": _csv_cell(row["justification"]),
                "reasons": _csv_cell("; ".join(str(r) for r in row["reasons"])),
            }
        )
    return out.getvalue()


def population_pdf(report: dict[str, Any]) -> bytes:
    return render_pdf("pdf/population.html", {"title": "Population report", **report})
