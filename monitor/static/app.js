// callcycle supervisor console. Plain JS, no external code: the token typed in is kept in
// sessionStorage; the live view comes from /monitor/ws (snapshot, then deltas).
"use strict";

const TOKEN_KEY = "callcycle.token";
const state = { token: null, me: null, ws: null, entities: {}, series: [], offset: 0, retry: 0,
                dirty: new Set(), stopped: false };
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function toast(text, bad) {
  const t = $("#toast");
  t.textContent = text; t.className = bad ? "bad" : ""; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

function setStatus(text, cls) { const s = $("#status"); s.textContent = text; s.className = "status " + cls; }
const now = () => Date.now() / 1000 + state.offset;
const pct = (v) => (v === null || v === undefined) ? "–" : (100 * v).toFixed(1) + "%";
const secs = (v) => { v = Math.max(0, Math.round(v)); return `${Math.floor(v / 60)}:${String(v % 60).padStart(2, "0")}`; };

// -- login -------------------------------------------------------------------------------
async function login(token) {
  const resp = await fetch("/monitor/me", { headers: { Authorization: "Bearer " + token } });
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    throw new Error(resp.status === 403 ? "this token's role may not use the console" : (body.error || resp.status));
  }
  state.token = token; state.me = await resp.json(); state.stopped = false;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#login").hidden = true; $("#board").hidden = false; $("#who").hidden = false;
  $("#who-name").textContent = state.me.subject; $("#who-role").textContent = state.me.role;
  document.body.classList.toggle("agent-view", !state.me.can_act);
  connect();
}

function logout() {
  state.stopped = true; sessionStorage.removeItem(TOKEN_KEY); state.token = null;
  if (state.ws) state.ws.close(1000, "logout");
  $("#board").hidden = true; $("#who").hidden = true; $("#login").hidden = false;
  setStatus("not connected", "off");
}

// -- the feed -----------------------------------------------------------------------------
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/monitor/ws?access_token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  setStatus("connecting…", "wait");
  ws.onmessage = (ev) => {  // one message, or an array of those that queued up together
    const data = JSON.parse(ev.data);
    for (const msg of Array.isArray(data) ? data : [data]) onMessage(msg);
  };
  ws.onclose = (ev) => {
    if (state.ws !== ws || state.stopped) return;
    const why = ev.code === 4008 ? "dropped: too slow" : `closed (${ev.code}${ev.reason ? " " + ev.reason : ""})`;
    const delay = Math.min(10000, 500 * 2 ** state.retry++);
    setStatus(`${why}; reconnecting in ${(delay / 1000).toFixed(1)} s`, "off");
    setTimeout(() => { if (!state.stopped) connect(); }, delay);
  };
}

function onMessage(msg) {
  if (msg.type === "snapshot") {
    state.retry = 0;
    state.entities = msg.entities; state.series = msg.series || [];
    state.offset = msg.server_time - Date.now() / 1000;
    state.instance = msg.instance;
    setStatus(`live · ${msg.instance}`, "on");
    for (const k of Object.keys(RENDER)) state.dirty.add(k);
    state.dirty.add("chart");
  } else if (msg.type === "delta") {
    const table = state.entities[msg.kind] || (state.entities[msg.kind] = {});
    if (msg.data === null) delete table[msg.id]; else table[msg.id] = msg.data;
    state.dirty.add(msg.kind);
    if (msg.kind === "call") state.dirty.add("agent");
  } else if (msg.type === "sample") {
    state.series.push(msg.point);
    const cutoff = msg.point.t - 3600;
    while (state.series.length && state.series[0].t < cutoff) state.series.shift();
    state.dirty.add("chart");
  }
  schedule();
}

function schedule() {
  if (schedule.pending) return;
  schedule.pending = true;
  requestAnimationFrame(() => {
    schedule.pending = false;
    for (const kind of state.dirty) (RENDER[kind] || (() => {}))();
    state.dirty.clear();
  });
}

// -- actions ------------------------------------------------------------------------------
async function act(path, body, label) {
  try {
    const resp = await fetch(path, { method: "POST", body: JSON.stringify(body || {}),
      headers: { Authorization: "Bearer " + state.token, "Content-Type": "application/json" } });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(`${data.error || resp.status}${data.detail ? ": " + data.detail : ""}`);
    toast(`${label}: done`);
  } catch (err) {
    toast(`${label} failed: ${err.message}`, true);
  }
}
const enc = encodeURIComponent;

