"""The schema fuzzer: Schemathesis sends generated requests, valid and invalid, to every operation of a running
Custody (gunicorn, as in production), with a CI token and with a person's token, and fails on any server error, any answer the schema does not
document, and any body that does not match its documented schema (docs/security.md, "Input limits and fuzzing").

Bounded for every test run; `make fuzz` runs it with a larger budget (CUSTODY_FUZZ_EXAMPLES, CUSTODY_FUZZ_PHASES).
A failure prints Schemathesis's report: each failing request as curl, and the seed that reproduces the run
(CUSTODY_FUZZ_SEED).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from changecontrol.api_auth import token_create

pytestmark = [pytest.mark.fuzz]

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def fuzz(base_url: str, token: str, report_dir: Path) -> subprocess.CompletedProcess:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{base_url}/api/v1/schema/?format=json",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        os.environ.get("CUSTODY_FUZZ_EXAMPLES", "5"),
        "--phases",
        os.environ.get("CUSTODY_FUZZ_PHASES", "examples,coverage,fuzzing"),
        "--workers",
        "2",
        "--continue-on-failure",
        "--generation-database",
        "none",
        "--no-color",
        "--report-dir",
        str(report_dir),
    ]
    if os.environ.get("CUSTODY_FUZZ_SEED"):
        command += ["--seed", os.environ["CUSTODY_FUZZ_SEED"]]
    # Run where its cache of past failures is this run's own: a failure must be reproducible from the seed alone.
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=report_dir)


@pytest.fixture
def personal_token(product, cast, admin_user) -> str:
    """A release manager's own token, with every scope a person's token may hold."""
    _, secret = token_create(
        actor=admin_user,
        name="rory's laptop",
        user=cast["rory"],
        products=[product],
        scopes=["changes:write", "status:read", "releases:write", "requirements:write", "evidence:write"],
    )
    return secret


@pytest.mark.parametrize("holder", ["ci_token", "personal_token"])
def test_every_operation_survives_the_schema_fuzzer(request, gunicorn_url, cast, holder, tmp_path):
    token = request.getfixturevalue(holder)
    result = fuzz(gunicorn_url, token, tmp_path)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
