"""The trace matrix: requirement → risk controls and hazards → change requests → commits → tests → results.

Computed from the workflow records, never typed: items and links (changecontrol), explicit CR links, the commit
messages of the builds, and the test results of the artifacts. One row per requirement with its gaps, each gap's
severity taken from the policy (`traceability.severities`), and a coverage figure on top.

Cost: a fixed number of SQL queries whatever the size (items, links, CR links, change requests, commits, the
per-requirement results, the policy). On PostgreSQL one query returns, per requirement, the latest result of each
test on the given artifacts and whether it was obtained after the requirement's current version (the join of
`jsonb_array_elements_text(requirement_ids)` to the items is done by the database), plus the orphan tests; Python
only walks the rows once. Elsewhere (SQLite, the embedded default) the same reduction runs in Python
(`_requirement_results_python`), and a test keeps the two equal.
"""

from __future__ import annotations

import gc
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models.fields.json import KT

from changecontrol.models import ChangeRequest, ChangeRequestItem, Product, TraceItem, TraceLink
from changecontrol.policy import DEFAULT_GAP_SEVERITIES, TRACE_GAPS
from evidence.models import Artifact, BuildCommit, Evidence, TestResult

# The order a row's status is chosen in when it has several gaps: the most actionable first.
GAP_PRECEDENCE = ("failed", "missing_test", "not_executed", "risk_control_unverified", "suspect")
SEVERITY_RANK = {"error": 2, "warning": 1, "ignored": 0}
VERIFIED = "verified"
# Items that are not requirements to verify: retired ones, and the headings requirement tools export.
RETIRED_STATUSES = frozenset({"obsolete", "deleted", "retired", "rejected", "withdrawn"})
REFERENCE = re.compile(r"\b([A-Za-z][A-Za-z0-9_]{0,30})-(\d{1,9})\b")
FAILING = frozenset({TestResult.Status.FAILED, TestResult.Status.ERROR})

