"""A Conversation speaks ConversationRelay's protocol: a scripted model, the flow's hooks as tools, the limits."""

from __future__ import annotations

import json
import threading
import time

import pytest
from agent_helpers import Talk, make_agent

from ivr.agent.channel import pair
from ivr.agent.conversation import APOLOGY, LIMIT_LINE, Conversation
from ivr.agent.model import ModelError, ScriptedModel, Text, Turn
from ivr.hooks import HookRunner, registry
from ivr.store import MemoryStore

SID = "CA" + "1" * 32


@pytest.fixture
def store():
    store = MemoryStore()
    store.update(SID, lambda _: {"flow": "main", "state": "assistant", "vars": {"name": "Ann"}}, 3600)
    return store


@pytest.fixture
def talk_to(store):
    """Start a conversation of an agent (the design's example, with changes) on a thread; Twilio's side of it."""
    threads = []

    def start(model, **changes):
        caller, server = pair()
        conversation = Conversation(make_agent(**changes), flow_id="main", state="assistant", model=model,
                                    runner=HookRunner(registry, 2.0), store=store, send=server.send,
                                    stall=0.5)  # fmt: skip
        done = {}

        def run():
            done["outcome"] = conversation.run(server.receive)
            server.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        talk = Talk(caller)
        talk.conversation, talk.done, talk.thread = conversation, done, thread
        talk.setup(SID)
        return talk

    yield start
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive(), "a conversation outlived its test"


def finished(talk) -> str:
    talk.thread.join(5)
    return talk.done["outcome"]


def test_a_tool_call_runs_the_hook_with_checked_arguments_and_the_model_ends_on_a_route(talk_to, store):
    asked = []

    def order_status(ctx):
        asked.append(dict(ctx.input))
        return {"outcome": "found", "vars": {"status": "shipped"}}

    model = ScriptedModel([Turn("Let me check that.", (("order_status", {"order": "12345"}),)),
                           Turn("It shipped yesterday."), Turn("", (("end_resolved", {}),))])  # fmt: skip
    with registry.override("order_status", order_status):
        talk = talk_to(model)
        assert talk.say("Where is order 12345?") == "Let me check that."
        assert talk.reply() == "It shipped yesterday."  # after the tool's answer, in the same turn
        assert talk.say("Thanks, that's all.") == ""
        assert talk.handoff() == {"route": "resolved", "values": {}}
    assert finished(talk) == "resolved"
    assert asked == [{"order": "12345"}]
    tokens = [m for m in talk.received if m["type"] == "text" and m["token"]]
    assert len(tokens) > 2, "the reply is streamed token by token, not sent whole"
    system, user = model.asked[0][0][:2]
    assert system == {"role": "system", "content": "You help Ann with Acme orders. Be brief."}
    assert user == {"role": "user", "content": "Where is order 12345?"}
    tool_answer = model.asked[1][0][-1]
    assert tool_answer["role"] == "tool" and json.loads(tool_answer["content"]) == {
        "outcome": "found", "vars": {"status": "shipped"}}  # fmt: skip
    names = [tool["function"]["name"] for tool in model.asked[0][1]]
    assert names == ["order_status", "end_resolved", "end_operator"]
    summary = store.get(SID)["agent"]
    assert (summary["outcome"], summary["turns"], summary["state"]) == ("resolved", 2, "assistant")
    assert [(t["name"], t["outcome"]) for t in summary["tools"]] == [("order_status", "found")]
    assert summary["transcript"][0] == {"caller": "Where is order 12345?"}
    assert len(summary["latency_ms"]) == 3


def test_arguments_that_break_the_tools_schema_go_back_to_the_model_never_to_the_hook(talk_to, store):
    called = []
    model = ScriptedModel([Turn("", (("order_status", {"order": "12; DROP TABLE"}),)), Turn("Which order?")])
    with registry.override("order_status", lambda ctx: called.append(ctx)):
        talk = talk_to(model)
        assert talk.say("my order") == "Which order?"
        talk.connection.close()
    assert finished(talk) == "hangup"
    assert called == []
    refusal = json.loads(model.asked[1][0][-1]["content"])
    assert refusal["error"].startswith("refused: order: does not match")
    assert store.get(SID)["agent"]["tools"][0]["outcome"] == "refused"


