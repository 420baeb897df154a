"""GitLab CI: job artifact archives, and the pipeline's test report (turned into JUnit XML)."""

from __future__ import annotations

import re
from urllib.parse import quote

from lxml import etree

from evidence.providers.base import FetchedFile, ProviderError, extract_reports, http_get, http_json

PIPELINE_URL = re.compile(r"^https?://[^/]+/(?P<project>.+?)/-/pipelines/(?P<pipeline>\d+)(?:/.*)?$")
_STATUS = {"success": None, "failed": "failure", "error": "error", "skipped": "skipped"}


class GitLab:
    """Pulls `/projects/:id/pipelines/:id/jobs`, each job's artifacts zip, and `/pipelines/:id/test_report`."""

    name = "gitlab"

    def fetch(self, build, credential, secret: str) -> list[FetchedFile]:
        match = PIPELINE_URL.match(build.pipeline_url)
        if not match:
            raise ProviderError(
                f"{build.pipeline_url} is not a GitLab pipeline URL (https://<host>/<group>/<project>/-/pipelines/<id>)"
            )
        base = credential.base_url.rstrip("/")
        project = quote(match["project"], safe="")
        pipeline = match["pipeline"]
        headers = {"PRIVATE-TOKEN": secret}
        found: list[FetchedFile] = []
        jobs = http_json(f"{base}/projects/{project}/pipelines/{pipeline}/jobs?per_page=100", headers=headers)
        for job in jobs if isinstance(jobs, list) else []:
            has_archive = job.get("artifacts_file") or any(
                a.get("file_type") == "archive" for a in job.get("artifacts") or [] if isinstance(a, dict)
            )
            if not has_archive:
                continue
            archive = http_get(f"{base}/projects/{project}/jobs/{int(job['id'])}/artifacts", headers=headers)
            found += extract_reports(archive, source=f"job {job.get('name') or job['id']}")
        report = http_json(f"{base}/projects/{project}/pipelines/{pipeline}/test_report", headers=headers)
        if isinstance(report, dict) and report.get("test_suites"):
            found.append(
                FetchedFile(
                    name=f"pipeline {pipeline} test report", type="junit", content=junit_from_test_report(report)
                )
            )
        return found


def junit_from_test_report(report: dict) -> bytes:
    """GitLab's test report JSON as JUnit XML, so the one JUnit parser handles it (lxml escapes everything)."""
    root = etree.Element("testsuites")
    for suite in report.get("test_suites") or []:
        suite_element = etree.SubElement(root, "testsuite", name=str(suite.get("name") or ""))
        for case in suite.get("test_cases") or []:
            attributes = {"name": str(case.get("name") or ""), "classname": str(case.get("classname") or "")}
            if case.get("execution_time") is not None:
                attributes["time"] = str(case["execution_time"])
            case_element = etree.SubElement(suite_element, "testcase", **attributes)
            outcome = _STATUS.get(str(case.get("status") or ""))
            if outcome:
                detail = etree.SubElement(case_element, outcome)
                detail.text = str(case.get("system_output") or case.get("stack_trace") or "")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