# One hash aggregate instead of a sort: per (requirement, test) the latest time and the outcome obtained then
# (when two results share that time the worse one wins: a failure is never hidden). Times travel as epoch
# seconds inside one JSON document, because decoding ten thousand rows value by value costs more than the query.
_LATEST_SELECT = """
SELECT upper(req.value) AS requirement,
       CASE WHEN tr.classname <> '' THEN tr.classname || '::' || tr.name ELSE tr.name END AS test,
       CASE max(t.at)
           WHEN max(t.at) FILTER (WHERE tr.status = 'failed') THEN 'failed'
           WHEN max(t.at) FILTER (WHERE tr.status = 'error') THEN 'error'
           WHEN max(t.at) FILTER (WHERE tr.status = 'passed') THEN 'passed'
           ELSE 'skipped'
       END AS outcome,
       extract(epoch FROM max(t.at))::float8 AS at
FROM evidence_testresult tr
JOIN evidence_evidence ev ON ev.id = tr.evidence_id
CROSS JOIN LATERAL (SELECT COALESCE(tr.executed_at, ev.uploaded_at) AS at) AS t
CROSS JOIN LATERAL jsonb_array_elements_text(
    CASE WHEN jsonb_typeof(tr.requirement_ids) = 'array' THEN tr.requirement_ids ELSE '[]'::jsonb END
) AS req(value)
WHERE ev.product_id = %s AND ev.state = 'parsed' AND ev.verdict IN ('signed', 'unsigned') {artifact_filter}
GROUP BY upper(req.value), tr.classname, tr.name
"""
_LATEST_RESULTS_SQL = (
    "SELECT COALESCE(json_agg(json_build_array(requirement, test, outcome, at)), '[]') FROM ("  # noqa: S608 - constants
    + _LATEST_SELECT
    + ") AS latest"
)
# The matrix's one results query: the latest results joined to the items they name, in the database. An ID names
# the item whose identifier matches case-insensitively (the newest item when two differ only by case); a result
# names a requirement, anything else makes the test an orphan. `counts` compares the result's time with the
# requirement's current version (IEC 62304: a test of an older text verified that text, not this one). Tests are
# ordered by code point (COLLATE "C"), as Python sorts. The answer is one JSON document:
# [[[item pk, [[test, outcome, epoch, counts], ...]], ...], [[REQUIREMENT ID, test, outcome], ...]].
_REQUIREMENT_RESULTS_SQL = """
WITH known AS (
    SELECT DISTINCT ON (upper(identifier) COLLATE "C") id, upper(identifier) COLLATE "C" AS requirement, kind,
           extract(epoch FROM version_created_at)::float8 AS version_at
    FROM changecontrol_traceitem WHERE product_id = %s
    ORDER BY upper(identifier) COLLATE "C", id DESC
),
matched AS (
    SELECT upper(req.value) AS requirement,
           CASE WHEN tr.classname <> '' THEN tr.classname || '::' || tr.name ELSE tr.name END AS test,
           CASE max(t.at)
               WHEN max(t.at) FILTER (WHERE tr.status = 'failed') THEN 'failed'
               WHEN max(t.at) FILTER (WHERE tr.status = 'error') THEN 'error'
               WHEN max(t.at) FILTER (WHERE tr.status = 'passed') THEN 'passed'
               ELSE 'skipped'
           END AS outcome,
           extract(epoch FROM max(t.at))::float8 AS at,
           k.id AS item_id, k.version_at
    FROM evidence_testresult tr
    JOIN evidence_evidence ev ON ev.id = tr.evidence_id
    CROSS JOIN LATERAL (SELECT COALESCE(tr.executed_at, ev.uploaded_at) AS at) AS t
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(tr.requirement_ids) = 'array' THEN tr.requirement_ids ELSE '[]'::jsonb END
    ) AS req(value)
    LEFT JOIN known k ON k.requirement = upper(req.value) AND k.kind = 'requirement'
    WHERE ev.product_id = %s AND ev.state = 'parsed' AND ev.verdict IN ('signed', 'unsigned') {artifact_filter}
    GROUP BY upper(req.value), tr.classname, tr.name, k.id, k.version_at
)
SELECT json_build_array(
    (SELECT COALESCE(json_agg(json_build_array(item_id, tests)), '[]') FROM (
        SELECT item_id, json_agg(
            json_build_array(test, outcome, at, COALESCE(at >= version_at, false)) ORDER BY test COLLATE "C"
        ) AS tests
        FROM matched WHERE item_id IS NOT NULL GROUP BY item_id
    ) AS tested),
    (SELECT COALESCE(json_agg(json_build_array(requirement, test, outcome)), '[]') FROM matched WHERE item_id IS NULL)
)
"""
# When two results of one test carry the same time, the worse one is the latest (never hide a failure).
OUTCOME_RANK = {"failed": 3, "error": 2, "passed": 1, "skipped": 0}


def is_traced_requirement(kind: str, status: str, spec_object_type: str | None) -> bool:
    if kind != TraceItem.Kind.REQUIREMENT or status in RETIRED_STATUSES:
        return False
    return (spec_object_type or "").strip().lower() != "heading"


def latest_results(*, product: Product, artifact_ids: Iterable[int] | None) -> list[tuple]:
    """(REQUIREMENT ID, test name, status, epoch seconds): the latest counted result per requirement and test."""
    ids = None if artifact_ids is None else sorted(set(artifact_ids))
    if ids is not None and not ids:
        return []
    if connection.vendor == "postgresql":
        artifact_filter = "AND tr.artifact_id = ANY(%s)" if ids is not None else ""
        params: list[Any] = [product.pk] + ([ids] if ids is not None else [])
        with transaction.atomic(), connection.cursor() as cursor:
            # The planner guesses 100 rows per jsonb_array_elements_text call, so it would JIT-compile (~0.7 s)
            # a query that runs in a tenth of that. SET LOCAL ends with the transaction.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(_LATEST_RESULTS_SQL.format(artifact_filter=artifact_filter), params)
            document = cursor.fetchone()[0]
        return json.loads(document) if isinstance(document, str) else document
    return _latest_results_python(product=product, artifact_ids=ids)


