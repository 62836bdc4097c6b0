// The browser phone: calls a flow through the /phone JSON API, shows (and speaks) what the caller
// hears, sends what the caller does, and draws the flow with the call's state highlighted.
// Plain JavaScript, no build step, nothing fetched from anywhere but this app.
"use strict";

(() => {
  const base = location.pathname.replace(/\/+$/, ""); // "/phone", under any script root
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const KEYPAD = [
    ["1", ""], ["2", "ABC"], ["3", "DEF"], ["4", "GHI"], ["5", "JKL"], ["6", "MNO"],
    ["7", "PQRS"], ["8", "TUV"], ["9", "WXYZ"], ["*", ""], ["0", "+"], ["#", ""],
  ];
  const WAITING = {
    gather: "waits for keys or speech",
    record: "is recording: speak, or leave nothing",
    dial: "is dialling: choose how it ends",
    enqueue: "waits in a queue: choose how it ends",
    pay: "takes a payment (<Pay>): key the card",
    agent: "talks with an agent: type what you say",
  };
  const ENDINGS = {
    hangup: "the flow hung up",
    reject: "the flow rejected the call",
    "caller-hangup": "you hung up",
    "end-of-document": "the document ended, so Twilio hung up",
    error: "an error ended it",
  };
  const KEY_PAUSE = 1200; // ms after the last key before the keys go, as Twilio's timeout would

  let call = null; // the call as the API last answered it
  let busy = false;
  let keys = "";
  let keyTimer = null;
  let warningsShown = 0;
  let languages = {}; // flow id -> the languages it offers
  let visited = new Set(); // "flow/state" the call has been in, as the server lists them
  let versions = {}; // flow id -> content version, to redraw a graph after an edit
  const graphs = {}; // "flow@version" -> graph data
  let drawn = null; // "flow@version" on screen
  const audioQueue = [];

  // -- the API ----------------------------------------------------------------------------------

  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(base + path, options);
    } catch (err) {
      throw new Error(`the app did not answer (${err.message})`);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
    return data;
  }

  // -- flows and problems -----------------------------------------------------------------------

  async function loadFlows(first) {
    let data;
    try {
      data = await api("GET", "/flows");
    } catch (err) {
      if (first) showMessage(err.message);
      return;
    }
    showProblems(data.problems);
    showChoices($("queue-choices"), "queue", data.queue_results, (result) => `The queue wait ends: ${result}`);
    const select = $("flow");
    const ids = data.flows.map((f) => f.id);
    if (ids.join("\n") !== [...select.options].map((o) => o.value).join("\n")) {
      const chosen = select.value;
      select.replaceChildren(
        ...data.flows.map((f) => new Option(f.title && f.title !== f.id ? `${f.id} — ${f.title}` : f.id, f.id)),
      );
      const wanted = new URLSearchParams(location.search).get("flow");
      select.value = [chosen, wanted, "main", ids[0]].find((id) => id && ids.includes(id)) || "";
    }
    versions = Object.fromEntries(data.flows.map((f) => [f.id, f.version]));
    languages = Object.fromEntries(data.flows.map((f) => [f.id, f.languages || []]));
    showLanguages();
    if (!data.flows.length) showMessage("No flows are loaded: add YAML files to the flows directory.");
    showGraph(call ? call.flow || select.value : select.value);
  }

  // A flow in several languages: the caller chooses the one the call starts in (the flow's default first).
  function showLanguages() {
    const offered = languages[$("flow").value] || [];
    const select = $("language");
    if (offered.join("\n") !== [...select.options].map((o) => o.value).join("\n")) {
      select.replaceChildren(...offered.map((tag) => new Option(tag, tag)));
    }
    $("language-choice").hidden = offered.length < 2;
  }

  function showProblems(problems) {
    const list = $("problem-list");
    const text = (problems || []).join("\n");
    if (list.dataset.text === text) return;
    list.dataset.text = text;
    list.replaceChildren(...(problems || []).map((p) => el("li", null, p)));
    $("problems").hidden = !text;
  }

  // The dial outcomes (of the dial the call waits on) and queue results are the server's vocabulary:
  // the page keeps no copy of them.
  function showChoices(box, action, values, said) {
    const text = (values || []).join("\n");
    if (box.dataset.values === text) return;
    box.dataset.values = text;
    box.replaceChildren(
      ...(values || []).map((value) => {
        const button = el("button", { type: "button", class: "btn ghost", [`data-${action}`]: value }, value);
        button.addEventListener("click", () => act(action, value, said(value)));
        return button;
      }),
    );
    render(); // new buttons take the page's busy state
  }

  // -- placing a call and acting ----------------------------------------------------------------

  async function startCall(event) {
    event.preventDefault();
    if (busy || (call && !call.ended)) return;
    const flow = $("flow").value;
    if (!flow) return;
    stopSound();
    clearKeys();
    hideMessage();
    call = null;
    visited = new Set();
    warningsShown = 0;
    $("transcript").replaceChildren();
    setBusy(true);
    try {
      const body = { flow, from: $("from").value, to: $("to").value };
      if (!$("language-choice").hidden) body.language = $("language").value;
      const data = await api("POST", "/calls", body);
      line("you", `You call ${flow}`);
      apply(data);
    } catch (err) {
      showMessage(err.message);
      render();
    } finally {
      setBusy(false);
    }
  }

  async function act(action, value, said) {
    if (busy || !call || call.ended) return;
    stopSound(); // a caller's key or word interrupts the prompt, as on a real call
    clearKeys();
    hideMessage();
    setBusy(true);
    try {
      const data = await api("POST", `/calls/${encodeURIComponent(call.id)}`, { action, value: String(value ?? "") });
      line("you", said);
      apply(data);
    } catch (err) {
      showMessage(err.message);
    } finally {
      setBusy(false);
    }
  }

  function apply(data) {
    call = data;
    // The answering party's leg of a screened dial runs before the caller hears what follows it.
    for (const text of data.whisper) line("whisper", `The answering party hears: ${text}`);
    for (const heard of data.heard) hear(heard);
    for (const w of data.warnings.slice(warningsShown)) line("pause", `warning ${w.code}: ${w.message}`);
    warningsShown = data.warnings.length;
    // The server knows the states that wait for nothing too: no URL of the call names them.
    visited = new Set((data.visited || []).map((v) => `${v.flow}/${v.state}`));
    if (data.flow && data.state) visited.add(`${data.flow}/${data.state}`);
    showChoices($("dial-choices"), "dial", data.dial_outcomes, (status) => `The dial ends: ${status}`);
    if (data.ended) line("end", endText(data));
    showProblems(data.problems);
    showEffects(data.effects);
    render();
    showGraph(data.flow || $("flow").value);
  }

  function endText(data) {
    let text = `Call ended: ${ENDINGS[data.end_reason] || data.end_reason}`;
    if (data.reject_reason) text += ` (${data.reject_reason})`;
    if (data.error) text += `. Error ${data.error.code}: ${data.error.message}`;
    return text;
  }

  // -- what the caller hears --------------------------------------------------------------------

  function hear(heard) {
    if (heard.kind === "say") {
      line("say", heard.loop > 1 ? `${heard.text} (×${heard.loop})` : heard.text);
      speak(heard);
    } else if (heard.kind === "play") {
      const item = line("play", "▶ plays ");
      item.append(el("a", { href: heard.text, target: "_blank", rel: "noopener" }, heard.text));
      audioQueue.push(heard.text);
      if ($("audio").paused) nextAudio();
    } else {
      line("pause", `(pause ${heard.text} s)`);
    }
  }

  function line(kind, text) {
    const list = $("transcript");
    const item = el("li", { class: kind }, text);
    list.append(item);
    list.scrollTop = list.scrollHeight;
    return item;
  }

  function speak(heard) {
    if (!$("speak").checked || !("speechSynthesis" in window)) return;
    const voices = speechSynthesis.getVoices();
    if (!voices.length) return;
    const utterance = new SpeechSynthesisUtterance(heard.text);
    const language = heard.language || "en-US";
    utterance.lang = language;
    const voice = voices.find((v) => v.lang === language) || voices.find((v) => v.lang.startsWith(language.slice(0, 2)));
    if (voice) utterance.voice = voice;
    for (let i = 0; i < Math.min(heard.loop || 1, 3); i++) speechSynthesis.speak(utterance);
  }

  function nextAudio() {
    const audio = $("audio");
    const url = audioQueue.shift();
    if (!url) return;
    audio.hidden = false;
    audio.src = url;
    audio.play().catch(() => nextAudio());
  }

  function stopSound() {
    if ("speechSynthesis" in window) speechSynthesis.cancel();
    audioQueue.length = 0;
    $("audio").pause();
  }

  function checkVoices() {
    const toggle = $("speak");
    const none = !("speechSynthesis" in window) || !speechSynthesis.getVoices().length;
    toggle.disabled = none;
    toggle.parentElement.title = none
      ? "This browser has no speech voices: prompts are shown, not spoken"
      : "Speak Say prompts with the browser's voices";
    toggle.parentElement.classList.toggle("muted", none);
  }

  // -- the caller's controls --------------------------------------------------------------------

  function live() {
    return call !== null && !call.ended;
  }

  function render() {
    const status = $("status");
    const text = $("status-text");
    status.classList.toggle("live", live());
    status.classList.toggle("ended", Boolean(call && call.ended));
    if (!call) {
      text.textContent = "Pick a flow and call.";
    } else {
      // Inside a subflow: the calling states first, outermost first (accounts/verify_pin » pin › ask).
      const stack = (call.stack || []).map((frame) => `${frame.flow}/${frame.state} » `).join("");
      const where = el("code", null, `${stack}${call.flow || "?"} › ${call.state || "(start)"}`);
      const what = call.ended ? "Call ended at " : "";
      const after = call.ended ? "" : ` ${WAITING[call.waiting_for] || "is busy"}`;
      text.replaceChildren(what, where, after);
    }
    const waiting = live() ? call.waiting_for : null;
    for (const box of document.querySelectorAll(".controls")) box.hidden = box.dataset.for !== waiting;
    for (const button of document.querySelectorAll(".controls button, .controls input")) button.disabled = busy;
    const canPress = (waiting === "gather" || waiting === "agent") && !busy;
    for (const button of $("keypad").querySelectorAll("button")) button.disabled = !canPress;
    $("send-keys").disabled = !canPress || !keys;
    $("keypad-note").hidden = waiting !== "gather" && waiting !== "agent";
    $("hangup").disabled = !live() || busy;
    $("call").disabled = live() || busy;
    $("flow").disabled = live();
  }

  function setBusy(value) {
    busy = value;
    document.body.classList.toggle("busy", value);
    render();
  }

  function pressKey(key) {
    if (!live() || (call.waiting_for !== "gather" && call.waiting_for !== "agent") || busy) return;
    stopSound();
    keys += key;
    $("keys").textContent = keys;
    clearTimeout(keyTimer);
    if (key === "#") sendKeys();
    else keyTimer = setTimeout(sendKeys, KEY_PAUSE);
    render();
  }

  function sendKeys() {
    clearTimeout(keyTimer);
    if (!keys) return;
    const pressed = keys;
    act("press", pressed, `You press ${pressed}`);
  }

  function clearKeys() {
    clearTimeout(keyTimer);
    keys = "";
    $("keys").textContent = "";
  }

  function buildControls() {
    $("keypad").replaceChildren(
      ...KEYPAD.map(([key, letters]) => {
        const button = el("button", { type: "button", "data-key": key, "aria-label": `key ${key}` }, key);
        button.append(el("small", null, letters));
        button.addEventListener("click", () => pressKey(key));
        return button;
      }),
    );
    $("dial-form").addEventListener("submit", startCall);
    $("hangup").addEventListener("click", () => act("hangup", "", "You hang up"));
    $("send-keys").addEventListener("click", sendKeys);
    // A menu's speech and an agent's conversation: each form says what is typed in its field.
    for (const [form, field] of [["say-form", "phrase"], ["agent-form", "agent-phrase"]]) {
      $(form).addEventListener("submit", (event) => {
        event.preventDefault();
        const phrase = $(field).value.trim();
        if (!phrase) return;
        $(field).value = "";
        act("say", phrase, `You say “${phrase}”`);
      });
    }
    $("silent").addEventListener("click", () => act("wait", "", "You stay silent"));
    $("record").addEventListener("click", () => {
      const seconds = $("seconds").value.trim();
      act("record", seconds, `You speak for ${seconds} s, then press #`);
    });
    $("record-nothing").addEventListener("click", () => act("record_nothing", "", "You leave nothing"));
    $("pay-form").addEventListener("submit", (event) => {
      // The card's details go to the built-in phone, which plays Twilio's part; they are never shown or kept here.
      event.preventDefault();
      const fields = ["pay-card", "pay-expiry", "pay-code", "pay-zip"].map((id) => $(id));
      const value = fields.map((field) => field.value.replace(/[\s/]/g, "")).join("/");
      for (const field of fields) field.value = "";
      act("pay", value, "You key your payment details");
    });
    $("accept").addEventListener("click", () => {
      const key = $("screen-key").value.trim() || "1";
      act("accept", key, `The answering party picks up and presses ${key}`);
    });
    $("flow").addEventListener("change", () => {
      showLanguages();
      showGraph($("flow").value);
    });
    $("audio").addEventListener("ended", nextAudio);
    document.addEventListener("keydown", (event) => {
      if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
      if (/^[0-9*#]$/.test(event.key)) {
        event.preventDefault();
        pressKey(event.key);
      } else if (event.key === "Enter" && keys) {
        event.preventDefault();
        sendKeys();
      }
    });
  }

  // -- messages and effects ---------------------------------------------------------------------

  function showMessage(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = false;
  }

  function hideMessage() {
    $("message").hidden = true;
  }

  function showEffects(effects) {
    const list = $("effects");
    if (!effects.length) {
      list.replaceChildren(el("li", { class: "muted" }, "None yet."));
      return;
    }
    list.replaceChildren(
      ...effects.map((effect) => {
        const { kind, name, outcome, vars, error, seconds, ...rest } = effect;
        const item = el("li", null, `${kind || "effect"} `);
        if (name) item.append(el("span", { class: "name" }, name));
        if (kind === "hook") item.append(` → ${outcome || "no outcome"}`);
        if (typeof seconds === "number") item.append(el("span", { class: "muted" }, ` · ${Math.round(seconds * 1000)} ms`));
        if (error) item.append(el("div", { class: "failed" }, `failed: ${error}`));
        if (vars && Object.keys(vars).length) item.append(el("div", { class: "vars" }, `vars ${JSON.stringify(vars)}`));
        if (Object.keys(rest).length) item.append(el("div", { class: "vars" }, JSON.stringify(rest)));
        return item;
      }),
    );
  }

  // -- the flow's graph -------------------------------------------------------------------------

  async function showGraph(flow) {
    if (!flow) return;
    const key = `${flow}@${versions[flow] || ""}`;
    if (drawn !== key) {
      drawn = key;
      $("graph-title").textContent = flow;
      try {
        graphs[key] = graphs[key] || (await api("GET", `/flows/${encodeURIComponent(flow)}/graph`));
        if (drawn === key) drawGraph(graphs[key]);
      } catch (err) {
        if (drawn === key) $("graph").replaceChildren(el("p", { class: "muted" }, `No graph: ${err.message}`));
      }
    }
    highlight(flow);
  }

  function highlight(flow) {
    const box = $("graph");
    for (const node of box.querySelectorAll(".node")) {
      const id = node.dataset.id;
      const here = call !== null && call.flow === flow && call.state === id;
      node.classList.toggle("current", here);
      node.classList.toggle("visited", visited.has(`${flow}/${id}`));
      if (here) reveal(box, node);
    }
  }

  function reveal(box, node) {
    if (box.scrollHeight <= box.clientHeight && box.scrollWidth <= box.clientWidth) return;
    const outer = box.getBoundingClientRect();
    const inner = node.getBoundingClientRect();
    if (inner.top < outer.top || inner.bottom > outer.bottom) box.scrollTop += inner.top - outer.top - outer.height / 3;
    if (inner.left < outer.left || inner.right > outer.right) box.scrollLeft += inner.left - outer.left - outer.width / 3;
  }

  // A layered drawing: layers by the longest path from the start (back edges set aside), long edges
  // bent through one point per layer, order by barycentres, then each node pulled towards its neighbours.
  const NODE_H = 30;
  const ROW = 74; // from one layer to the next
  const GAP = 40; // between neighbours in a layer
  const LABEL_CHARS = 20;
  const NODE_FONT = getComputedStyle(document.body).getPropertyValue("--graph-font").trim() || "12px sans-serif";
  let measure = null;

  function textWidth(text, font) {
    measure = measure || document.createElement("canvas").getContext("2d");
    measure.font = font;
    return measure.measureText(text).width;
  }

  function layout(data) {
    const nodes = new Map();
    for (const n of data.nodes) {
      const w = Math.max(84, Math.ceil(textWidth(n.label, NODE_FONT)) + 24);
      nodes.set(n.id, { id: n.id, label: n.label, kind: n.kind, w, layer: 0, x: 0, dummy: false });
    }
    const edges = data.edges.filter((e) => nodes.has(e.source) && nodes.has(e.target));
    const out = new Map([...nodes.keys()].map((id) => [id, []]));
    for (const e of edges) if (e.source !== e.target) out.get(e.source).push(e.target);

    // Depth-first from the start: back edges, and a topological order of the rest.
    const mark = new Map();
    const back = new Set();
    const finished = [];
    const visit = (root) => {
      const stack = [[root, 0]];
      mark.set(root, 1);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const next = out.get(top[0])[top[1]++];
        if (next === undefined) {
          mark.set(top[0], 2);
          finished.push(top[0]);
          stack.pop();
        } else if (mark.get(next) === 1) {
          back.add(`${top[0]}\n${next}`);
        } else if (!mark.has(next)) {
          mark.set(next, 1);
          stack.push([next, 0]);
        }
      }
    };
    if (nodes.has(data.start)) visit(data.start);
    const reached = new Set(mark.keys());
    for (const id of nodes.keys()) if (!mark.has(id)) visit(id);
    const order = finished.reverse();
    for (const id of order) {
      for (const t of out.get(id)) {
        if (!back.has(`${id}\n${t}`) && reached.has(id) === reached.has(t)) {
          nodes.get(t).layer = Math.max(nodes.get(t).layer, nodes.get(id).layer + 1);
        }
      }
    }
    // What the start does not reach (the error state) goes below everything else.
    const deepest = Math.max(0, ...[...reached].map((id) => nodes.get(id).layer));
    for (const id of nodes.keys()) if (!reached.has(id)) nodes.get(id).layer += deepest + 1;

    const layerCount = Math.max(0, ...[...nodes.values()].map((n) => n.layer)) + 1;
    const layers = Array.from({ length: layerCount }, () => []);
    for (const n of nodes.values()) layers[n.layer].push(n);

    // Long forward edges pass through a point in each layer between.
    const routes = [];
    const links = []; // [upper, lower] pairs between adjacent layers, for ordering
    for (const e of edges) {
      const s = nodes.get(e.source);
      const t = nodes.get(e.target);
      if (e.source === e.target) {
        routes.push({ edge: e, kind: "self", s, t });
      } else if (t.layer > s.layer) {
        const chain = [s];
        for (let layer = s.layer + 1; layer < t.layer; layer++) {
          const dummy = { id: `${e.source}>${e.target}#${layer}`, w: 14, layer, x: 0, dummy: true };
          layers[layer].push(dummy);
          chain.push(dummy);
        }
        chain.push(t);
        for (let i = 1; i < chain.length; i++) links.push([chain[i - 1], chain[i]]);
        routes.push({ edge: e, kind: "down", chain, s, t });
      } else {
        routes.push({ edge: e, kind: "back", s, t });
      }
    }
    const up = new Map();
    const down = new Map();
    for (const [a, b] of links) {
      if (!down.has(a)) down.set(a, []);
      if (!up.has(b)) up.set(b, []);
      down.get(a).push(b);
      up.get(b).push(a);
    }

    // Order within layers by the mean position of neighbours, sweeping down and up.
    const position = new Map();
    const number = (layer) => layer.forEach((n, i) => position.set(n, i));
    layers.forEach(number);
    const sortBy = (layer, neighbours) => {
      const key = new Map(
        layer.map((n) => {
          const near = neighbours.get(n) || [];
          return [n, near.length ? near.reduce((sum, m) => sum + position.get(m), 0) / near.length : position.get(n)];
        }),
      );
      layer.sort((a, b) => key.get(a) - key.get(b));
      number(layer);
    };
    for (let pass = 0; pass < 6; pass++) {
      if (pass % 2 === 0) for (let i = 1; i < layers.length; i++) sortBy(layers[i], up);
      else for (let i = layers.length - 2; i >= 0; i--) sortBy(layers[i], down);
    }

    // Coordinates: in order, apart by GAP, each pulled towards the mean x of its neighbours.
    const apart = (a, b) => (a.w + b.w) / 2 + (a.dummy && b.dummy ? 8 : GAP);
    for (const layer of layers) {
      let x = 0;
      layer.forEach((n, i) => {
        x += i ? apart(layer[i - 1], n) : 0;
        n.x = x;
      });
      const shift = x / 2;
      for (const n of layer) n.x -= shift;
    }
    const settle = (layer, neighbours) => {
      const wanted = layer.map((n) => {
        const near = neighbours.get(n) || [];
        return near.length ? near.reduce((sum, m) => sum + m.x, 0) / near.length : n.x;
      });
      const left = [];
      const right = [];
      layer.forEach((n, i) => (left[i] = i ? Math.max(wanted[i], left[i - 1] + apart(layer[i - 1], n)) : wanted[i]));
      for (let i = layer.length - 1; i >= 0; i--) {
        right[i] = i < layer.length - 1 ? Math.min(wanted[i], right[i + 1] - apart(layer[i], layer[i + 1])) : wanted[i];
      }
      layer.forEach((n, i) => (n.x = (left[i] + right[i]) / 2));
    };
    for (let pass = 0; pass < 8; pass++) {
      if (pass % 2 === 0) for (let i = 1; i < layers.length; i++) settle(layers[i], up);
      else for (let i = layers.length - 2; i >= 0; i--) settle(layers[i], down);
    }
    for (const layer of layers) for (const n of layer) n.y = n.layer * ROW;
    return { nodes: [...nodes.values()], routes };
  }

  function drawGraph(data) {
    const { nodes, routes } = layout(data);
    const svg = svgEl("svg", { role: "img", "aria-label": `the states of flow ${data.flow}` });
    const defs = svgEl("defs");
    const marker = svgEl("marker", {
      id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
    });
    marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }));
    defs.append(marker);
    const edgeLayer = svgEl("g");
    const labelLayer = svgEl("g");
    const nodeLayer = svgEl("g");
    svg.append(defs, edgeLayer, nodeLayer, labelLayer);
    const box = $("graph");
    box.replaceChildren(svg); // in the document, so that paths can be measured

    const half = NODE_H / 2;
    const taken = nodes.filter((n) => !n.dummy).map((n) => rectOf(n.x, n.y, n.w + 6, NODE_H + 6));
    for (const route of routes) {
      const { s, t } = route;
      let d;
      if (route.kind === "self") {
        const x = s.x + s.w / 2;
        d = `M${x},${s.y - 7} C${x + 34},${s.y - 26} ${x + 34},${s.y + 26} ${x},${s.y + 7}`;
      } else if (route.kind === "back") {
        const bend = Math.max(s.x + s.w / 2, t.x + t.w / 2) + 30 + 14 * Math.max(1, s.layer - t.layer);
        d = `M${s.x + s.w / 2},${s.y} C${bend},${s.y} ${bend},${t.y} ${t.x + t.w / 2},${t.y}`;
      } else {
        const points = route.chain.map((n, i) => {
          if (i === 0) return [n.x, n.y + half];
          if (i === route.chain.length - 1) return [n.x, n.y - half];
          return [n.x, n.y];
        });
        // A Catmull-Rom curve through the points, leaving and entering vertically.
        const first = points[0];
        const last = points[points.length - 1];
        const all = [[first[0], first[1] - ROW / 2], ...points, [last[0], last[1] + ROW / 2]];
        d = `M${first[0]},${first[1]}`;
        for (let i = 1; i < all.length - 2; i++) {
          const [p0, p1, p2, p3] = [all[i - 1], all[i], all[i + 1], all[i + 2]];
          const c1 = [p1[0] + (p2[0] - p0[0]) / 6, p1[1] + (p2[1] - p0[1]) / 6];
          const c2 = [p2[0] - (p3[0] - p1[0]) / 6, p2[1] - (p3[1] - p1[1]) / 6];
          d += ` C${c1[0]},${c1[1]} ${c2[0]},${c2[1]} ${p2[0]},${p2[1]}`;
        }
      }
      const g = svgEl("g", { class: `edge ${route.kind}`, "data-source": s.id, "data-target": t.id });
      const path = svgEl("path", { d, "marker-end": "url(#arrow)" });
      g.append(path);
      edgeLayer.append(g);
      route.path = path;
    }
    for (const n of nodes) {
      if (n.dummy) continue;
      const g = svgEl("g", { class: `node k-${n.kind}`, "data-id": n.id, transform: `translate(${n.x},${n.y})` });
      g.append(
        svgEl("title", null, `${n.id} (${n.kind})`),
        svgEl("rect", { x: -n.w / 2, y: -half, width: n.w, height: NODE_H, rx: n.kind === "menu" ? 15 : 6 }),
        svgEl("text", { x: 0, y: 0 }, n.label),
      );
      nodeLayer.append(g);
    }
    // Labels where they hide no node and no other label: the first free point along the edge.
    for (const route of routes) {
      const full = route.edge.label;
      if (!full) continue;
      const text = full.length > LABEL_CHARS ? `${full.slice(0, LABEL_CHARS - 1)}…` : full;
      const g = svgEl("g", { class: "edge label", "data-source": route.s.id, "data-target": route.t.id });
      const caption = svgEl("text", { x: 0, y: 0 }, text);
      g.append(caption);
      labelLayer.append(g);
      const w = caption.getComputedTextLength() + 8; // as drawn, in the page's own font
      const h = 15;
      const length = route.path.getTotalLength();
      // On a long edge, near its source first: that is where one looks for a menu's choices.
      const span = route.kind === "down" ? route.chain.length - 1 : 1;
      const along = [0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8, 0.12, 0.88];
      const tries = route.kind === "self" ? [0.5] : [...along.map((f) => f / span), ...(span > 1 ? along : [])];
      // The first free spot along the edge, then beside it; in a crowd, the least covered one.
      let spot = null;
      search: for (const shift of [0, -(h + 2), h + 2]) {
        for (const fraction of tries) {
          const p = route.path.getPointAtLength(length * fraction);
          const x = route.kind === "self" ? p.x + w / 2 + 4 : p.x;
          const y = p.y + shift;
          const rect = rectOf(x, y, w + 10, h + 4); // with a margin: labels side by side must not touch
          const covered = taken.reduce((sum, r) => sum + overlap(r, rect), 0);
          if (!spot || covered < spot.covered) spot = { x, y, rect, covered };
          if (covered === 0) break search;
        }
      }
      taken.push(spot.rect);
      caption.setAttribute("x", spot.x);
      caption.setAttribute("y", spot.y);
      g.prepend(
        svgEl("title", null, `${route.s.id} → ${route.t.id}: ${full}`),
        svgEl("rect", { x: spot.x - w / 2, y: spot.y - h / 2, width: w, height: h, rx: 3 }),
      );
    }
    const bounds = svg.getBBox();
    const pad = 10;
    const width = Math.ceil(bounds.width + 2 * pad);
    const height = Math.ceil(bounds.height + 2 * pad);
    svg.setAttribute("viewBox", `${Math.floor(bounds.x - pad)} ${Math.floor(bounds.y - pad)} ${width} ${height}`);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
  }

  function rectOf(x, y, w, h) {
    return { left: x - w / 2, right: x + w / 2, top: y - h / 2, bottom: y + h / 2 };
  }

  function overlap(a, b) {
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    return w > 0 && h > 0 ? w * h : 0;
  }

  // -- small DOM helpers ------------------------------------------------------------------------

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // -- start ------------------------------------------------------------------------------------

  buildControls();
  render();
  checkVoices();
  if ("speechSynthesis" in window) speechSynthesis.addEventListener("voiceschanged", checkVoices);
  loadFlows(true);
  setInterval(() => loadFlows(false), 5000); // a flow edit that failed to load shows up in the banner
})();
