"""The evidence bundle carries what was decided: every recorded decision with its policy version and digest, under
the signed manifest, so a decision changed afterwards fails `custody verify-bundle`."""

from __future__ import annotations

import io
import json
import zipfile

from approvals.models import Decision
from changecontrol.services import active_policy
from common.keys import keyring
from custody_cli.bundle import EXIT_FILES_DIFFER, EXIT_VERIFIED
from custody_cli.main import main as custody_main
from reports.bundles import build_release_bundle
from tests.approvals.conftest import _fresh_cache  # noqa: F401 - autouse: status answers are cached by inputs


def bundle_entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_bundle_decisions_json_matches_the_decision_rows(shipped, decided_policy, stricter_policy):
    release, promotion, deployment = shipped
    entries = bundle_entries(build_release_bundle(release, pdf_bytes=b"%PDF-1.7 test packet"))
    decisions = json.loads(entries["decisions.json"])

    rows = Decision.objects.filter(promotion__release=release).select_related("policy_version").order_by("pk")
    assert [d["id"] for d in decisions] == [row.human_id for row in rows]
    for entry, row in zip(decisions, rows, strict=True):
        assert entry["decision"] == row.decision
        assert entry["gates"] == row.gates and entry["approvals"] == row.approvals and entry["reasons"] == row.reasons
        assert entry["policy_version"] == row.policy_version.version
        assert entry["policy_sha256"] == row.policy_version.sha256
        assert entry["inputs_sha256"] == row.inputs_sha256 and entry["answer_sha256"] == row.answer_sha256
        assert entry["evaluated_at"].startswith(row.evaluated_at.strftime("%Y-%m-%dT%H:%M:%S"))
    # The promotion names the decision that counted, and the deployment the one it acted on.
    (released,) = [p for p in json.loads(entries["release.json"])["promotions"] if p["id"] == promotion.human_id]
    assert released["recorded_decision"] == deployment.decision.human_id
    (deployed,) = json.loads(entries["deployments.json"])["deployments"]
    assert deployed["decision"] == deployment.decision.human_id
    # Signatures name their policy the same way: its version number and its digest.
    (approval,) = [a for a in json.loads(entries["approvals.json"]) if a["subject"] == promotion.human_id]
    assert approval["policy_version"] == decided_policy.version
    assert approval["policy_sha256"] == decided_policy.sha256
    # A decision stays as recorded in the bundle too: allowed, under the policy then in force.
    (acted_on,) = [d for d in decisions if d["id"] == deployment.decision.human_id]
    assert acted_on["decision"] == "allowed" and acted_on["policy_sha256"] != active_policy(release.product).sha256


def test_verify_bundle_exits_non_zero_naming_decisions_json_when_a_decision_is_changed(shipped, tmp_path, capsys):
    release, _, deployment = shipped
    bundle = build_release_bundle(release, pdf_bytes=b"%PDF-1.7 test packet")
    key = tmp_path / "custody.pub"
    key.write_text(keyring().active_public_key_pem)
    signed = tmp_path / "bundle.zip"
    signed.write_bytes(bundle)
    assert custody_main(["verify-bundle", str(signed), "--key", str(key)]) == EXIT_VERIFIED
    entries = bundle_entries(bundle)
    assert "decisions.json" in {f["path"] for f in json.loads(entries["manifest.json"])["files"]}
    verify_notes = entries["VERIFY.md"].decode()
    assert "decisions.json" in verify_notes and "policy_sha256" in verify_notes
    assert "exit 1 naming `decisions.json`" in verify_notes

    # Someone turns the decision the deployment acted on from allowed into blocked, inside the zip.
    decisions = json.loads(entries["decisions.json"])
    (acted_on,) = [d for d in decisions if d["id"] == deployment.decision.human_id]
    acted_on["decision"] = "blocked"
    entries["decisions.json"] = (json.dumps(decisions, indent=2, sort_keys=True) + "\n").encode()
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    capsys.readouterr()

    assert custody_main(["verify-bundle", str(tampered), "--key", str(key)]) == EXIT_FILES_DIFFER
    output = capsys.readouterr().out
    assert "FILES DIFFER FROM THE SIGNED MANIFEST" in output
    assert "changed: decisions.json" in output
