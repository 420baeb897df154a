"""Is any released version affected? The search over every release's SBOM components and scanner findings.

A question names a package URL, a component name (each optionally with a version range, runtime.versions), or a
vulnerability id (CVE, GHSA, OSV; matched against scanner findings by id and alias). Each answer row is one
(release, artifact, component) with the environments that run that artifact now: by the deployment record (the
latest deployment of that artifact name in the environment, as the deployment log's "running now") or by the
environment's latest snapshot. Only products the caller may see are searched; an artifact in no release is
answered too, with an empty release, since running unreleased code is exactly what a search must not hide.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from packageurl import PackageURL

from changecontrol.access import visible_product_ids
from changecontrol.models import ApiToken, Environment, User
from common.errors import ValidationFailed
from evidence.models import SbomComponent, Vulnerability
from runtime.versions import RANGE_SYNTAX, VersionRange, parse_range

__all__ = [
    "RANGE_SYNTAX",
    "affected_query",
    "affected_search",
    "component_version",
    "csv_row",
    "package_filter",
    "running_environments",
]

CSV_COLUMNS = [
    "product",
    "release",
    "artifact",
    "artifact_name",
    "component",
    "version",
    "purl",
    "matched_by",
    "vulnerability",
    "suppressed_by_vex",
    "environments",
]
MAX_ROWS = 10_000
_VULN_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:")


@dataclass(frozen=True)
class AffectedQuery:
    """What the caller asked: exactly one of purl, name or vulnerability, a range for the first two."""

    purl: str = ""
    purl_base: str = ""  # pkg:type/namespace/name, without version, qualifiers or subpath
    name: str = ""
    vulnerability: str = ""
    versions: VersionRange | None = None

    @property
    def matched_by(self) -> str:
        return "purl" if self.purl else ("name" if self.name else "vulnerability")


def affected_query(params) -> AffectedQuery:
    """Validate the search's parameters (API, CSV and page share them); a bad one is a 400 saying what to send."""
    purl = (params.get("purl") or "").strip()
    # `component` is the name the DESIGN §7 wave-2 row gives the parameter; `name` reads better in a form.
    name = (params.get("name") or params.get("component") or "").strip()
    vulnerability = (params.get("vulnerability") or "").strip()
    given = [key for key, value in (("purl", purl), ("name", name), ("vulnerability", vulnerability)) if value]
    if len(given) != 1:
        raise ValidationFailed(
            "send exactly one of purl, name or vulnerability" + (f" (got {', '.join(given)})" if given else ""),
            errors={"purl": ["purl, name or vulnerability: exactly one"]},
        )
    versions = parse_range(params.get("version") or "")
    if vulnerability:
        if versions is not None:
            raise ValidationFailed("version narrows a purl or name search, not a vulnerability one")
        if len(vulnerability) > 200 or not set(vulnerability) <= _VULN_ID_CHARS:
            raise ValidationFailed(
                f"vulnerability must be an id such as CVE-2021-44228, GHSA-jfh8-c2jp-5v3q or PYSEC-2021-19, "
                f"not {vulnerability[:60]!r}",
                errors={"vulnerability": ["an advisory id"]},
            )
        return AffectedQuery(vulnerability=vulnerability)
    if name:
        if len(name) > 500:
            raise ValidationFailed("name is at most 500 characters", errors={"name": ["too long"]})
        return AffectedQuery(name=name, versions=versions)
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError as error:
        raise ValidationFailed(
            f"purl is not a package URL ({error}); write it as pkg:type/namespace/name[@version]",
            errors={"purl": [str(error)]},
        ) from None
    if parsed.version and versions is not None:
        raise ValidationFailed("give the version either in the purl (@version) or as a range in version, not both")
    if parsed.version:
        versions = parse_range(f"=={parsed.version}")
    base = PackageURL(type=parsed.type, namespace=parsed.namespace, name=parsed.name).to_string()
    return AffectedQuery(purl=purl, purl_base=base, versions=versions)


def package_filter(base: str) -> Q:
    """Components whose purl names this package (pkg:type/namespace/name), at any version, qualifiers or subpath.

    Served by the purl pattern index (evidence 0009): the base, then @version, ?qualifiers or #subpath.
    """
    return (
        Q(purl=base) | Q(purl__startswith=f"{base}@") | Q(purl__startswith=f"{base}?") | Q(purl__startswith=f"{base}#")
    )


def _components(query: AffectedQuery, products: set[int]) -> list[dict]:
    components = SbomComponent.objects.counting().filter(artifact__product_id__in=products)
    if query.purl:
        components = components.filter(package_filter(query.purl_base))
    else:
        components = components.filter(name__iexact=query.name)  # served by the upper(name) index
    rows = components.values("id", "artifact_id", "name", "version", "purl")
    if query.versions is None:
        return list(rows)
    # Thousands of rows share a few hundred version strings: decide each string once.
    decided: dict[str, bool] = {}
    kept = []
    for row in rows:
        version = component_version(row)
        if version not in decided:
            decided[version] = query.versions.contains(version)
        if decided[version]:
            kept.append(row)
    return kept


def component_version(row: dict) -> str:
    """The component's version; from its purl when the SBOM left the version field empty."""
    if row["version"] or not row["purl"]:
        return row["version"]
    try:
        return PackageURL.from_string(row["purl"]).version or ""
    except ValueError:
        return ""


