"""The built-in model against a fake OpenAI-compatible API on 127.0.0.1: text streams token by token (the
first one out while the server still holds the rest), tool calls are put together from their pieces, the
request is exactly what the API expects, and every failure is a ModelError that says why, never the key."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ivr.agent.fake_api import FakeChatAPI, Reply
from ivr.agent.model import Done, ModelError, Text, ToolCall
from ivr.agent.openai import POOL, OpenAIModel, model_from_settings
from ivr.errors import ConfigError
from ivr.settings import load_settings

KEY = "sk-test-0123456789abcdef"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is my order?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "order_status",
            "description": "Look up an order.",
            "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
        },
    }
]


@pytest.fixture
def api():
    with FakeChatAPI() as fake:
        yield fake


@pytest.fixture
def model(api):
    client = httpx.Client(trust_env=False)
    yield OpenAIModel(api.base_url, "fake-model", KEY, http_client=client)
    client.close()


def reply_of(model: OpenAIModel, timeout: float = 5.0) -> list:
    return list(model.stream(MESSAGES, TOOLS, timeout=timeout))


def test_text_arrives_as_streamed_tokens_then_done(api, model):
    api.reply(Reply(tokens=["Your ", "order ", "shipped", "."]))
    assert reply_of(model) == [Text("Your "), Text("order "), Text("shipped"), Text("."), Done()]


def test_the_first_token_is_yielded_while_the_server_still_holds_the_rest(api, model):
    """No buffering: the server sends one token and waits; the model must hand that token over meanwhile."""
    hold = threading.Event()
    api.reply(Reply(tokens=["Hello", " there", "!"], hold_at=1, hold=hold))
    deltas = model.stream(MESSAGES, TOOLS, timeout=5)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(next, deltas).result(timeout=3)  # a buffering model would block here until `hold`
        assert first == Text("Hello")
        assert not hold.is_set()
        hold.set()
        assert list(deltas) == [Text(" there"), Text("!"), Done()]


def test_the_first_token_comes_before_a_pause_mid_stream(api, model):
    api.reply(Reply(tokens=["Hi", " again"], hold_at=1, pause=0.8))
    started = time.monotonic()
    deltas = model.stream(MESSAGES, TOOLS, timeout=5)
    assert next(deltas) == Text("Hi")
    first = time.monotonic() - started
    assert list(deltas) == [Text(" again"), Done()]
    whole = time.monotonic() - started
    assert first < 0.5 <= 0.8 <= whole


def test_a_tool_call_split_across_deltas_is_put_together(api, model):
    arguments = {"order": "12345", "note": "caller is in a hurry"}
    api.reply(Reply(calls=[("order_status", arguments)], chunk=3))
    deltas = reply_of(model)
    assert deltas == [ToolCall("call_fake_0", "order_status", json.dumps(arguments)), Done()]
    assert json.loads(deltas[0].arguments) == arguments


def test_text_then_several_tool_calls_in_index_order(api, model):
    api.reply(
        Reply(tokens=["One ", "moment."], calls=[("order_status", {"order": "12345"}), ("end_resolved", {})], chunk=2)
    )
    assert reply_of(model) == [
        Text("One "),
        Text("moment."),
        ToolCall("call_fake_0", "order_status", '{"order": "12345"}'),
        ToolCall("call_fake_1", "end_resolved", "{}"),
        Done(),
    ]


def test_the_request_is_the_chat_completions_json_with_the_key_as_bearer(api, model):
    api.reply(Reply(tokens=["ok"]))
    reply_of(model)
    (request,) = api.requests
    assert request.path == "/v1/chat/completions"
    assert request.body == {"model": "fake-model", "messages": MESSAGES, "tools": TOOLS, "stream": True}
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "text/event-stream"


def test_without_a_key_no_authorization_header_and_without_tools_no_tools_key(api):
    api.reply(Reply(tokens=["ok"]))
    with httpx.Client(trust_env=False) as client:
        model = OpenAIModel(api.base_url + "/", "llama3.1", http_client=client)  # a trailing slash is fine
        assert list(model.stream(MESSAGES, [], timeout=5)) == [Text("ok"), Done()]
    (request,) = api.requests
    assert request.path == "/v1/chat/completions"
    assert "authorization" not in request.headers
    assert request.body == {"model": "llama3.1", "messages": MESSAGES, "stream": True}


def test_a_cancelled_reply_leaves_the_model_usable(api, model):
    """Closing the stream mid-reply (an interrupt) drops that answer; the next request gets a whole reply."""
    api.reply(Reply(tokens=["a", "b", "c"], pace=0.05), Reply(tokens=["next"]))
    deltas = model.stream(MESSAGES, TOOLS, timeout=5)
    assert next(deltas) == Text("a")
    deltas.close()
    assert reply_of(model) == [Text("next"), Done()]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("reply", "timeout", "message"),
    [
        (Reply(status=500, error="The server had an error"), 5, "answered 500: The server had an error"),
        (Reply(status=401, error="Incorrect API key provided"), 5, "answered 401: Incorrect API key provided"),
        (Reply(status=429, error="Rate limit reached"), 5, "answered 429: Rate limit reached"),
        (Reply(tokens=["a", "b", "c"], cut_after=1), 5, "broke off its answer (RemoteProtocolError)"),
        (Reply(tokens=["a"], garbage="{not json"), 5, "streamed an event that is not JSON: '{not json'"),
        (Reply(tokens=["a"], stall=3), 0.4, "stalled: nothing came for 0.4s"),
        (Reply(tokens=["a"], stall=3, keepalive=0.1), 0.4, "stalled: only keep-alives for 0.4s"),
    ],
)
def test_each_failure_is_a_model_error_that_says_why(api, model, reply, timeout, message):
    api.reply(reply)
    started = time.monotonic()
    with pytest.raises(ModelError) as caught:
        reply_of(model, timeout)
    assert message in str(caught.value)
    assert f"the model API at {api.base_url.removesuffix('/v1')} (model 'fake-model')" in str(caught.value)
    assert time.monotonic() - started < 2  # a stall is cut at the timeout, not at the end of the stall


def test_a_stall_after_the_first_token_keeps_the_token_then_fails(api, model):
    api.reply(Reply(tokens=["Let me", " check"], hold_at=1, pause=3))
    deltas = model.stream(MESSAGES, TOOLS, timeout=0.4)
    assert next(deltas) == Text("Let me")
    with pytest.raises(ModelError, match="stalled"):
        next(deltas)


def test_a_wrong_base_url_path_names_the_answer(api):
    with httpx.Client(trust_env=False) as client:
        model = OpenAIModel(api.base_url.removesuffix("/v1"), "m", http_client=client)
        with pytest.raises(ModelError, match="answered 404: unknown path /chat/completions"):
            list(model.stream(MESSAGES, TOOLS, timeout=5))


def test_an_unreachable_api_names_the_setting():
    with httpx.Client(trust_env=False) as client:
        model = OpenAIModel(f"http://127.0.0.1:{_closed_port()}/v1", "m", KEY, http_client=client)
        with pytest.raises(ModelError, match=r"cannot be reached \(.*\): check IVR_AGENT_BASE_URL"):
            list(model.stream(MESSAGES, TOOLS, timeout=5))


def test_the_key_is_in_no_message_log_or_repr(api, model, caplog):
    """An API that echoes the key in its error (some do) has it masked; repr shows only that there is one."""
    caplog.set_level(logging.DEBUG)
    api.reply(Reply(status=401, error=f"Incorrect API key provided: {KEY}"))
    with pytest.raises(ModelError) as caught:
        reply_of(model)
    assert KEY not in str(caught.value)
    assert "Incorrect API key provided: ***" in str(caught.value)
    assert KEY not in caplog.text
    assert KEY not in repr(model)
    assert "api_key=***" in repr(model)


def _mock(body: bytes, content_type: str = "text/event-stream") -> httpx.Client:
    """A client whose every answer is `body` (for answers the fake server does not make)."""
    return httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body,
                        headers={"Content-Type": content_type})))  # fmt: skip


def _event(delta: dict, finish: str | None = None) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).encode()


def test_an_answer_that_is_not_an_event_stream_is_refused():
    with _mock(b'{"choices": []}', "application/json") as client:
        model = OpenAIModel("http://api.test/v1", "m", http_client=client)
        with pytest.raises(ModelError, match="answered application/json, not an event stream"):
            list(model.stream(MESSAGES, TOOLS, timeout=5))


def test_a_stream_that_ends_before_the_reply_does_is_refused():
    with _mock(_event({"content": "Half a"}) + b"\n\n") as client:
        model = OpenAIModel("http://api.test/v1", "m", http_client=client)
        with pytest.raises(ModelError, match=r"ended its stream before the reply was complete \(no \[DONE\]\)"):
            list(model.stream(MESSAGES, TOOLS, timeout=5))


def test_a_finished_reply_without_done_is_whole_and_an_error_event_fails():
    body = _event({"content": "Bye"}) + b"\n\n" + _event({}, "stop") + b"\n\n"
    with _mock(body) as client:
        assert list(OpenAIModel("http://api.test/v1", "m", http_client=client).stream([], [], timeout=5)) == [
            Text("Bye"),
            Done(),
        ]
    failing = _mock(b'data: {"error": {"message": "model overloaded"}}\n\n')
    with failing as client, pytest.raises(ModelError, match="failed mid-reply: model overloaded"):
        list(OpenAIModel("http://api.test/v1", "m", http_client=client).stream([], [], timeout=5))


def test_whole_tool_calls_without_an_index_are_separate_calls():
    """Older Ollama sends each call whole, with no index: two calls stay two."""
    calls = [
        {"id": "a", "function": {"name": "order_status", "arguments": '{"order": "1"}'}},
        {"id": "b", "function": {"name": "order_status", "arguments": '{"order": "2"}'}},
    ]
    body = _event({"tool_calls": calls}, "tool_calls") + b"\n\ndata: [DONE]\n\n"
    with _mock(body) as client:
        assert list(OpenAIModel("http://api.test/v1", "m", http_client=client).stream([], [], timeout=5)) == [
            ToolCall("a", "order_status", '{"order": "1"}'),
            ToolCall("b", "order_status", '{"order": "2"}'),
            Done(),
        ]


@pytest.mark.parametrize(
    ("piece", "message"),
    [
        ({"index": 0, "id": "x", "function": {"arguments": "{}"}}, "without a function name"),
        ({"index": "zero", "function": {"name": "f"}}, "with index 'zero'"),
        ("not an object", "malformed tool call piece"),
    ],
)
def test_malformed_tool_call_pieces_are_refused(piece, message):
    body = _event({"tool_calls": [piece]}, "tool_calls") + b"\n\ndata: [DONE]\n\n"
    with _mock(body) as client, pytest.raises(ModelError, match=message):
        list(OpenAIModel("http://api.test/v1", "m", http_client=client).stream([], [], timeout=5))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"IVR_AGENT_BASE_URL": "api.openai.com/v1"}, "IVR_AGENT_BASE_URL (api.openai.com/v1) is not an http(s)"),
        ({"IVR_AGENT_BASE_URL": "ftp://host/v1"}, "such as https://api.openai.com/v1, http://127.0.0.1:11434/v1"),
        ({"IVR_AGENT_BASE_URL": "https://host/v1?x=1"}, "give the part before /chat/completions"),
        ({"IVR_AGENT_BASE_URL": f"https://host/v1?key={KEY}"}, "IVR_AGENT_BASE_URL (https://host/v1?...) is not"),
        ({"IVR_AGENT_BASE_URL": "https://me:pw@host/v1"}, "(https://...@host) carries credentials"),
        ({"IVR_AGENT_MODEL": "m"}, "IVR_AGENT_MODEL is set without IVR_AGENT_BASE_URL"),
        ({"IVR_AGENT_API_KEY": KEY}, "IVR_AGENT_API_KEY is set without IVR_AGENT_BASE_URL"),
        ({"IVR_AGENT_BASE_URL": "https://host/v1", "IVR_AGENT_API_KEY": KEY + "\x07"}, "an HTTP header cannot carry"),
        ({"IVR_AGENT_BASE_URL": "https://host/v1", "IVR_AGENT_API_KEY": KEY + "é"}, "(not shown)"),
    ],
)
def test_agent_settings_are_checked_and_no_message_shows_a_secret(change, message):
    with pytest.raises(ConfigError) as caught:
        load_settings({"IVR_ENV": "test", **change}, environ={})
    assert message in str(caught.value)
    assert KEY not in str(caught.value)
    assert "pw" not in str(caught.value)


def test_agent_settings_are_read_from_the_environment_and_trimmed():
    environ = {"IVR_AGENT_BASE_URL": " http://127.0.0.1:11434/v1 ", "IVR_AGENT_MODEL": "llama3.1",
               "IVR_AGENT_API_KEY": KEY + "\n"}  # fmt: skip
    settings = load_settings({"IVR_ENV": "test"}, environ=environ)
    assert settings["IVR_AGENT_BASE_URL"] == "http://127.0.0.1:11434/v1"
    assert settings["IVR_AGENT_MODEL"] == "llama3.1"
    assert settings["IVR_AGENT_API_KEY"] == KEY
    assert load_settings({"IVR_ENV": "test"}, environ={})["IVR_AGENT_BASE_URL"] is None


def test_model_from_settings_builds_the_configured_model_or_none(api):
    settings = load_settings(
        {"IVR_ENV": "test", "IVR_AGENT_BASE_URL": api.base_url, "IVR_AGENT_MODEL": "default-model",
         "IVR_AGENT_API_KEY": KEY}, environ={},
    )  # fmt: skip
    api.reply(Reply(tokens=["a"]), Reply(tokens=["b"]))
    model = model_from_settings(settings)
    assert isinstance(model, OpenAIModel)
    assert list(model.stream(MESSAGES, [], timeout=5)) == [Text("a"), Done()]
    other = model_from_settings(settings, "state-model")  # an agent state that names its own model
    assert list(other.stream(MESSAGES, [], timeout=5)) == [Text("b"), Done()]
    assert [r.body["model"] for r in api.requests] == ["default-model", "state-model"]
    assert {r.headers["authorization"] for r in api.requests} == {f"Bearer {KEY}"}
    assert model_from_settings(load_settings({"IVR_ENV": "test"}, environ={})) is None
    no_default = load_settings({"IVR_ENV": "test", "IVR_AGENT_BASE_URL": api.base_url}, environ={})
    assert model_from_settings(no_default) is None
    assert model_from_settings(no_default, "state-model").model == "state-model"


def test_a_full_connection_pool_is_named_not_called_a_stall(api):
    """Each live reply holds a connection: one more than the pool allows waits, then says why it failed."""
    hold = threading.Event()
    api.reply(Reply(tokens=["a", "b"], hold_at=1, hold=hold))
    with httpx.Client(trust_env=False, limits=httpx.Limits(max_connections=1)) as client:
        model = OpenAIModel(api.base_url, "m", http_client=client)
        first = model.stream(MESSAGES, [], timeout=5)
        assert next(first) == Text("a")
        with pytest.raises(ModelError, match=r"no free connection within 0.3s \(too many replies at once\)"):
            list(model.stream(MESSAGES, [], timeout=0.3))
        hold.set()
        assert list(first) == [Text("b"), Done()]


def test_the_shared_client_allows_hundreds_of_replies_at_once():
    assert POOL.max_connections >= 256
