"""The demo seed registers a realistic build with real, processed evidence."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from evidence import demo
from evidence.models import Build, Evidence, Provenance, TestResult

pytestmark = pytest.mark.django_db


def test_seed_registers_a_build_with_processed_evidence(product, cast, admin_user):
    out = io.StringIO()
    context = SimpleNamespace(products={"rsd": product}, people=cast, password="x", stdout=out)
    demo.seed(context)
    build = Build.objects.get(pipeline_url=demo.PIPELINE)
    assert "CR-1" in build.commits.first().message
    states = dict(Evidence.objects.values_list("evidence_type", "state"))
    assert states == {"junit": "parsed", "cobertura": "parsed", "cyclonedx": "parsed", "dsse": "parsed"}
    assert Evidence.objects.get(evidence_type="dsse").verdict == "signed"
    assert Evidence.objects.get(evidence_type="cyclonedx").verdict == "signed"
    assert Provenance.objects.get().source_commit == demo.COMMIT
    assert TestResult.objects.filter(requirement_ids__contains=["REQ-004"]).exists()
    demo.seed(context)  # a second run changes nothing
    assert Build.objects.count() == 1 and "already seeded" in out.getvalue()
