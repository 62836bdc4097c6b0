// The reports page of one flow: fetches data.json for the window and draws it. Every figure shown
// carries data-figure="<its path in the report>" (and data-value="<its JSON>" where the text is
// formatted), so a test can hold the page to the report. No library, nothing from elsewhere.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const OUTCOMES = ["contained", "transferred", "voicemail", "failed", "abandoned", "in_progress"];
  const STATE_COLUMNS = [
    "entered", "calls", "no_input", "no_match", "max_reached", "hung_up_here", "transferred", "errors", "texts",
  ];
  const SPREADS = [["seconds", "s"], ["hook_ms", "ms"]];
  const MEASURES = ["rate_a", "rate_b", "difference", "low", "high", "p_value", "significant", "verdict"];

  const body = document.body;
  const flow = body.dataset.flow;
  const form = document.getElementById("window");
  const statusLine = document.getElementById("status");
  let loads = 0;

  // -- building elements ------------------------------------------------------------------------

  function fill(node, attrs, children) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const el = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) => fill(document.createElementNS(SVG, tag), attrs, children);

  const shown = (value) => (value === null || value === undefined ? "-" : String(value));
  const percent = (part, whole) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : "-");
  const label = (name) => name.replace(/_/g, " ");

  // A figure as the report has it: its text is the value itself.
  const figure = (tag, path, value, attrs = {}) => el(tag, { ...attrs, "data-figure": path }, shown(value));
  // A figure shown formatted: data-value keeps the exact value.
  const formatted = (tag, path, value, text, attrs = {}) =>
    el(tag, { ...attrs, "data-figure": path, "data-value": JSON.stringify(value) }, text);

  function replace(id, ...children) {
    const node = document.getElementById(id);
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  // -- fetching ---------------------------------------------------------------------------------

  function windowQuery() {
    const params = new URLSearchParams();
    for (const name of ["since", "until", "source"]) {
      const value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    }
    return params.toString();
  }

  const withQuery = (path, query) => (query ? `${path}?${query}` : path);
  const flowPath = (rest) => `${encodeURIComponent(flow)}/${rest}`;

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const text = await response.text();
    let data = null;
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = null;
    }
    if (!response.ok) throw new Error((data && data.error) || text.trim() || `${response.status} ${response.statusText}`);
    return data;
  }

  function status(text, failed = false) {
    statusLine.textContent = text;
    statusLine.hidden = !text;
    statusLine.classList.toggle("failed", failed);
  }

  async function load() {
    body.removeAttribute("data-loaded");
    status("Loading the figures…");
    const query = windowQuery();
    try {
      const report = await getJson(withQuery(flowPath("data.json"), query));
      render(report, query);
      status("");
      body.dataset.loaded = String(++loads);
    } catch (error) {
      status(error.message, true);
    }
  }

  function render(report, query) {
    summary(report);
    graph(query);
    waterfall(report, query);
    perHour(report.calls_per_hour);
    perDay(report.outcomes_per_day);
    splits(report.splits);
    document.getElementById("drill").hidden = true;
  }

  // -- the figures ------------------------------------------------------------------------------

  function summary(report) {
    const items = [
      ["flow", figure("span", "flow", report.flow)],
      ["source", figure("span", "source", report.source)],
      ["since", figure("span", "since", report.since)],
      ["until", figure("span", "until", report.until)],
      ["calls", figure("strong", "calls", report.calls)],
    ];
    for (const outcome of OUTCOMES) {
      items.push([label(outcome), el("span", {}, figure("strong", outcome, report[outcome]), " ",
        el("span", { class: "muted" }, percent(report[outcome], report.calls)))]);
    }
    items.push(["time in the IVR, median (s)", figure("strong", "time_in_ivr.median", report.time_in_ivr.median)]);
    items.push(["time in the IVR, p90 (s)", figure("strong", "time_in_ivr.p90", report.time_in_ivr.p90)]);
    items.push(["callers", figure("strong", "callers", report.callers)]);
    items.push(["callers again within 24 h", figure("strong", "callers_again_24h", report.callers_again_24h)]);
    replace("summary", ...items.map(([name, value]) => el("div", { class: `item o-${name.replace(/ /g, "_")}` },
      el("span", { class: "name" }, name), value)));
  }

  async function graph(query) {
    const image = document.getElementById("graph");
    const message = document.getElementById("graph-message");
    image.hidden = true;
    message.hidden = true;
    try {
      const response = await fetch(withQuery(flowPath("graph.svg"), query), { credentials: "same-origin" });
      if (!response.ok) throw new Error((await response.text()).trim() || response.statusText);
      if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
      image.src = URL.createObjectURL(await response.blob());
      image.hidden = false;
    } catch (error) {
      message.textContent = `No graph: ${error.message}`;
      message.hidden = false;
    }
  }

  function waterfall(report, query) {
    const head = el("tr", {}, el("th", {}, "state"), el("th", { class: "bar-cell" }, "reached"),
      ...STATE_COLUMNS.map((c) => el("th", { class: "num" }, label(c))),
      el("th", { class: "num" }, "seconds median"), el("th", { class: "num" }, "p90"),
      el("th", { class: "num" }, "hook ms median"), el("th", { class: "num" }, "p90"), el("th", {}, "routes"));
    const rows = Object.entries(report.states).map(([name, figures]) => {
      const path = `states.${name}`;
      const link = el("button", { type: "button", class: "link state-link", "data-state": name }, name);
      link.addEventListener("click", () => drillState(name, query));
      const routes = Object.entries(figures.routes)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .map(([route, n]) => el("span", { class: "route" }, `${route}: `, figure("b", `${path}.routes.${route}`, n)));
      return el("tr", { "data-state": name, class: figures.entered ? "" : "untouched" },
        el("th", { scope: "row" }, link),
        el("td", { class: "bar-cell" }, reached(figures.calls, report.calls)),
        ...STATE_COLUMNS.map((c) => figure("td", `${path}.${c}`, figures[c], { class: "num" })),
        ...SPREADS.flatMap(([spread]) => ["median", "p90"].map((k) =>
          figure("td", `${path}.${spread}.${k}`, figures[spread][k], { class: "num" }))),
        el("td", { class: "routes" }, ...routes));
    });
    replace("waterfall", el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function reached(calls, total) {
    const width = total ? Math.min(100, (100 * calls) / total) : 0;
    return svg("svg", { width: 100, height: 10, viewBox: "0 0 100 10", class: "reached" },
      svg("rect", { x: 0, y: 0, width: 100, height: 10, class: "track" }),
      svg("rect", { x: 0, y: 0, width: width.toFixed(2), height: 10, class: "fill" },
        svg("title", {}, `${calls} of ${total} calls (${percent(calls, total)})`)));
  }

  // -- the charts -------------------------------------------------------------------------------

  const HEIGHT = 170;
  const TOP = 18;
  const BOTTOM = 34;
  const LEFT = 10;

  function perHour(rows) {
    if (!rows.length) return replace("per-hour", el("p", { class: "muted" }, "No calls in the window."));
    const step = 22;
    const width = Math.max(320, LEFT * 2 + rows.length * step);
    const most = Math.max(...rows.map((r) => r.calls), 1);
    const chart = svg("svg", { width, height: HEIGHT, class: "bars", role: "img", "aria-label": "calls per hour" });
    let day = null;
    rows.forEach((row, i) => {
      const h = ((HEIGHT - TOP - BOTTOM) * row.calls) / most;
      const x = LEFT + i * step;
      const y = HEIGHT - BOTTOM - h;
      chart.append(svg("rect", { x, y, width: step - 4, height: h, class: "bar" }, svg("title", {}, `${row.hour}: ${row.calls} calls`)));
      chart.append(svg("text", { x: x + (step - 4) / 2, y: y - 4, class: "count", "data-figure": `calls_per_hour.${i}.calls` }, String(row.calls)));
      chart.append(svg("text", { x: x + (step - 4) / 2, y: HEIGHT - BOTTOM + 13, class: "axis" }, row.hour.slice(11, 13)));
      if (row.hour.slice(0, 10) !== day) {
        day = row.hour.slice(0, 10);
        chart.append(svg("text", { x, y: HEIGHT - 4, class: "axis day" }, day));
      }
    });
    const table = el("table", { class: "figures compact" },
      el("thead", {}, el("tr", {}, el("th", {}, "hour (UTC)"), el("th", { class: "num" }, "calls"))),
      el("tbody", {}, ...rows.map((row, i) => el("tr", {},
        figure("td", `calls_per_hour.${i}.hour`, row.hour), figure("td", `calls_per_hour.${i}.calls`, row.calls, { class: "num" })))));
    replace("per-hour", el("div", { class: "scroll" }, chart),
      el("details", {}, el("summary", {}, "Every hour's figure"), table));
  }

  function perDay(rows) {
    if (!rows.length) return replace("per-day", el("p", { class: "muted" }, "No calls in the window."));
    const step = 56;
    const width = Math.max(320, LEFT * 2 + rows.length * step);
    const most = Math.max(...rows.map((r) => OUTCOMES.reduce((sum, o) => sum + r[o], 0)), 1);
    const chart = svg("svg", { width, height: HEIGHT, class: "bars", role: "img", "aria-label": "outcomes per day" });
    rows.forEach((row, i) => {
      const x = LEFT + i * step;
      let y = HEIGHT - BOTTOM;
      for (const outcome of OUTCOMES) {
        if (!row[outcome]) continue;
        const h = ((HEIGHT - TOP - BOTTOM) * row[outcome]) / most;
        y -= h;
        chart.append(svg("rect", { x, y, width: step - 12, height: h, class: `segment o-${outcome}` },
          svg("title", {}, `${row.day} ${label(outcome)}: ${row[outcome]}`)));
      }
      chart.append(svg("text", { x: x + (step - 12) / 2, y: HEIGHT - BOTTOM + 13, class: "axis",
        "data-figure": `outcomes_per_day.${i}.day`, "data-value": JSON.stringify(row.day) }, row.day.slice(5)));
    });
    const legend = el("ul", { class: "legend" }, ...OUTCOMES.map((o) =>
      el("li", {}, svg("svg", { width: 10, height: 10 }, svg("rect", { width: 10, height: 10, class: `o-${o}` })), ` ${label(o)}`)));
    const table = el("table", { class: "figures compact" },
      el("thead", {}, el("tr", {}, el("th", {}, "day (UTC)"), ...OUTCOMES.map((o) => el("th", { class: "num" }, label(o))))),
      el("tbody", {}, ...rows.map((row, i) => el("tr", {}, figure("td", `outcomes_per_day.${i}.day`, row.day),
        ...OUTCOMES.map((o) => figure("td", `outcomes_per_day.${i}.${o}`, row[o], { class: "num" }))))));
    replace("per-day", el("div", { class: "scroll" }, chart), legend, table);
  }

  function splits(found) {
    const names = Object.keys(found || {});
    document.getElementById("splits-card").hidden = !names.length;
    replace("splits", ...names.map((state) => {
      const split = found[state];
      const path = `splits.${state}`;
      const variants = el("table", { class: "figures compact" },
        el("thead", {}, el("tr", {}, el("th", {}, "variant"), ...["calls", "contained", "abandoned", "ended"].map((k) => el("th", { class: "num" }, k)))),
        el("tbody", {}, ...Object.entries(split.variants).map(([name, figures]) => el("tr", {}, el("th", { scope: "row" }, name),
          ...["calls", "contained", "abandoned", "ended"].map((k) => figure("td", `${path}.variants.${name}.${k}`, figures[k], { class: "num" }))))));
      const comparisons = split.comparisons.map((c, i) => {
        const at = `${path}.comparisons.${i}`;
        const measures = ["containment", "abandonment"].map((measure) => el("tr", {},
          el("th", { scope: "row" }, measure),
          ...MEASURES.map((k) => comparisonCell(`${at}.${measure}.${k}`, k, c[measure][k]))));
        return el("div", { class: "comparison" },
          el("h4", {}, figure("span", `${at}.variant`, c.variant), " against ", figure("span", `${at}.control`, c.control)),
          el("table", { class: "figures compact" },
            el("thead", {}, el("tr", {}, el("th", {}), ...MEASURES.map((k) => el("th", {}, label(k))))),
            el("tbody", {}, ...measures)));
      });
      return el("div", { class: "split" }, el("h4", {}, `split ${state}`), variants, ...comparisons);
    }));
  }

  function comparisonCell(path, key, value) {
    if (key === "verdict") return figure("td", path, value, { class: `verdict${value === "not yet significant" ? "" : " decided"}` });
    if (key === "significant") return formatted("td", path, value, value ? "yes" : "no");
    if (key === "p_value") return formatted("td", path, value, value === null ? "-" : value.toFixed(3), { class: "num" });
    return formatted("td", path, value, value === null ? "-" : `${(100 * value).toFixed(1)}%`, { class: "num" });
  }

  // -- the drill-down ---------------------------------------------------------------------------

  async function drillState(state, query) {
    const drill = document.getElementById("drill");
    drill.hidden = false;
    replace("call-steps");
    replace("state-calls", el("p", { class: "muted" }, `Loading the calls that reached ${state}…`));
    try {
      const found = await getJson(withQuery(flowPath(`states/${encodeURIComponent(state)}/calls.json`), query));
      const rows = found.calls.map((c) => {
        const link = el("button", { type: "button", class: "link call-link", "data-sid": c.call_sid }, c.call_sid);
        link.addEventListener("click", () => drillCall(c.call_sid));
        return el("tr", { "data-sid": c.call_sid }, el("td", {}, shown(c.started)), el("td", {}, link),
          el("td", {}, c.caller || "withheld"), el("td", { class: "num" }, c.duration === null ? "-" : `${c.duration.toFixed(0)} s`),
          el("td", {}, c.outcome), el("td", {}, shown(c.last_state)));
      });
      replace("state-calls", el("h3", {}, `Calls that reached ${state}`, el("span", { class: "muted" }, " newest first")),
        rows.length ? el("table", { class: "figures compact", id: "state-calls-table" },
          el("thead", {}, el("tr", {}, ...["started", "call", "caller", "duration", "outcome", "last state"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows)) : el("p", { class: "muted" }, `No call reached ${state} in the window.`));
    } catch (error) {
      replace("state-calls", el("p", { class: "failed" }, error.message));
    }
  }

  async function drillCall(sid) {
    replace("call-steps", el("p", { class: "muted" }, `Loading call ${sid}…`));
    try {
      const found = await getJson(`calls/${encodeURIComponent(sid)}.json`);
      const start = found.steps.length ? Date.parse(found.steps[0].at) : 0;
      const c = found.call;
      const rows = found.steps.map((s) => el("tr", { "data-kind": s.kind, "data-state": s.state || "" },
        el("td", {}, s.at.slice(11, 19)), el("td", { class: "num" }, `+${((Date.parse(s.at) - start) / 1000).toFixed(1)} s`),
        el("td", {}, s.state || "(call)"), el("td", {}, s.kind), el("td", {}, shown(s.detail)), el("td", {}, shown(s.input)),
        el("td", { class: "num" }, shown(s.confidence)), el("td", { class: "num" }, shown(s.seconds)),
        el("td", { class: "num" }, shown(s.latency_ms))));
      replace("call-steps", el("h3", { id: "call-title" }, `Call ${sid}`),
        c ? el("p", { class: "muted" }, `${c.source}, caller ${c.caller || "withheld"}, ${c.outcome}, started ${shown(c.started)}`) : null,
        el("table", { class: "figures compact", id: "steps" },
          el("thead", {}, el("tr", {}, ...["time", "", "state", "what", "detail", "input", "confidence", "after s", "ms"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows)));
    } catch (error) {
      replace("call-steps", el("p", { class: "failed" }, error.message));
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = windowQuery();
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
    load();
  });
  load();
})();