def test_the_end_values_are_kept_as_short_safe_strings(talk_to):
    model = ScriptedModel([Turn("Putting you through.", (("end_operator", {"reason": "x\x01" * 300}),))])
    talk = talk_to(model)
    talk.say("a person please")
    values = talk.handoff()["values"]
    assert values == {"reason": "x" * 200}
    assert finished(talk) == "operator"


class Slow:
    """A model that streams its words slowly (about 20 ms apart), for interrupts and limits."""

    def __init__(self, words: int = 200, pause: float = 0.02) -> None:
        self.words, self.pause, self.asked = words, pause, []

    def stream(self, messages, tools, *, timeout):
        self.asked.append([dict(m) for m in messages])
        for i in range(self.words):
            time.sleep(self.pause)
            yield Text(f"w{i} ")


def test_an_interrupt_cancels_the_reply_and_keeps_only_what_the_caller_heard(talk_to, store):
    model = Slow()
    talk = talk_to(model)
    talk.connection.send({"type": "prompt", "voicePrompt": "hello", "lang": "en-US", "last": True})
    assert talk.next()["type"] == "text"
    talk.connection.send({"type": "interrupt", "utteranceUntilInterrupt": "w0", "durationUntilInterruptMs": 300})
    time.sleep(0.3)
    sent = len([m for m in talk.received if m["type"] == "text"])
    while talk.connection.receive(0.1) is not None:
        sent += 1
    assert sent < 20, "the reply went on after the interrupt"
    talk.connection.send({"type": "prompt", "voicePrompt": "sorry, go on", "lang": "en-US", "last": True})
    talk.next()
    assert model.asked[1][-2] == {"role": "assistant", "content": "w0"}
    talk.connection.close()
    assert finished(talk) == "hangup"
    assert {"agent": "w0", "interrupted": True} in store.get(SID)["agent"]["transcript"]


def test_an_interrupt_after_the_reply_shortens_it_to_what_was_heard(talk_to):
    model = ScriptedModel([Turn("One two three four."), Turn("Yes?")])
    talk = talk_to(model)
    talk.say("count")
    talk.connection.send({"type": "interrupt", "utteranceUntilInterrupt": "One two", "durationUntilInterruptMs": 800})
    talk.say("stop")
    assert {"role": "assistant", "content": "One two"} in model.asked[1][0]
    talk.connection.close()


def test_a_key_the_agent_knows_ends_on_its_route_and_other_keys_are_ignored(talk_to):
    talk = talk_to(ScriptedModel([]))
    talk.press("5")
    talk.press("0")
    assert talk.handoff() == {"route": "operator", "values": {}}
    assert finished(talk) == "operator"


def test_a_key_during_a_reply_ends_at_once(talk_to):
    talk = talk_to(Slow())
    talk.connection.send({"type": "prompt", "voicePrompt": "hello", "lang": "en-US", "last": True})
    talk.next()
    talk.press("0")
    assert talk.handoff()["route"] == "operator"


def test_partial_prompts_wait_for_the_whole_one(talk_to):
    model = ScriptedModel([Turn("Hi.")])
    talk = talk_to(model)
    talk.connection.send({"type": "prompt", "voicePrompt": "where is", "lang": "en-US", "last": False})
    assert talk.say("where is my order") == "Hi."
    assert [m["content"] for m in model.asked[0][0] if m["role"] == "user"] == ["where is my order"]
    talk.connection.close()


