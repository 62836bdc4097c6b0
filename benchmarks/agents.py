"""Agent states at scale (issue 19): N concurrent ConversationRelay conversations against gunicorn.

The server is the production command, `gunicorn -c ivr/web/gunicorn_conf.py app:app` (gthread workers; the
config gives each worker 4 + IVR_AGENT_SOCKETS threads when a flow has an agent state), production mode,
the SQLite store, a token: every webhook and every WebSocket handshake is signed as Twilio signs them
(the handshake over the wss/ws URL the TwiML names). It serves the shipped flows; the conversations are
flows/assistant.yaml's agent state, its tools the flow's own hooks. It runs pinned to core 1.

The model is `ivr.agent.fake_api.FakeChatAPI` in a process of its own (this module with `--fake`),
streaming at a model's pace: the first token after `--ttft` seconds, then one every `1 / --rate` seconds,
20 to 40 tokens a reply. The clients are threads of this process (simple-websocket, as tests/agent_helpers.py),
pinned with the fake to core 0; their CPU and the fake's are measured, to show they are not the bottleneck.

A conversation, as Twilio would hold it: the call enters (`POST /voice/assistant`, answered with
`<Connect><ConversationRelay>`), the socket opens and sends `setup`; 3 to 5 prompts, each answered; every
other conversation asks for an order, so the model calls the `order_status` tool (the flow's hook) before
answering; the last prompt says goodbye and the model ends on `resolved`; then the `<Connect action>`
webhook with that HandoffData must say goodbye. The caller "listens" 0.5 to 1.5 s between replies.

Time to first token added by the app, per reply without a tool call: (the client's first text token - the
client's prompt) - (the fake's first token - the fake receiving the request). The fake writes both of its
times (CLOCK_MONOTONIC, one clock for every process of the machine) into the first token it streams, so the
subtraction leaves exactly what the app (and the loopback network) adds on both legs: prompt in -> request
out, and token in -> token out. Also shown: the out leg alone (first token in -> out) for every reply.

Memory: the workers' RSS summed, before the conversations, with every one set up, and at its peak, divided
by N. CPU: the server's (master and workers) over the run, per conversation turn (a prompt answered;
the webhooks, handshakes and tool calls included).

Run (about a minute):

    python -m benchmarks.agents                          # 1 (best case, 5 in a row) and 200 at once
    python -m benchmarks.agents --concurrency 1 50 200 --sockets 150
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simple_websocket import Client, ConnectionClosed
from twilio.request_validator import RequestValidator

from benchmarks import common
from benchmarks.http_load import SERVER_CPU, Server, core_ticks, cpu_ticks, server_env

CLIENT_CPU = 0
TICK = os.sysconf("SC_CLK_TCK")
REPEATS = 5  # the best case's conversations, one after the other
WAIT = 15.0  # Twilio's patience with a webhook; here also with a silent socket
WORDS = ["your", "order", "is", "on", "its", "way", "and", "should", "arrive", "in", "a", "few", "days", "so",
         "there", "is", "nothing", "to", "do", "now", "but", "call", "us", "if", "it", "is", "late"]  # fmt: skip


# -- the model, in its own process ----------------------------------------------------------------


class Stamped(Sequence):
    """A reply's tokens, paced as a model streams them; the first token carries the fake's two times."""

    def __init__(self, tokens: list[str], ttft: float, pace: float) -> None:
        self.tokens, self.ttft, self.pace, self.arrived = tokens, ttft, pace, time.monotonic()

    def __len__(self) -> int:
        return len(self.tokens) + 1

    def __getitem__(self, index):  # Sequence's contract; streaming uses __iter__
        return ([""] + self.tokens)[index]

    def __iter__(self) -> Iterator[str]:
        time.sleep(max(0.0, self.ttft - (time.monotonic() - self.arrived)))
        yield f"[fake {self.arrived:.6f} {time.monotonic():.6f}]"
        for token in self.tokens:
            time.sleep(self.pace)
            yield " " + token


def answer(body: object, ttft: float, pace: float):
    """What the fake model says, from the conversation so far: a tool call for an order, text, or a goodbye."""
    from ivr.agent.fake_api import Reply

    messages = body.get("messages", []) if isinstance(body, dict) else []
    last = messages[-1] if messages else {}
    said = str(last.get("content") or "")
    rng = random.Random(len(messages) * 7919 + len(said))
    tokens = [rng.choice(WORDS) for _ in range(rng.randint(20, 40))]
    if last.get("role") == "user" and "order" in said:
        return Reply(calls=[("order_status", {"order": "12345"})], stall=ttft)
    if last.get("role") == "user" and "bye" in said:
        return Reply(tokens=Stamped(tokens[:20], ttft, pace), calls=[("end_resolved", {})])
    return Reply(tokens=Stamped(tokens, ttft, pace))


def serve_fake(ttft: float, pace: float) -> None:
    """The fake API until stdin closes; its base URL is the first line written."""
    from ivr.agent.fake_api import FakeChatAPI

    api = FakeChatAPI(answer=lambda body: answer(body, ttft, pace)).start()
    print(api.base_url, flush=True)
    sys.stdin.read()
    api.stop()


def cpu_seconds(pid: int) -> float:
    return sum(cpu_ticks(pid).values()) / TICK


# -- the callers ----------------------------------------------------------------------------------


@dataclass
class Level:
    """What one concurrency level measured."""

    n: int
    added: list[float] = field(default_factory=list)  # per reply without a tool call
    out_leg: list[float] = field(default_factory=list)  # per reply: the model's first token in -> out
    in_leg: list[float] = field(default_factory=list)  # per reply without a tool call: prompt in -> request out
    tool_turn: list[float] = field(default_factory=list)  # prompt -> first token, through a tool call
    turns: int = 0
    tools: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post(port: int, public: str, path: str, params: dict) -> bytes:
    signed = common.Signed(public, path, params)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        connection.request("POST", path, signed.body, {**signed.headers, "Content-Type": common.FORM})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}")
        return body
    finally:
        connection.close()


def converse(server: Server, sid: str, seed: int, level: Level, ready: threading.Barrier, think: float) -> None:
    """One call through the agent state, as Twilio and a caller would hold it."""
    rng = random.Random(seed)
    public, path = server.base, "/relay/assistant/assistant"
    ws = None
    try:
        twiml = post(server.port, public, "/voice/assistant", common.caller_params(sid, "ringing"))
        assert b"<ConversationRelay" in twiml, twiml[:300]
        url = "ws" + public[len("http") :] + path
        signature = RequestValidator(common.TOKEN).compute_signature(url, {})
        ws = Client.connect(f"ws://127.0.0.1:{server.port}{path}", headers={"X-Twilio-Signature": signature})
        ws.send(json.dumps({"type": "setup", "callSid": sid, "from": "+15551230000", "to": "+15559870000",
                            "customParameters": {}}))  # fmt: skip
    except Exception as exc:
        with level.lock:
            level.errors.append(f"{sid} at setup: {type(exc).__name__}: {exc}")
    ready.wait()  # every conversation set up (or failed) before any prompt: the memory of N at once
    if ws is None:
        return
    prompts = ["Hi, I have a question."] + ["Where is my order 12345?"] * (seed % 2 == 0)
    prompts += ["And what should I do meanwhile?"] * rng.randint(1, 3 - (seed % 2 == 0)) + ["That's all, thanks, bye."]
    try:
        time.sleep(rng.uniform(0, 2) * think)  # calls do not all speak at the same instant
        for prompt in prompts:
            sent = time.monotonic()
            ws.send(json.dumps({"type": "prompt", "voicePrompt": prompt, "lang": "en-US", "last": True}))
            first, end = None, None
            while end is None:
                data = ws.receive(timeout=WAIT)
                assert data is not None, f"nothing for {WAIT} s after {prompt!r}"
                message, now = json.loads(data), time.monotonic()
                if message["type"] == "end":
                    end = json.loads(message["handoffData"])
                elif message["type"] == "text" and message["token"] and first is None:
                    first = message["token"]
                    stamp = re.fullmatch(r"\[fake (\S+) (\S+)\]", first)
                    assert stamp, first
                    arrived, streamed = float(stamp[1]), float(stamp[2])
                    with level.lock:
                        level.out_leg.append(now - streamed)
                        if "order" in prompt:
                            level.tool_turn.append(now - sent)
                        else:
                            level.added.append((now - sent) - (streamed - arrived))
                            level.in_leg.append(arrived - sent)
                elif message["type"] == "text" and message["last"] and "bye" not in prompt:
                    break  # the goodbye's reply is followed by `end`
            with level.lock:
                level.turns += 1
                level.tools += "order" in prompt
            if "bye" in prompt:
                assert end == {"route": "resolved", "values": {}}, end
            else:
                time.sleep(rng.uniform(0.5, 1.5) * think)  # the caller listens to the reply
        with contextlib.suppress(ConnectionClosed, OSError):  # the app closes first after `end`: a race to close
            ws.close()
        ws = None
        params = {**common.caller_params(sid), "HandoffData": json.dumps(end), "SessionStatus": "ended"}
        after = post(server.port, public, "/voice/assistant/assistant", params)
        assert b"Thank you for calling Acme" in after, after[:300]
    except Exception as exc:
        with level.lock:
            level.errors.append(f"{sid}: {type(exc).__name__}: {exc}")
    finally:
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()


# -- measuring ------------------------------------------------------------------------------------


def workers_of(server: Server) -> list[int]:
    return [pid for pid in cpu_ticks(server.process.pid) if pid != server.process.pid]


def rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/statm") as statm:
            total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return total


def fds(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids if os.path.isdir(f"/proc/{pid}/fd"))


def run_level(server: Server, fake: subprocess.Popen, n: int, tag: int, think: float = 1.0) -> dict:
    """N conversations at once (for N = 1, REPEATS in a row); what they measured."""
    level = Level(n)
    pids = workers_of(server)
    before_rss = rss(pids)
    server_cpu, fake_cpu, own = cpu_seconds(server.process.pid), cpu_seconds(fake.pid), os.times()
    cores = {core: core_ticks(core) for core in (CLIENT_CPU, SERVER_CPU)}
    started = time.monotonic()
    repeats = REPEATS if n == 1 else 1
    peak = {"rss": before_rss, "fds": 0, "set_up": 0}
    for r in range(repeats):
        ready = threading.Barrier(n + 1)
        sids = [f"CA{tag:04d}{r:04d}{i:024d}" for i in range(n)]
        threads = [threading.Thread(target=converse, args=(server, sid, i, level, ready, think))
                   for i, sid in enumerate(sids)]  # fmt: skip
        for thread in threads:
            thread.start()
        ready.wait()
        peak["set_up"] = max(peak["set_up"], rss(pids))
        while any(thread.is_alive() for thread in threads):
            peak["rss"], peak["fds"] = max(peak["rss"], rss(pids)), max(peak["fds"], fds(pids))
            time.sleep(0.2)
    elapsed = time.monotonic() - started
    own_after = os.times()
    busy = {}
    for core, (b0, a0) in cores.items():
        b1, a1 = core_ticks(core)
        busy[core] = (b1 - b0) / max(1, a1 - a0)
    return {
        "level": level, "elapsed": elapsed, "conversations": n * repeats,
        "server_cpu": cpu_seconds(server.process.pid) - server_cpu, "fake_cpu": cpu_seconds(fake.pid) - fake_cpu,
        "client_cpu": (own_after.user - own.user) + (own_after.system - own.system), "busy": busy,
        "rss": (before_rss, peak["set_up"], peak["rss"]), "fds": peak["fds"],
    }  # fmt: skip


def ms(values: list[float], fraction: float) -> str:
    return f"{common.percentile(values, fraction) * 1e3:.1f}" if values else "-"


def report(results: list[dict], server: Server) -> None:
    rows, resources = [], []
    for res in results:
        level, n = res["level"], res["level"].n
        rows.append([n, res["conversations"], level.turns, level.tools, len(level.errors),
                     *(ms(level.added, f) for f in (0.5, 0.95, 0.99)), ms(level.in_leg, 0.5), ms(level.in_leg, 0.99),
                     ms(level.out_leg, 0.5), ms(level.out_leg, 0.99),
                     ms(level.tool_turn, 0.5)])  # fmt: skip
        before, set_up, peak = res["rss"]

        def per(total: int, before: int = before, n: int = n) -> str:
            return f"{(total - before) / n / 1024:,.0f} KiB" if n > 1 else "-"

        elapsed = res["elapsed"]
        resources.append([n, f"{before / 2**20:,.1f} MiB", f"{set_up / 2**20:,.1f} MiB ({per(set_up)})",
                          f"{peak / 2**20:,.1f} MiB ({per(peak)})", res["fds"],
                          f"{res['server_cpu'] / max(1, level.turns) * 1e3:.1f} ms",
                          f"{res['server_cpu'] / elapsed:.0%}", f"{res['client_cpu'] / elapsed:.0%}",
                          f"{res['fake_cpu'] / elapsed:.0%}",
                          f"{res['busy'][CLIENT_CPU]:.0%} / {res['busy'][SERVER_CPU]:.0%}",
                          f"{elapsed:.1f} s"])  # fmt: skip
    print(common.table(["N at once", "conversations", "turns", "tool calls", "errors", "added TTFT p50 ms", "p95",
                        "p99", "in leg p50 ms", "in leg p99", "out leg p50 ms", "out leg p99",
                        "tool turn: prompt -> first token p50 ms"], rows))  # fmt: skip
    print()
    print(common.table(["N at once", "workers' RSS before", "all set up (per conversation)", "peak (per conversation)",
                        "workers' fds at peak", "server CPU per turn", "server CPU", "clients' CPU", "fake model's CPU",
                        "core 0 / core 1 busy", "wall"], resources))  # fmt: skip
    log = server.log.read_text(errors="replace")
    ended = re.findall(r"\[(\d+)\] INFO ivr\.agent: .*the conversation ended on", log)
    per_worker = {pid: ended.count(pid) for pid in sorted(set(ended))}
    print(
        f"\nConversations ended per worker (all levels): {per_worker}. "
        f"{re.search(r'agent states: .*', log)[0] if 'agent states:' in log else 'threads: not resized'}."
    )
    for res in results:
        for error in res["level"].errors[:10]:
            print(f"- error (N={res['level'].n}): {error}")
    problems = log.count("Traceback") + log.count("refused WebSocket")
    print(f"Server log: {problems} tracebacks or refused handshakes.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 200], help="conversations at once")
    parser.add_argument("--sockets", type=int, default=150, help="IVR_AGENT_SOCKETS: conversations per worker")
    parser.add_argument("--ttft", type=float, default=0.3, help="the model's seconds to its first token")
    parser.add_argument("--rate", type=float, default=40.0, help="the model's tokens per second after the first")
    parser.add_argument("--think", type=float, default=1.0, help="scales the caller's pauses (tests: 0.1)")
    parser.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)  # the fake API's process
    args = parser.parse_args(argv)
    if args.fake:
        serve_fake(args.ttft, 1 / args.rate)
        return 0
    common.clean_environ()
    os.sched_setaffinity(0, {CLIENT_CPU})
    common.print_header("Agent states: concurrent ConversationRelay conversations on gunicorn")
    command = [sys.executable, "-m", "benchmarks.agents", "--fake", "--ttft", str(args.ttft), "--rate", str(args.rate)]
    fake = subprocess.Popen(command, cwd=common.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    base_url = fake.stdout.readline().strip()
    with tempfile.TemporaryDirectory(prefix="ivr-agents-") as tmp:
        flows = common.copy_example_flows(Path(tmp) / "flows", agents=True)
        env = server_env(IVR_ENV="production", IVR_FLOWS_DIR=str(flows), IVR_HOT_RELOAD="0", IVR_EVENTS="off",
                         IVR_SPOOL_DIR=f"{tmp}/spool", IVR_STORE=f"sqlite:///{tmp}/sessions.sqlite3",
                         IVR_AGENT_BASE_URL=base_url, IVR_AGENT_MODEL="fake",
                         IVR_AGENT_SOCKETS=str(args.sockets))  # fmt: skip
        server = Server("ivr", "app:app", env, Path(tmp) / "ivr.log", [])
        try:
            print(f"gunicorn -c ivr/web/gunicorn_conf.py app:app, {len(workers_of(server))} gthread workers on core "
                  f"{SERVER_CPU}, IVR_AGENT_SOCKETS={args.sockets}; clients and the fake model on core {CLIENT_CPU}; "
                  f"the model: first token after {args.ttft * 1e3:.0f} ms, then {args.rate:.0f} tokens/s, "
                  "20-40 tokens a reply.\n")  # fmt: skip
            warm = run_level(
                server, fake, 2, 99, args.think
            )  # the workers' first conversations load what they use once
            if warm["level"].errors:
                raise RuntimeError(f"the warm-up conversations failed: {warm['level'].errors}")
            results = [run_level(server, fake, n, tag, args.think) for tag, n in enumerate(args.concurrency)]
            report(results, server)
        finally:
            server.stop()
            fake.stdin.close()
            fake.wait(timeout=10)
    return 1 if any(res["level"].errors for res in results) else 0


if __name__ == "__main__":
    sys.exit(main())
