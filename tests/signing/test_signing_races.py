"""An edit and a signature racing on real PostgreSQL (Part 11 §11.70): the signature is either refused, or bound to
exactly the content the signer was shown — never to content they did not see.

The signing service compares the hash the signer saw with the content it is about to sign under the same row lock
an edit takes, so one of them waits for the other: the edit first (the signature is refused, 409), or the signature
first (the edit then invalidates it, as every edit of signed content does).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from changecontrol import services
from changecontrol.models import ChangeRequest, Signature
from common.errors import ContentChanged
from tests.conftest import MEDIUM_RISK, change_request_sha256, open_change_request, sign_change_request

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 12


def _race(*actions) -> list:
    """Run each action in its own thread and connection, released at the same moment; their outcomes in order."""
    barrier = threading.Barrier(len(actions))
    outcomes: list = [None] * len(actions)

    def run(index, action):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = action()
        except Exception as error:  # noqa: BLE001 - every outcome is asserted by the test
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, action)) for i, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_an_edit_racing_a_signature_never_leaves_a_signature_over_unseen_content(product, cast):
    rory, quinn = cast["rory"], cast["quinn"]
    outcomes = {"signed, then invalidated by the edit": 0, "refused: the record changed": 0}
    for round_ in range(ROUNDS):
        change_request = open_change_request(
            product=product, requester=rory, answers=MEDIUM_RISK, title=f"Recalibrate the threshold, round {round_}"
        )
        seen = change_request_sha256(change_request)
        shown = ChangeRequest.objects.get(pk=change_request.pk).canonical_content()

        edit, signed = _race(
            lambda cr=change_request: services.change_request_update(
                change_request=cr, actor=rory, what_changes="Amber threshold 0.35 → 0.45.", reason="Panel feedback"
            ),
            lambda cr=change_request, seen=seen: sign_change_request(cr, quinn, seen_sha256=seen),
        )

        assert isinstance(edit, ChangeRequest), edit  # the author's edit always lands
        change_request.refresh_from_db()
        assert change_request.content_version == 2
        signatures = list(
            Signature.objects.filter(
                subject_type="changecontrol.changerequest", subject_id=change_request.pk, signer=quinn
            )
        )
        if isinstance(signed, Signature):
            [signature] = signatures
            # Bound to what the reviewer was shown, and retired by the edit that came after it.
            assert signature.content_sha256 == seen and signature.content == shown
            assert signature.content["content_version"] == 1
            assert signature.invalidated_at is not None
            outcomes["signed, then invalidated by the edit"] += 1
        else:
            assert isinstance(signed, ContentChanged), signed
            assert signed.extra == {
                "seen_content_sha256": seen,
                "content_sha256": change_request_sha256(change_request),
            }
            assert signatures == []
            outcomes["refused: the record changed"] += 1
        # Either way nothing standing is bound to content other than the record as it is now.
        assert not Signature.objects.filter(
            subject_type="changecontrol.changerequest", subject_id=change_request.pk, invalidated_at__isnull=True
        ).exists()
    assert sum(outcomes.values()) == ROUNDS, outcomes