function callButtons(c) {
  if (!state.me.can_act || c.direction === "spy") return "";
  const spy = (mode) => el("button", { type: "button", class: "spy-" + mode, "data-mode": mode,
    onclick: () => act(`/monitor/calls/${enc(c.id)}/spy`, { mode }, `${mode} ${c.id}`) }, mode);
  return el("span", {}, spy("listen"), " ", spy("whisper"), " ", spy("barge"), " ",
    el("button", { type: "button", class: "hangup danger",
      onclick: () => { if (confirm("Hang up this call?")) act(`/monitor/calls/${enc(c.id)}/hangup`, {}, "hang up"); } },
      "hang up"));
}

// -- rendering ----------------------------------------------------------------------------
function fill(selector, rows) { $(selector + " tbody").replaceChildren(...rows); }
const sorted = (kind, key) => Object.values(state.entities[kind] || {}).sort(key);

function renderCalls() {
  const calls = sorted("call", (a, b) => a.started_at - b.started_at);
  $("#calls-count").textContent = `(${calls.filter((c) => c.direction !== "spy").length})`;
  fill("#calls", calls.map((c) => el("tr", { "data-id": c.id, "data-state": c.state, "data-direction": c.direction,
      "data-attempt": c.attempt_id || "" },
    el("td", {}, c.direction),
    el("td", { class: "state" }, el("span", {}, c.state + (c.phase ? " · " + c.phase : ""))),
    el("td", {}, [c.flow, c.flow_node].filter(Boolean).join(" · ") || "–"),
    el("td", {}, [c.caller_name || c.caller, c.contact_name || (c.contact_id ? "#" + c.contact_id : null)].filter(Boolean).join(" / ") || "–"),
    el("td", {}, c.stage || "–"),
    el("td", {}, (c.intent || []).join(", ") || "–"),
    el("td", {}, [c.queue, c.agent].filter(Boolean).join(" · ") || "–"),
    el("td", { class: "duration", "data-since": c.started_at }, secs(now() - c.started_at)),
    el("td", { class: "spied" }, (c.spied_by || []).map((s) => `${s.supervisor} (${s.mode})`).join(", ")
      || (c.spy ? `${c.spy.supervisor} → ${c.spy.mode}` : "")),
    el("td", { class: "act" }, callButtons(c)))));
}

function renderAgents() {
  fill("#agents", sorted("agent", (a, b) => a.name.localeCompare(b.name)).map((a) => el("tr", { "data-id": a.id, "data-state": a.state },
    el("td", {}, a.name),
    el("td", { class: "astate" }, el("span", { class: a.state }, a.state)),
    el("td", {}, a.current_call ? (state.entities.call?.[a.current_call]?.caller || a.current_call) : "–"),
    el("td", {}, a.paused ? (a.paused_reason || "yes") : "–"),
    el("td", {}, String(a.calls_handled)),
    el("td", {}, pct(a.occupancy)),
    el("td", { class: "act" }, state.me.can_act ? el("button", { type: "button", class: a.paused ? "resume" : "pause",
      onclick: () => act("/monitor/agents/pause", { agent: a.id, paused: !a.paused, reason: $("#pause-reason").value },
        `${a.paused ? "resume" : "pause"} ${a.name}`) }, a.paused ? "resume" : "pause") : ""))));
}

function renderQueues() {
  fill("#queues", sorted("queue", (a, b) => a.id.localeCompare(b.id)).map((q) => el("tr", { "data-id": q.id },
    el("td", {}, q.name), el("td", {}, String(q.waiting)),
    el("td", { class: "wait", "data-since": q.oldest_since || "" }, q.oldest_since ? secs(now() - q.oldest_since) : "–"),
    el("td", {}, String(q.available_agents)), el("td", {}, String(q.answered)), el("td", {}, String(q.abandoned)))));
}