def _latest_results_python(*, product: Product, artifact_ids: list[int] | None) -> list[tuple]:
    """The same reduction as the SQL, portable (SQLite in the embedded default)."""
    queryset = TestResult.objects.filter(
        evidence__product=product,
        evidence__state=Evidence.State.PARSED,
        evidence__verdict__in=(Evidence.Verdict.SIGNED, Evidence.Verdict.UNSIGNED),
    )
    if artifact_ids is not None:
        queryset = queryset.filter(artifact_id__in=artifact_ids)
    latest: dict[tuple, tuple] = {}
    rows = queryset.values_list(
        "requirement_ids", "classname", "name", "status", "executed_at", "evidence__uploaded_at"
    )
    for requirement_ids, classname, name, status, executed_at, uploaded_at in rows:
        at = executed_at or uploaded_at
        for requirement in requirement_ids if isinstance(requirement_ids, list) else []:
            key = (str(requirement).upper(), classname, name)
            current = latest.get(key)
            if current is None or (at, OUTCOME_RANK.get(status, 0)) > (current[4], OUTCOME_RANK.get(current[3], 0)):
                latest[key] = (key[0], classname, name, status, at)
    return [
        (requirement, f"{classname}::{name}" if classname else name, status, at.timestamp() if at else None)
        for requirement, classname, name, status, at in (row for _, row in sorted(latest.items()))
    ]


def requirement_results(*, product: Product, artifact_ids: Iterable[int] | None) -> tuple[dict, list]:
    """({item pk: [[test, outcome, epoch, counts], ...] by test}, [[REQUIREMENT ID, test, outcome], ...] orphans).

    The latest counted result of each test per requirement it names; `counts` is False for a result obtained before
    the requirement's current version. Orphans are results naming an ID that is not a requirement of the product.
    """
    ids = None if artifact_ids is None else sorted(set(artifact_ids))
    if ids is not None and not ids:
        return {}, []
    if connection.vendor != "postgresql":
        return _requirement_results_python(product=product, artifact_ids=ids)
    artifact_filter = "AND tr.artifact_id = ANY(%s)" if ids is not None else ""
    params: list[Any] = [product.pk, product.pk] + ([ids] if ids is not None else [])
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner guesses 100 rows per jsonb_array_elements_text call, so it would JIT-compile (~0.7 s) a
        # query that runs in a tenth of that. SET LOCAL ends with the transaction.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_REQUIREMENT_RESULTS_SQL.format(artifact_filter=artifact_filter), params)
        document = cursor.fetchone()[0]
    tested, orphans = json.loads(document) if isinstance(document, str) else document
    return dict(tested), orphans


def _requirement_results_python(*, product: Product, artifact_ids: list[int] | None) -> tuple[dict, list]:
    """The same as the SQL, portable: the latest results (Python reduction) joined to the items here."""
    known: dict[str, tuple[int, str, float]] = {}
    for pk, kind, identifier, version_created_at in (
        TraceItem.objects.filter(product=product)
        .order_by("pk")
        .values_list("pk", "kind", "identifier", "version_created_at")
    ):
        known[identifier.upper()] = (pk, kind, version_created_at.timestamp())  # the newest item wins, as in SQL
    tested: dict[int, list[list]] = defaultdict(list)
    orphans: list[list] = []
    for requirement, test, outcome, at in _latest_results_python(product=product, artifact_ids=artifact_ids):
        pk, kind, version_at = known.get(requirement, (None, "", 0.0))
        if pk is None or kind != TraceItem.Kind.REQUIREMENT:
            orphans.append([requirement, test, outcome])
            continue
        tested[pk].append([test, outcome, at, at is not None and at >= version_at])
    for tests in tested.values():
        tests.sort(key=lambda t: t[0])
    return dict(tested), orphans


def _commits(*, product: Product, artifact_ids: list[int] | None):
    commits = BuildCommit.objects.filter(build__product=product)
    if artifact_ids is not None:
        commits = commits.filter(build_id__in=Artifact.objects.filter(id__in=artifact_ids).values("build_id"))
    # Messages without any "X-123" cannot link anything; the database drops them before they cross the wire.
    if connection.vendor == "postgresql":
        commits = commits.filter(message__regex=r"[A-Za-z]-[0-9]")
    return commits.values_list("sha", "message").distinct()


