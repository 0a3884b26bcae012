"""Message log on the profile timeline and in journey stats; tracking tokens cannot be forged."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from rejse.messaging import tokens
from rejse.messaging.sender import send_message
from rejse.messaging.service import journey_message_stats, record_click, record_open
from rejse.profiles.consent import set_consent
from rejse.timeline import list_entries
from tests.messaging.conftest import NOON, mette
from tests.messaging.test_channels import req


def test_tokens_are_signed_and_typed():
    t = tokens.sign("secret", "c", "msg_1", 2)
    assert tokens.verify("secret", t, "c") == ("msg_1", 2)
    for bad in [t[:-2] + "AA", t.replace(".", ".x"), "nonsense", ""]:
        with pytest.raises(tokens.InvalidToken):
            tokens.verify("secret", bad, "c")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify("other-secret", t, "c")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify("secret", t, "u")  # a click token does not unsubscribe
    forged = tokens._b64(b"u:msg_2") + "." + t.split(".")[1]
    with pytest.raises(tokens.InvalidToken):
        tokens.verify("secret", forged, "u")


def test_log_reaches_timeline_and_journey_stats(runtime):
    a, b = mette(runtime), mette(runtime, identifiers={"email": "b@example.dk"})
    with Session(runtime.engine) as s:
        set_consent(s, profile_id=b, channel="email", status="denied", source="test")
        s.commit()
    sent = send_message(runtime.settings, runtime.engine, req(a, "email"), now=NOON)
    send_message(runtime.settings, runtime.engine, req(b, "email"), now=NOON)
    with Session(runtime.engine) as s:
        record_open(s, message_id=sent.message_id)
        record_click(s, message_id=sent.message_id, index=0)
        s.commit()
        summaries = [e.summary for e in list_entries(s, profile_id=a) if e.kind == "message"]
        assert any(x.startswith("email abandoned_cart/reminder sent") for x in summaries)
        assert any("opened" in x for x in summaries)
        assert any("clicked" in x for x in summaries)
        assert all("@" not in x for x in summaries)  # no PII in the timeline text
        skipped = [e for e in list_entries(s, profile_id=b) if e.kind == "message"]
        assert skipped[0].data["reason"] == "no_consent (email denied)"
        stats = journey_message_stats(s, journey_key="abandoned-cart")
    assert stats["s1"]["clicked"] == 1
    assert stats["s1"]["skipped"] == 1
    assert stats["s1"]["delivered"] == 1
    assert stats["s1"]["opened_total"] == 1
    assert stats["s1"]["clicked_total"] == 1


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.parametrize("part", [0, 1])
def test_a_token_is_valid_in_its_one_spelling_only(part):
    """The signature's 16 bytes take 22 base64 characters, the last with 4 bits to spare, and
    a lenient decoder ignores both those bits and characters outside the alphabet: another
    spelling of the same bytes is a different token and is refused (the preference centre's
    "tampered signature", the last two characters made "AB", verified about once in 256 runs:
    when the signature ended in "AA")."""
    token = tokens.sign("s3cret", "p", "msg_1")
    pieces = token.split(".")
    last = pieces[part][-1]
    spare = B64URL[B64URL.index(last) ^ 1]  # the lowest bit: unused in both parts here
    assert len(pieces[0]) % 4 != 0
    assert len(pieces[1]) % 4 != 0
    for other in (
        pieces[part][:-1] + spare,
        pieces[part] + "!",
        pieces[part][:3] + "\n" + pieces[part][3:],
    ):
        forged = ".".join(other if i == part else p for i, p in enumerate(pieces))
        assert forged != token
        with pytest.raises(tokens.InvalidToken):
            tokens.verify("s3cret", forged, "p")
    assert tokens.verify("s3cret", token, "p") == ("msg_1", None)