@pytest.mark.parametrize(
    ("limits", "prompts"),
    [({"turns": 1}, 2), ({"silence": 1}, 0), ({"seconds": 1, "silence": 20}, 0)],
    ids=["turns", "silence", "seconds"],
)
def test_each_limit_says_a_line_and_ends_on_limit(talk_to, store, limits, prompts):
    talk = talk_to(ScriptedModel([Turn("Sure.") for _ in range(prompts)]), **limits)
    started = time.monotonic()
    for _ in range(prompts - 1):
        assert talk.say("hello") == "Sure."
    if prompts:
        talk.connection.send({"type": "prompt", "voicePrompt": "more", "lang": "en-US", "last": True})
    assert talk.reply() == LIMIT_LINE
    assert talk.handoff() == {"route": "limit", "values": {}}
    assert finished(talk) == "limit"
    assert time.monotonic() - started < 3
    assert store.get(SID)["agent"]["outcome"] == "limit"


def test_the_seconds_limit_cuts_a_reply_short(talk_to):
    talk = talk_to(Slow(words=1000), seconds=1)
    talk.connection.send({"type": "prompt", "voicePrompt": "tell me everything", "lang": "en-US", "last": True})
    assert talk.handoff()["route"] == "limit"
    assert talk.received[-2] == {"type": "text", "token": LIMIT_LINE, "last": True}


class Failing:
    def stream(self, messages, tools, *, timeout):
        yield Text("Well")
        raise ModelError("HTTP 500 from the model")


class Stalling:
    def stream(self, messages, tools, *, timeout):
        yield Text("Hmm")
        time.sleep(3)
        yield Text(" never heard")


@pytest.mark.parametrize("model", [Failing(), Stalling(), ScriptedModel([])], ids=["error", "stall", "no reply"])
def test_a_model_that_fails_or_stalls_gets_an_apology_said_and_ends_on_error(talk_to, store, model):
    talk = talk_to(model)
    started = time.monotonic()
    talk.connection.send({"type": "prompt", "voicePrompt": "hello", "lang": "en-US", "last": True})
    assert talk.handoff() == {"route": "error", "values": {}}
    assert {"type": "text", "token": APOLOGY, "last": True} in talk.received
    said = talk.received.index({"type": "text", "token": APOLOGY, "last": True})
    if said > 0 and talk.received[said - 1].get("token"):  # a reply cut off ends first: the apology is not run into it
        pytest.fail(f"the apology follows an unfinished reply: {talk.received[: said + 1]}")
    assert time.monotonic() - started < 2.5, "the stall bound (0.5 s here) ended it"
    assert finished(talk) == "error"
    assert store.get(SID)["agent"]["outcome"] == "error"


def test_without_a_model_the_caller_hears_an_apology_and_the_log_names_the_settings(talk_to, caplog):
    talk = talk_to(None)
    assert talk.reply() == APOLOGY
    assert talk.handoff()["route"] == "error"
    assert "IVR_AGENT_BASE_URL" in caplog.text and "IVR_AGENT_MODEL" in caplog.text


def test_a_dropped_connection_ends_the_conversation_as_a_hangup(talk_to, store):
    talk = talk_to(Slow())
    talk.connection.send({"type": "prompt", "voicePrompt": "hello", "lang": "en-US", "last": True})
    talk.next()
    talk.connection.close()
    assert finished(talk) == "hangup"
    assert store.get(SID)["agent"]["outcome"] == "hangup"


@pytest.mark.parametrize("other", [None, {"flow": "billing", "state": "menu", "vars": {"name": "Bo"}}])
def test_a_setup_for_a_call_not_waiting_at_this_agent_state_gets_no_model_and_no_session(store, other):
    """A signed handshake is the same for every call of the state: the setup's CallSid must be a call at it."""
    sid = "CA" + "9" * 32
    if other is not None:
        store.update(sid, lambda _: dict(other), 3600)
    model = ScriptedModel([Turn("You should never hear this.")])
    caller, server = pair()
    conversation = Conversation(make_agent(), flow_id="main", state="assistant", model=model,
                                runner=HookRunner(registry, 2.0), store=store, send=server.send, stall=0.5)  # fmt: skip
    caller.send({"type": "setup", "callSid": sid, "from": "+15551230000", "to": "+15559870000"})
    assert conversation.run(server.receive) == "error"
    assert model.asked == []  # no variables of another call reached a model
    assert store.get(sid) == other  # nor did this conversation write into that call's session
