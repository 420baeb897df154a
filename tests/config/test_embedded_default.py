"""`make run`'s embedded default — SQLite, tasks in-process, demo data — is the first thing a new user runs, and
the hot-path SQL (token lookup, status stamp) has a SQLite path of its own. This runs it as `make run` does."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATUS_CALL = """
import json
from django.test import Client
from evidence.models import Artifact
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION="Bearer " + TOKEN)
answers = []
for artifact in Artifact.objects.filter(product__key="rsd").order_by("id")[:3]:
    for _ in range(2):  # computed, then from the cache
        response = client.get("/api/v1/status", {"artifact": artifact.digest, "environment": "production"})
        answers.append([response.status_code, response.json().get("decision")])
print(json.dumps(answers))
"""


def manage(*args: str, var_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update(
        CUSTODY_DEBUG="1",
        CUSTODY_TASKS_EAGER="1",
        CUSTODY_VAR_DIR=str(var_dir),
        # As `make run` configures it: the demo's checkpoints are witnessed in a file beside the database.
        CUSTODY_AUDIT_WITNESSES=f"file:{var_dir / 'witness' / 'checkpoints.jsonl'}",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_embedded_default_migrates_seeds_and_answers_ci_with_the_demo_token(tmp_path):
    manage("migrate", "--noinput", var_dir=tmp_path)
    seeded = manage("seed_demo", var_dir=tmp_path)
    assert (tmp_path / "custody.sqlite3").exists()
    assert "custody-demo-password" in seeded
    token = re.search(r"\b(cst_\S+)", seeded).group(1)
    answers = manage("shell", "-c", f"TOKEN = {token!r}\n{STATUS_CALL}", var_dir=tmp_path).strip().splitlines()[-1]
    statuses = [status for status, _ in json.loads(answers)]
    decisions = [decision for _, decision in json.loads(answers)]
    assert statuses and statuses == [200] * len(statuses)
    assert set(decisions) <= {"allowed", "blocked", "pending"} and decisions[0::2] == decisions[1::2]


def test_the_demo_passes_verify_audit_with_a_checkpoint_and_a_witness(tmp_path):
    manage("migrate", "--noinput", var_dir=tmp_path)
    manage("seed_demo", var_dir=tmp_path)
    witnessed = (tmp_path / "witness" / "checkpoints.jsonl").read_text().splitlines()
    assert len(witnessed) == 1 and json.loads(witnessed[0])["format"] == "custody-audit-checkpoint/1"
    verified = manage("verify_audit", var_dir=tmp_path)  # exits 0, or manage() fails the test
    assert "1 witness(es)" in verified and "Audit trail intact" in verified
