"""Studio's Say/Play widget and the trigger: imported, checked, called."""

from __future__ import annotations

from studio_support import fixtures_for, import_fixture, strict_problems

flows, ivr_app = fixtures_for("say_play")


def test_say_play_is_said_and_played_in_order_then_the_call_ends(phone, flows):
    call = phone.dial("say_play", from_="+15551230000")
    # loop 2 is one <Play loop="2">: the phone reports the play once
    assert '<Play loop="2">https://example.com/chime.mp3</Play>' in call.documents[0]
    assert call.heard == [
        "Thanks for calling, +15551230000.",
        "play: https://example.com/chime.mp3",
        "Goodbye.",
    ]
    assert call.ended and call.end_reason == "hangup"
    assert strict_problems(flows) == []


def test_one_voice_for_every_say_is_the_flows_default(flows):
    text = import_fixture("say_play", flows).text
    assert "defaults: {voice: Polly.Joanna, language: en-US}" in text
    assert 'say: "Thanks for calling, {{ call.From }}."' in text
    assert "play: {url: https://example.com/chime.mp3, loop: 2}" in text