function renderCampaigns() {
  fill("#campaigns", sorted("campaign", (a, b) => String(a.name).localeCompare(String(b.name))).map((c) => {
    const paused = c.state === "paused";
    return el("tr", { "data-id": c.id, "data-state": c.state },
      el("td", {}, c.name), el("td", {}, c.state), el("td", {}, String(c.lines ?? "–")), el("td", {}, String(c.dialed ?? "–")),
      el("td", {}, String(c.answered ?? "–")), el("td", {}, String(c.abandoned ?? "–")), el("td", {}, pct(c.abandon_rate)),
      el("td", { class: "act" }, state.me.can_act && c.controllable ? el("button", { type: "button", class: paused ? "resume" : "pause",
        onclick: () => act(`/monitor/campaigns/${enc(c.id)}/pause`, { paused: !paused }, `${paused ? "resume" : "pause"} ${c.name}`) },
        paused ? "resume" : "pause") : ""));
  }));
}

const KPI_OF = { acquisition: "high_intent_rate", growth: "needs_capture_rate", maturity: "cross_sell_rate",
                 decline: "win_back_rate", churned: "recall_rate" };
function renderKpis() {
  const k = (state.entities.kpis || {}).stages;
  $("#kpi-window").textContent = k && k.window_hours ? `(last ${k.window_hours} h)` : "";
  if (!k || !k.stages) { fill("#kpis", []); return; }
  fill("#kpis", Object.entries(KPI_OF).map(([stage, name]) => {
    const s = k.stages[stage] || {};
    return el("tr", { "data-stage": stage }, el("td", {}, stage), el("td", {}, name.replaceAll("_", " ")),
      el("td", {}, pct(s[name])), el("td", {}, pct(s[name + "_target"])),
      el("td", {}, pct(s.conversion_rate)));
  }));
}

function renderAudit() {
  fill("#audit", sorted("audit", (a, b) => b.id - a.id).slice(0, 50).map((a) => el("tr", { "data-id": a.id },
    el("td", {}, new Date(a.at).toLocaleTimeString()), el("td", {}, `${a.subject} (${a.role})`), el("td", {}, a.action),
    el("td", {}, `${a.target_kind} ${a.target_id}`),
    el("td", { class: a.outcome === "ok" ? "" : "error" }, a.outcome + (a.error ? ": " + a.error : "")))));
}

function renderChart() {
  const svg = $("#chart"), W = 600, H = 180, L = 34, B = 18, end = now(), start = end - 3600;
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attrs, text) => { const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text) n.textContent = text; return n; };
  const x = (t) => L + (W - L - 4) * (t - start) / 3600, y = (v) => 4 + (H - B - 4) * (1 - v);
  const parts = [];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(node("line", { class: "grid", x1: L, x2: W - 4, y1: y(v), y2: y(v) }));
    parts.push(node("text", { x: 2, y: y(v) + 3 }, `${v * 100}%`));
  }
  for (const m of [60, 45, 30, 15, 0]) parts.push(node("text", { x: x(end - m * 60) - 8, y: H - 4 }, m ? `-${m}m` : "now"));
  for (const [key, cls] of [["abandon_rate", "ab"], ["occupancy", "oc"]]) {
    const pts = state.series.filter((p) => p.t >= start && p[key] !== null && p[key] !== undefined)
      .map((p) => `${x(p.t).toFixed(1)},${y(Math.min(1, p[key])).toFixed(1)}`);
    if (pts.length) parts.push(node("polyline", { class: "line " + cls, points: pts.join(" ") }));
  }
  svg.replaceChildren(...parts);
}

const RENDER = { call: renderCalls, agent: renderAgents, queue: renderQueues, campaign: renderCampaigns,
                 kpis: renderKpis, audit: renderAudit, chart: renderChart };

// Durations and waits tick without a message from the server.
setInterval(() => {
  for (const td of document.querySelectorAll("td[data-since]")) {
    const since = Number(td.dataset.since);
    if (since) td.textContent = secs(now() - since);
  }
}, 1000);
setInterval(() => { if (state.token) renderChart(); }, 30000);

$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  $("#login-error").hidden = true;
  login($("#token").value.trim()).catch((err) => {
    $("#login-error").textContent = `Login failed: ${err.message}`; $("#login-error").hidden = false;
  });
});
$("#logout").addEventListener("click", logout);
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) login(saved).catch(() => sessionStorage.removeItem(TOKEN_KEY));
