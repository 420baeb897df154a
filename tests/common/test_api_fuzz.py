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
from changecontrol.models import ApiToken

pytestmark = [pytest.mark.fuzz]

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
BOUNDED_SEED = "13"


def fuzz(base_url: str, token: str, *, phases: str, report_dir: Path) -> subprocess.CompletedProcess:
    command = [
        *(str(SCHEMATHESIS), "run", f"{base_url}/api/v1/schema/?format=json", "--checks", CHECKS),
        *("--header", f"Authorization: Bearer {token}"),
        *("--max-examples", os.environ.get("CUSTODY_FUZZ_EXAMPLES", "5")),
        *("--phases", os.environ.get("CUSTODY_FUZZ_PHASES", phases)),
        # One worker thread: on CPython 3.11.7, Hypothesis moving the recursion limit in one thread while another
        # parses a lambda's source raises "AST constructor recursion depth mismatch" (CPython gh-106905), a crash
        # of the fuzzer, not a finding. The server is the bottleneck on two cores, so one thread costs little.
        *("--workers", "1", "--continue-on-failure", "--generation-database", "none", "--no-color"),
    ]
    bounded = "CUSTODY_FUZZ_EXAMPLES" not in os.environ  # `make fuzz` runs as long as its budget takes
    # The bounded run in every test run sends the same requests each time, so it fails only on a change;
    # `make fuzz` draws a new seed each run (and prints it) to find what the fixed one does not reach.
    seed = os.environ.get("CUSTODY_FUZZ_SEED") or (BOUNDED_SEED if bounded else "")
    if seed:
        command += ["--seed", seed]
    # Run where its cache of past failures is this run's own: a failure must be reproducible from the seed alone.
    return subprocess.run(
        command, capture_output=True, text=True, timeout=900 if bounded else None, check=False, cwd=report_dir
    )


@pytest.fixture
def personal_token(product, cast, admin_user) -> str:
    """A release manager's own token holding every scope, so the fuzzer reaches every operation's logic."""
    _, secret = token_create(
        actor=admin_user, name="rory's laptop", user=cast["rory"], products=[product], scopes=list(ApiToken.SCOPES)
    )
    return secret


# The coverage phase (every boundary and wrong type of every parameter, deterministically) is the long one: it runs
# with the token that reaches every operation; the CI token's run adds the randomised phases.
@pytest.mark.parametrize(
    ("holder", "phases"), [("ci_token", "examples,fuzzing"), ("personal_token", "examples,coverage,fuzzing")]
)
def test_every_operation_survives_the_schema_fuzzer(request, gunicorn_url, cast, holder, phases, tmp_path):
    token = request.getfixturevalue(holder)
    result = fuzz(gunicorn_url, token, phases=phases, report_dir=tmp_path)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