def _findings(query: AffectedQuery, products: set[int]) -> list[dict]:
    ids = sorted({query.vulnerability, query.vulnerability.upper()})
    findings = Vulnerability.objects.counting().filter(artifact__product_id__in=products)
    # vuln_id by its index, aliases by the GIN index (evidence 0009); one OR the planner turns into a bitmap OR.
    by_id = findings.filter(vuln_id__in=ids)
    by_alias = findings.filter(aliases__contains=[ids[0]])
    for other in ids[1:]:
        by_alias = by_alias | findings.filter(aliases__contains=[other])
    return list(
        (by_id | by_alias)
        .values("id", "artifact_id", "vuln_id", "package_name", "package_version", "purl", "suppressed_by_id")
        .distinct()
    )


def running_environments(artifact_ids: set[int]) -> dict[int, list[dict]]:
    """Per artifact id, the environments running it now: [{product, environment, via}] (deployment, snapshot).

    Two queries whatever the number of artifacts: the latest deployment of each artifact name per environment
    (DISTINCT ON over the deployments of those names), and the latest snapshot of each environment.
    """
    if not artifact_ids:
        return {}
    ids = sorted(artifact_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT ON (d.environment_id, a.name) d.environment_id, d.artifact_id
            FROM approvals_deployment d JOIN evidence_artifact a ON a.id = d.artifact_id
            WHERE a.name IN (SELECT name FROM evidence_artifact WHERE id = ANY(%s))
            ORDER BY d.environment_id, a.name, d.deployed_at DESC, d.id DESC
            """,
            [ids],
        )
        by_deployment = [
            (environment, artifact) for environment, artifact in cursor.fetchall() if artifact in artifact_ids
        ]
        cursor.execute(
            """
            WITH latest AS (
                SELECT DISTINCT ON (environment_id) id, environment_id, artifacts
                FROM approvals_environmentsnapshot ORDER BY environment_id, taken_at DESC, id DESC
            )
            SELECT latest.environment_id, e.id
            FROM latest CROSS JOIN LATERAL jsonb_array_elements(latest.artifacts) AS item(value)
            JOIN evidence_artifact e ON e.digest = item.value->>'digest'
            WHERE e.id = ANY(%s)
            """,
            [ids],
        )
        by_snapshot = cursor.fetchall()
    environments = Environment.objects.select_related("product").in_bulk(
        {environment for environment, _ in by_deployment} | {environment for environment, _ in by_snapshot}
    )
    running: dict[int, list[dict]] = defaultdict(list)
    for via, pairs in (("deployment", by_deployment), ("snapshot", by_snapshot)):
        for environment_id, artifact_id in pairs:
            environment = environments[environment_id]
            running[artifact_id].append(
                {"product": environment.product.key, "environment": environment.key, "via": via}
            )
    for places in running.values():
        places.sort(key=lambda p: (p["product"], p["environment"], p["via"]))
    return running


def affected_search(query: AffectedQuery, *, user: User, token: ApiToken | None = None) -> list[dict]:
    """The answer rows, sorted by product, release, artifact and component; at most MAX_ROWS."""
    products = visible_product_ids(user, token)
    if not products:
        return []
    if query.vulnerability:
        hits = [
            {
                "artifact_id": f["artifact_id"],
                "component": f["package_name"],
                "version": f["package_version"],
                "purl": f["purl"],
                "vulnerability": f["vuln_id"],
                "suppressed_by_vex": f["suppressed_by_id"] is not None,
            }
            for f in _findings(query, products)
        ]
    else:
        hits = [
            {
                "artifact_id": c["artifact_id"],
                "component": c["name"],
                "version": component_version(c),
                "purl": c["purl"],
                "vulnerability": "",
                "suppressed_by_vex": False,
            }
            for c in _components(query, products)
        ]
    artifact_ids = {hit["artifact_id"] for hit in hits}
    artifacts = _artifacts(artifact_ids)
    running = running_environments(artifact_ids)
    rows = []
    for hit in hits:
        artifact = artifacts[hit["artifact_id"]]
        for release in artifact["releases"] or [""]:
            rows.append(
                {
                    "product": artifact["product"],
                    "release": release,
                    "artifact": artifact["digest"],
                    "artifact_name": artifact["name"],
                    "component": hit["component"],
                    "version": hit["version"],
                    "purl": hit["purl"],
                    "matched_by": query.matched_by,
                    "vulnerability": hit["vulnerability"],
                    "suppressed_by_vex": hit["suppressed_by_vex"],
                    "environments": running.get(hit["artifact_id"], []),
                }
            )
    rows.sort(
        key=lambda r: (r["product"], r["release"], r["artifact_name"], r["artifact"], r["component"], r["version"])
    )
    return rows[:MAX_ROWS]


def _artifacts(artifact_ids: set[int]) -> dict[int, dict]:
    """Digest, name, product key and release versions of each artifact, in two queries."""
    if not artifact_ids:
        return {}
    ids = sorted(artifact_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.id, a.digest, a.name, p.key,
                   COALESCE(array_agg(r.version ORDER BY r.version) FILTER (WHERE r.id IS NOT NULL), '{}')
            FROM evidence_artifact a
            JOIN changecontrol_product p ON p.id = a.product_id
            LEFT JOIN approvals_release_artifacts ra ON ra.artifact_id = a.id
            LEFT JOIN approvals_release r ON r.id = ra.release_id
            WHERE a.id = ANY(%s)
            GROUP BY a.id, a.digest, a.name, p.key
            """,
            [ids],
        )
        return {
            row[0]: {"digest": row[1], "name": row[2], "product": row[3], "releases": list(row[4])}
            for row in cursor.fetchall()
        }


def csv_row(row: dict) -> list[str]:
    return [
        row["product"],
        row["release"],
        row["artifact"],
        row["artifact_name"],
        row["component"],
        row["version"],
        row["purl"],
        row["matched_by"],
        row["vulnerability"],
        "true" if row["suppressed_by_vex"] else "false",
        "; ".join(f"{e['product']}/{e['environment']} ({e['via']})" for e in row["environments"]),
    ]
