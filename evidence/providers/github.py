"""GitHub Actions: the workflow run's artifacts (zip archives) hold the JUnit, coverage and other reports."""

from __future__ import annotations

import re

from evidence.providers.base import FetchedFile, ProviderError, extract_reports, http_get, http_json

RUN_URL = re.compile(r"^https?://[^/]+/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/actions/runs/(?P<run>\d+)(?:/.*)?$")


class GitHubActions:
    """Pulls `GET /repos/{owner}/{repo}/actions/runs/{run}/artifacts` and each artifact's zip."""

    name = "github"

    def fetch(self, build, credential, secret: str) -> list[FetchedFile]:
        match = RUN_URL.match(build.pipeline_url)
        if not match:
            raise ProviderError(
                f"{build.pipeline_url} is not a GitHub Actions run URL (https://github.com/<owner>/<repo>/actions/runs/<id>)"
            )
        base = credential.base_url.rstrip("/")
        headers = {
            "Authorization": f"Bearer {secret}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        listing = http_json(
            f"{base}/repos/{match['owner']}/{match['repo']}/actions/runs/{match['run']}/artifacts?per_page=100",
            headers=headers,
        )
        found: list[FetchedFile] = []
        for item in listing.get("artifacts") or []:
            if item.get("expired"):
                continue
            url = str(item.get("archive_download_url") or "")
            # Never send the token anywhere but the configured API (a forged listing could point elsewhere).
            if not url.startswith(base + "/"):
                raise ProviderError(f"artifact {item.get('name')!r} downloads from {url!r}, outside {base}: refused")
            found += extract_reports(http_get(url, headers=headers), source=str(item.get("name") or item.get("id")))
        return found