def _worst(severities: Iterable[str]) -> str:
    """The most severe of `severities` ("" for none); a loop, as it runs once per row."""
    worst, worst_rank = "", -2
    for severity in severities:
        rank = SEVERITY_RANK.get(severity, -1)
        if rank > worst_rank:
            worst, worst_rank = severity, rank
    return worst


def trace_matrix(*, product: Product, artifact_ids: Iterable[int] | None = None, severities=None) -> dict[str, Any]:
    """The matrix of a product (artifact_ids None: every artifact) or of a release (its artifact ids)."""
    with _collector_paused():
        return _trace_matrix(product=product, artifact_ids=artifact_ids, severities=severities)


@contextmanager
def _collector_paused():
    """Pause Python's cycle collector while the matrix is built, and restore it after.

    The matrix allocates tens of thousands of small dicts and lists, none of them in a cycle; each allocation
    burst triggers collections that rescan the whole heap of the process — a third of the matrix's time at
    5,000 requirements, for nothing to collect. Reference counting still frees everything as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _trace_matrix(*, product: Product, artifact_ids: Iterable[int] | None, severities) -> dict[str, Any]:
    artifact_ids = None if artifact_ids is None else sorted(set(artifact_ids))
    if severities is None:
        from changecontrol.services import active_policy

        policy = active_policy(product)
        severities = dict(policy.document.traceability.severities) if policy else dict(DEFAULT_GAP_SEVERITIES)
    # 1. Items, links, CR links: three queries.
    items = list(
        TraceItem.objects.filter(product=product).values_list(
            "pk",
            "kind",
            "identifier",
            "title",
            "version",
            "status",
            KT("attributes__spec_object_type"),
        )
    )
    by_pk = {row[0]: row for row in items}
    links = list(TraceLink.objects.filter(product=product).values_list("source_id", "target_id", "kind", "suspect"))
    change_links = list(
        ChangeRequestItem.objects.filter(item__product=product).values_list(
            "item_id", "change_request_id", "change_request__state", "change_request__title"
        )
    )
    # 2. Commits of the builds, and per requirement the latest result of each test on these artifacts: two queries.
    commits = list(_commits(product=product, artifact_ids=artifact_ids))
    tested, orphan_results = requirement_results(product=product, artifact_ids=artifact_ids)
    change_request_ids = set(ChangeRequest.objects.filter(product=product).values_list("pk", flat=True))

    # 3. Join in Python.
    upstream_rcs: dict[int, list[int]] = defaultdict(list)  # requirement pk -> risk controls it implements
    hazards_of_rc: dict[int, list[int]] = defaultdict(list)
    parents: dict[int, list[int]] = defaultdict(list)
    suspect_items: set[int] = set()
    for source, target, kind, suspect in links:
        if kind == TraceLink.Kind.IMPLEMENTS:
            upstream_rcs[target].append(source)
        elif kind == TraceLink.Kind.MITIGATES:
            hazards_of_rc[source].append(target)
        elif kind == TraceLink.Kind.DERIVES_FROM:
            parents[source].append(target)
        if suspect:
            suspect_items.update((source, target))
    crs_of: dict[int, list[dict]] = defaultdict(list)
    for item_pk, cr_pk, state, title in change_links:
        crs_of[item_pk].append({"id": f"CR-{cr_pk}", "state": state, "title": title})

    identifiers = {row[2].upper(): row[0] for row in items}
    prefixes = {match.group(1).upper() for row in items if (match := REFERENCE.fullmatch(row[2]))} | {"CR"}
    commits_of: dict[int, list[str]] = defaultdict(list)
    unknown_in_commits: list[dict[str, Any]] = []
    for sha, message in commits:
        unknown = []
        for match in REFERENCE.finditer(message or ""):
            reference = f"{match.group(1).upper()}-{match.group(2)}"
            if reference in identifiers:
                if sha[:12] not in commits_of[identifiers[reference]]:
                    commits_of[identifiers[reference]].append(sha[:12])
            elif match.group(1).upper() == "CR":
                if int(match.group(2)) not in change_request_ids:
                    unknown.append(reference)
            elif match.group(1).upper() in prefixes:
                unknown.append(reference)
        if unknown:
            unknown_in_commits.append({"sha": sha[:12], "unknown": sorted(set(unknown))})

    requirement_pks = {row[0] for row in items if is_traced_requirement(row[1], row[5], row[6])}
    orphans: dict[tuple[str, str], list[str]] = defaultdict(list)
    for requirement, test_name, status in orphan_results:
        orphans[(test_name, status)].append(requirement)
    from_epoch = datetime.fromtimestamp

    rows = []
    verified_by_tests: set[int] = set()
    skipped = TestResult.Status.SKIPPED
    for pk, _kind, identifier, title, version, status, _attrs in sorted(
        (row for row in items if row[0] in requirement_pks), key=lambda row: _natural(row[2])
    ):
        tests, failing, executed = [], False, False
        # Already reduced by the database: one entry per test, ordered by name, `counts` decided there.
        for name, outcome, at, counts in tested.get(pk, ()):
            tests.append(
                {
                    "name": name,
                    "result": outcome,
                    "at": from_epoch(at, UTC) if at is not None else None,
                    "counts": counts,
                }
            )
            if counts and outcome != skipped:
                executed = True
                failing = failing or outcome in FAILING
        gaps = []
        if not tests:
            gaps.append("missing_test")
            result = ""
        elif failing:
            gaps.append("failed")
            result = "failed"
        elif not executed:
            gaps.append("not_executed")
            result = "not_executed"
        else:
            result = "passed"
            verified_by_tests.add(pk)
        rcs = upstream_rcs.get(pk, [])
        if rcs and pk not in verified_by_tests:
            gaps.append("risk_control_unverified")
        if pk in suspect_items:
            gaps.append("suspect")
        hazards = _sorted_ids({by_pk[h][2] for rc in rcs for h in hazards_of_rc.get(rc, []) if h in by_pk})
        row_gaps = [{"gap": gap, "severity": severities.get(gap, "error")} for gap in gaps]
        rows.append(
            {
                "id": identifier,
                "title": title,
                "version": version,
                "item_status": status,
                "risk_controls": _sorted_ids(by_pk[rc][2] for rc in rcs if rc in by_pk),
                "hazards": hazards,
                "derives_from": _sorted_ids(by_pk[p][2] for p in parents.get(pk, []) if p in by_pk),
                "change_requests": _by_number(crs_of.get(pk, [])),
                "commits": commits_of.get(pk, []),
                "tests": tests,
                "result": result,
                "status": next((gap for gap in GAP_PRECEDENCE if gap in gaps), VERIFIED),
                "severity": _worst(g["severity"] for g in row_gaps if g["severity"] != "ignored"),
                "gaps": row_gaps,
            }
        )

    # Risk controls: verified when at least one requirement implements them and every one of those passed.
    implemented_by: dict[int, list[int]] = defaultdict(list)
    for requirement_pk, rcs in upstream_rcs.items():
        for rc in rcs:
            implemented_by[rc].append(requirement_pk)
    risk_controls = []
    for pk, kind, identifier, title, version, _status, _attrs in items:
        if kind != TraceItem.Kind.RISK_CONTROL:
            continue
        requirements = implemented_by.get(pk, [])
        verified = bool(requirements) and all(r in verified_by_tests for r in requirements)
        risk_controls.append(
            {
                "id": identifier,
                "title": title,
                "version": version,
                "hazards": _sorted_ids(by_pk[h][2] for h in hazards_of_rc.get(pk, []) if h in by_pk),
                "requirements": _sorted_ids(by_pk[r][2] for r in requirements),
                "verified": verified,
                "severity": "" if verified else severities.get("risk_control_unverified", "error"),
            }
        )
    risk_controls.sort(key=lambda rc: _natural(rc["id"]))
    orphan_severity = severities.get("orphan_test", "warning")
    orphan_tests = [
        {"name": name, "result": status, "unknown_ids": sorted(set(ids)), "severity": orphan_severity}
        for (name, status), ids in sorted(orphans.items())
    ]

    counts = dict.fromkeys(TRACE_GAPS, 0)
    for row in rows:
        for gap in row["gaps"]:
            counts[gap["gap"]] += 1
    counts["orphan_test"] = len(orphan_tests)
    counts["requirements"] = len(rows)
    counts[VERIFIED] = sum(1 for row in rows if row["status"] == VERIFIED)
    counts["risk_controls"] = len(risk_controls)
    counts["risk_controls_verified"] = sum(1 for rc in risk_controls if rc["verified"])
    severities_seen = [row["severity"] for row in rows] + [
        o["severity"] for o in orphan_tests if o["severity"] != "ignored"
    ]
    severities_seen += [
        rc["severity"] for rc in risk_controls if rc["severity"] not in ("", "ignored") and not rc["requirements"]
    ]
    counts["errors"] = severities_seen.count("error")
    counts["warnings"] = severities_seen.count("warning")
    coverage = round(100.0 * len(verified_by_tests) / len(rows), 1) if rows else 0.0
    return {
        "product": product.key,
        "artifact_ids": artifact_ids,
        "coverage": coverage,
        "counts": counts,
        "severities": severities,
        "rows": rows,
        "risk_controls": risk_controls,
        "orphan_tests": orphan_tests,
        "unknown_references": {"commits": unknown_in_commits},
    }


def _by_number(change_requests: list[dict]) -> list[dict]:
    return change_requests if len(change_requests) < 2 else sorted(change_requests, key=lambda cr: int(cr["id"][3:]))


def _sorted_ids(identifiers) -> list[str]:
    """IDs in natural order; most lists here hold zero or one ID, so those skip the sort."""
    identifiers = list(identifiers)
    return identifiers if len(identifiers) < 2 else sorted(identifiers, key=_natural)


@lru_cache(maxsize=65536)
def _natural(identifier: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", identifier))


def filter_rows(rows: list[dict], *, status: str = "", severity: str = "", q: str = "") -> list[dict]:
    """The rows a page or API caller asked for (`status` may be `gaps` for every row with a gap)."""
    selected = rows
    if status == "gaps":
        selected = [row for row in selected if row["status"] != VERIFIED]
    elif status:
        selected = [row for row in selected if row["status"] == status or any(g["gap"] == status for g in row["gaps"])]
    if severity:
        selected = [row for row in selected if row["severity"] == severity]
    if q:
        needle = q.lower()
        selected = [row for row in selected if needle in row["id"].lower() or needle in row["title"].lower()]
    return selected


def release_artifact_ids(*, product: Product, version: str) -> list[int] | None:
    """The artifact ids of a release, or None when there is no such release (or no release model yet)."""
    try:
        from approvals.models import Release
    except ImportError:
        return None
    release = Release.objects.filter(product=product, version=version).first()
    if release is None:
        return None
    return list(release.artifacts.values_list("id", flat=True))


def as_csv_rows(matrix: dict[str, Any]) -> list[list[str]]:
    """The matrix as spreadsheet rows (header first), one requirement per row."""
    header = [
        "id",
        "title",
        "version",
        "status",
        "severity",
        "gaps",
        "risk_controls",
        "hazards",
        "change_requests",
        "commits",
        "tests",
        "result",
    ]
    out = [header]
    for row in matrix["rows"]:
        out.append(
            [
                row["id"],
                row["title"],
                str(row["version"]),
                row["status"],
                row["severity"],
                "; ".join(g["gap"] for g in row["gaps"]),
                "; ".join(row["risk_controls"]),
                "; ".join(row["hazards"]),
                "; ".join(cr["id"] for cr in row["change_requests"]),
                "; ".join(row["commits"]),
                "; ".join(f"{t['name']}={t['result']}{'' if t['counts'] else ' (stale)'}" for t in row["tests"]),
                row["result"],
            ]
        )
    return out
