/* Callcenter supervisor dashboard.
 *
 * Polls one endpoint (api/state) every second and updates the page in place: the agent board keeps
 * one row element per agent and only touches the cells whose text changed, so 500 agents cost a
 * few hundred text comparisons a second, not a rebuilt table. Charts are inline SVG. No library,
 * nothing loaded from another host.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const STATUSES = ["AVAILABLE", "BUSY", "WRAP_UP", "BREAK", "OFFLINE"];
  const STATUS_LABEL = { AVAILABLE: "Available", BUSY: "On a call", WRAP_UP: "Wrap-up", BREAK: "Break", OFFLINE: "Offline" };
  const SETTABLE = [["AVAILABLE", "Available"], ["BREAK", "Break"], ["OFFLINE", "Offline"]];

  let state = null;
  let types = { agent: new Map(), call: new Map() };
  let sort = { key: "", dir: 1 };
  let lastOrder = "";
  const rows = new Map(); // agent id -> {tr, cells, values}
  let failures = 0;
  let lastSuccess = 0;

  // ---------- formatting ----------
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }
  const pct = (v, digits = 1) => (v === null || v === undefined ? "–" : (v * 100).toFixed(digits) + " %");
  const ms = (v) => (v === null || v === undefined ? "–" : (v < 10 ? v.toFixed(2) : v.toFixed(1)) + " ms");
  const num = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString());
  function typeName(kind, id) {
    const t = types[kind].get(id);
    return t ? t.name : String(id);
  }
  function typeSlug(kind, id) {
    const t = types[kind].get(id);
    return t ? t.slug : "";
  }

  // ---------- toast ----------
  let toastTimer = null;
  function toast(message, isError) {
    const el = $("toast");
    el.textContent = message;
    el.className = "toast show" + (isError ? " error" : "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.className = "toast"; }, isError ? 6000 : 3000);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const detail = data && (data.detail || data.title);
      throw Object.assign(new Error(detail || "The request failed (" + response.status + ")."), { data, status: response.status });
    }
    return data;
  }

  // ---------- KPIs ----------
  const KPI_CARDS = [
    ["service_level", "Service level", (k) => pct(k.value), (k) => "target " + pct(k.target, 0) + " in " + k.seconds + " s"],
    ["asa_seconds", "ASA", (k) => (k.value === null ? "–" : duration(k.value)), (k) => "limit " + k.threshold + " s"],
    ["occupancy", "Occupancy", (k) => pct(k.value), (k) => "max " + k.threshold],
    ["conversion", "Conversion", (k) => pct(k.value), (k) => "of " + num(k.calls) + " calls"],
    ["assigned", "Assigned", (k) => num(k.value), () => "answered today"],
    ["completed", "Completed", (k) => num(k.value), () => "ended today"],
    ["saturated", "Saturated", (k) => num(k.value), (k) => (k.share === null ? "rejected, no room" : pct(k.share) + " of offered")],
    ["abandoned", "Abandoned", (k) => num(k.value), (k) => (k.share === null ? "hung up waiting" : pct(k.share) + " of offered")],
    ["latency_p50_ms", "Assignment p50", (k) => ms(k.value), (k) => "alert at " + k.threshold + " ms"],
    ["latency_p99_ms", "Assignment p99", (k) => ms(k.value), (k) => "alert at " + k.threshold + " ms"],
  ];
  const kpiEls = new Map();
  function buildKpis() {
    const host = $("kpis");
    for (const [key, label] of KPI_CARDS) {
      const card = document.createElement("div");
      card.className = "kpi";
      card.dataset.kpi = key;
      card.innerHTML = '<div class="label"><span></span><span class="sr-only level"></span></div><div class="value">–</div><div class="sub"></div>';
      card.querySelector(".label span").textContent = label;
      host.appendChild(card);
      kpiEls.set(key, card);
    }
  }
  const LEVEL_TEXT = { ok: "within threshold", warn: "near threshold", bad: "over threshold", none: "" };
  function renderKpis(kpis) {
    for (const [key, , fmt, sub] of KPI_CARDS) {
      const k = kpis[key];
      const card = kpiEls.get(key);
      card.className = "kpi " + (k.level || "none");
      setText(card.querySelector(".value"), fmt(k));
      setText(card.querySelector(".sub"), sub(k));
      setText(card.querySelector(".level"), LEVEL_TEXT[k.level] || "");
    }
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  // ---------- board ----------
  function fillFilters() {
    const status = $("filter-status");
    for (const s of STATUSES) status.add(new Option(STATUS_LABEL[s], s));
    const type = $("filter-type");
    for (const t of state.agent_types) type.add(new Option(t.name + " (" + t.slug + ")", String(t.id)));
  }

  function makeRow(agent) {
    const tr = document.createElement("tr");
    tr.dataset.agentId = agent.id;
    const cells = {};
    for (const key of ["name", "type", "status", "in_status", "call", "talk", "handled", "conversion"]) {
      const td = document.createElement("td");
      if (["in_status", "talk", "handled", "conversion"].includes(key)) td.className = "num";
      if (key === "type") td.className = "type";
      cells[key] = td;
      tr.appendChild(td);
    }
    const nameText = document.createElement("span");
    cells.name.appendChild(nameText);
    cells.nameText = nameText;
    if (agent.simulated) {
      const tag = document.createElement("span");
      tag.className = "sim-tag";
      tag.textContent = "sim";
      tag.title = "A simulated agent: it takes simulated calls only";
      cells.name.appendChild(tag);
    }
    const statusBadge = document.createElement("span");
    cells.status.appendChild(statusBadge);
    cells.statusBadge = statusBadge;
    if (config.canOperate) {
      const td = document.createElement("td");
      const wrap = document.createElement("div");
      wrap.className = "actions-cell";
      cells.buttons = {};
      for (const [status, label] of SETTABLE) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = label;
        b.dataset.setStatus = status;
        b.setAttribute("aria-label", "Set " + agent.name + " " + label);
        wrap.appendChild(b);
        cells.buttons[status] = b;
      }
      td.appendChild(wrap);
      tr.appendChild(td);
    }
    return { tr, cells, agent };
  }

  function updateRow(row, agent) {
    const c = row.cells;
    row.agent = agent;
    setText(c.nameText, agent.name);
    const typeText = typeName("agent", agent.type);
    if (c.type.textContent !== typeText) {
      c.type.textContent = typeText;
      c.type.title = typeSlug("agent", agent.type);
    }
    if (c.statusBadge.dataset.status !== agent.status) {
      c.statusBadge.dataset.status = agent.status;
      c.statusBadge.className = "status st-" + agent.status;
      c.statusBadge.textContent = STATUS_LABEL[agent.status] || agent.status;
      row.tr.dataset.status = agent.status;
      if (c.buttons) for (const [s, b] of Object.entries(c.buttons)) b.disabled = s === agent.status;
    }
    setText(c.in_status, duration(agent.in_status_seconds));
    setText(c.call, agent.call ? typeName("call", agent.call.type) : "");
    setText(c.talk, agent.call ? duration(agent.call.talk_seconds) : "");
    setText(c.handled, String(agent.handled_today));
    setText(c.conversion, agent.conversion_today === null ? "–" : pct(agent.conversion_today, 0));
  }

  const STATUS_ORDER = Object.fromEntries(STATUSES.map((s, i) => [s, i]));
  function sortValue(agent, key) {
    switch (key) {
      case "name": return agent.name.toLowerCase();
      case "type": return typeName("agent", agent.type).toLowerCase();
      case "status": return STATUS_ORDER[agent.status];
      case "in_status": return agent.in_status_seconds === null ? -1 : agent.in_status_seconds;
      case "call": return agent.call ? typeName("call", agent.call.type) : "";
      case "talk": return agent.call ? agent.call.talk_seconds : -1;
      case "handled": return agent.handled_today;
      case "conversion": return agent.conversion_today === null ? -1 : agent.conversion_today;
      default: return 0;
    }
  }

  function renderBoard(agents) {
    const body = $("board-body");
    const seen = new Set();
    for (const agent of agents) {
      let row = rows.get(agent.id);
      if (!row) {
        row = makeRow(agent);
        rows.set(agent.id, row);
      }
      updateRow(row, agent);
      seen.add(agent.id);
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) { row.tr.remove(); rows.delete(id); }
    }
    const statusFilter = $("filter-status").value;
    const typeFilter = $("filter-type").value;
    const nameFilter = $("filter-name").value.trim().toLowerCase();
    const sorted = agents.slice().sort((a, b) => {
      const va = sortValue(a, sort.key), vb = sortValue(b, sort.key);
      if (va < vb) return -sort.dir;
      if (va > vb) return sort.dir;
      return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    });
    const order = sorted.map((a) => a.id).join(",");
    if (order !== lastOrder) {
      // Re-append only when the order changed; appendChild moves existing rows (no re-creation).
      const fragment = document.createDocumentFragment();
      for (const a of sorted) fragment.appendChild(rows.get(a.id).tr);
      body.appendChild(fragment);
      lastOrder = order;
    }
    let shown = 0;
    for (const a of sorted) {
      const visible = (!statusFilter || a.status === statusFilter)
        && (!typeFilter || String(a.type) === typeFilter)
        && (!nameFilter || a.name.toLowerCase().includes(nameFilter));
      const tr = rows.get(a.id).tr;
      if (tr.hidden === visible) tr.hidden = !visible;
      if (visible) shown += 1;
    }
    $("board-empty").hidden = shown > 0 || agents.length === 0;
    setText($("agent-count"), shown === agents.length ? String(agents.length) : shown + " of " + agents.length);
    if (!agents.length) {
      $("board-empty").hidden = false;
      setText($("board-empty"), "No agents yet. Create them through the API or the admin, or start a simulation.");
    } else {
      setText($("board-empty"), "No agent matches these filters.");
    }
    const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    for (const a of agents) counts[a.status] += 1;
    const chips = $("status-chips");
    if (!chips.children.length) {
      for (const s of STATUSES) {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.dataset.status = s;
        chip.innerHTML = '<span class="status st-' + s + '"></span><span></span><b></b>';
        chip.children[1].textContent = STATUS_LABEL[s];
        chips.appendChild(chip);
      }
    }
    for (const chip of chips.children) setText(chip.querySelector("b"), String(counts[chip.dataset.status]));
  }

  function setSort(key) {
    sort = { key, dir: sort.key === key ? -sort.dir : 1 };
    for (const th of document.querySelectorAll("thead th")) {
      const button = th.querySelector("button[data-sort]");
      if (!button) continue;
      if (button.dataset.sort === key) th.setAttribute("aria-sort", sort.dir === 1 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    lastOrder = "";
    if (state) renderBoard(state.agents);
  }

  async function setStatus(agentId, status) {
    const row = rows.get(agentId);
    const agent = row ? row.agent : null;
    let force = false;
    if (agent && agent.status === "BUSY") {
      if (!window.confirm(agent.name + " is on a call. End the call and set " + STATUS_LABEL[status] + "?")) return;
      force = true;
    }
    try {
      await post("api/agents/" + agentId + "/status", { status, force });
      toast((agent ? agent.name : "Agent") + ": " + STATUS_LABEL[status]);
      poll();
    } catch (error) {
      toast(error.message, true);
    }
  }

  // ---------- queue ----------
  function renderQueue(queue) {
    setText($("queue-depth"), num(queue.depth));
    setText($("queue-oldest"), duration(queue.oldest_wait_seconds));
    const body = $("queue-body");
    const html = queue.calls.map((c) =>
      "<tr><td>" + escapeHtml(typeName("call", c.type)) + "</td><td class=num>" + c.priority + "</td><td class=num>" + duration(c.wait_seconds) + "</td></tr>"
    ).join("");
    if (body.dataset.html !== html) { body.innerHTML = html; body.dataset.html = html; }
    $("queue-empty").hidden = queue.calls.length > 0;
    if (queue.depth > queue.calls.length) {
      $("queue-empty").hidden = false;
      setText($("queue-empty"), "… and " + num(queue.depth - queue.calls.length) + " more");
    } else {
      setText($("queue-empty"), "Nobody is waiting.");
    }
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch]));
  }

  // ---------- charts (inline SVG) ----------
  function svgEl(name, attrs, parent) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (parent) parent.appendChild(el);
    return el;
  }
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= value) return m * p;
    return 10 * p;
  }
  function frame(host, yMax, yFormat, labels) {
    const width = Math.max(host.clientWidth, 200), height = Math.max(host.clientHeight, 120);
    const m = { l: 44, r: 10, t: 8, b: 22 };
    const svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, preserveAspectRatio: "none" });
    const grid = svgEl("g", { class: "grid" }, svg);
    for (let i = 0; i <= 4; i += 1) {
      const y = m.t + ((height - m.t - m.b) * i) / 4;
      svgEl("line", { x1: m.l, x2: width - m.r, y1: y, y2: y }, grid);
      const t = svgEl("text", { x: m.l - 6, y: y + 4, "text-anchor": "end" }, svg);
      t.textContent = yFormat(yMax * (1 - i / 4), yMax);
    }
    const n = labels.length;
    const x = (i) => m.l + ((width - m.l - m.r) * (n > 1 ? i / (n - 1) : 0.5));
    const y = (v) => m.t + (height - m.t - m.b) * (1 - v / yMax);
    const step = Math.max(1, Math.ceil(n / 6));
    for (let i = 0; i < n; i += step) {
      const t = svgEl("text", { x: x(i), y: height - 6, "text-anchor": "middle" }, svg);
      t.textContent = labels[i];
    }
    return { svg, x, y, width, height, m };
  }
  function drawArrivals(series) {
    const host = $("chart-arrivals");
    // Whole numbers on each of the four grid lines.
    const max = Math.max(4, Math.ceil(niceMax(Math.max(...series.arrivals, 1)) / 4) * 4);
    const f = frame(host, max, (v) => String(Math.round(v)), series.minutes);
    const n = series.arrivals.length;
    const band = (f.width - f.m.l - f.m.r) / n;
    series.arrivals.forEach((v, i) => {
      if (!v) return;
      const top = f.y(v);
      const rect = svgEl("rect", { class: "bar", x: f.m.l + i * band + band * 0.15, width: band * 0.7, y: top, height: f.y(0) - top }, f.svg);
      svgEl("title", {}, rect).textContent = series.minutes[i] + ": " + v + " calls";
    });
    host.replaceChildren(f.svg);
  }
  function linePath(values, f) {
    let d = "", pen = false;
    values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += (pen ? "L" : "M") + f.x(i).toFixed(1) + " " + f.y(v).toFixed(1);
      pen = true;
    });
    return d;
  }
  function drawLatency(series, limit) {
    const host = $("chart-latency");
    const values = series.latency_p99_ms.concat(series.latency_p50_ms).filter((v) => v !== null);
    if (!values.length) { host.innerHTML = '<div class="chart-empty"><p>No call was assigned in the last hour.</p></div>'; return; }
    // Scaled to the data; the alert threshold is drawn when it is within reach, else named.
    const top = Math.max(...values);
    const max = niceMax(top >= limit * 0.6 ? Math.max(top, limit) * 1.1 : top * 1.25);
    const f = frame(host, max, (v, top) => (top < 8 || v % 1 ? v.toFixed(1) : String(v)), series.minutes);
    if (limit <= max) svgEl("line", { class: "limit", x1: f.m.l, x2: f.width - f.m.r, y1: f.y(limit), y2: f.y(limit) }, f.svg);
    else svgEl("text", { class: "note", x: f.width - f.m.r, y: f.m.t + 10, "text-anchor": "end" }, f.svg).textContent = "threshold " + limit + " ms, off scale";
    for (const [key, cls] of [["latency_p99_ms", "p99"], ["latency_p50_ms", "p50"]]) {
      svgEl("path", { class: "line-" + cls, d: linePath(series[key], f) }, f.svg);
      series[key].forEach((v, i) => {
        if (v === null) return;
        const dot = svgEl("circle", { class: "dot-" + cls, cx: f.x(i), cy: f.y(v), r: 2.5 }, f.svg);
        svgEl("title", {}, dot).textContent = series.minutes[i] + " " + cls + ": " + ms(v);
      });
    }
    host.replaceChildren(f.svg);
  }
  function heatColor(p) {
    // Light to dark blue by P(OK) on a 0..max scale (the matrix rarely exceeds 0.5).
    const t = Math.min(1, p / 0.4);
    return "hsl(210 80% " + (92 - t * 47).toFixed(0) + "%)";
  }
  function drawHeatmap(conversion) {
    const build = (title, pick) => {
      let html = "<div><h3>" + title + "</h3><table><thead><tr><th></th>";
      for (const c of conversion.call_types) html += '<th scope="col" title="' + escapeHtml(typeSlug("call", c)) + '">' + escapeHtml(typeName("call", c)) + "</th>";
      html += "</tr></thead><tbody>";
      conversion.cells.forEach((row, i) => {
        const a = conversion.agent_types[i];
        html += '<tr><th scope="row" title="' + escapeHtml(typeSlug("agent", a)) + '">' + escapeHtml(typeName("agent", a)) + "</th>";
        row.forEach((cell) => {
          const v = pick(cell);
          if (v === null || v === undefined) html += '<td class="cell none" title="no completed call yet">–</td>';
          else {
            const text = v.toFixed(2);
            const tip = "configured " + (cell.configured === null ? "–" : cell.configured.toFixed(2)) + ", observed " + (cell.observed === null ? "–" : cell.observed.toFixed(2)) + " over " + cell.calls + " calls";
            html += '<td class="cell" style="background:' + heatColor(v) + (v > 0.25 ? ';color:#fff' : "") + '" title="' + tip + '">' + text + "</td>";
          }
        });
        html += "</tr>";
      });
      return html + "</tbody></table></div>";
    };
    const html = build("Configured", (c) => c.configured) + build("Observed today", (c) => c.observed)
      + '<div class="heat-scale"><span>0</span><span class="ramp"></span><span>0.40+</span><span>· hover a cell for its calls</span></div>';
    const host = $("heatmap");
    if (host.dataset.html !== html) { host.innerHTML = html; host.dataset.html = html; }
  }
  function drawStaffing(staffing) {
    const host = $("chart-staffing");
    if (!staffing || !staffing.rows.length) {
      if (!host.querySelector(".chart-empty")) host.innerHTML = '<div class="chart-empty"><p>No staffing study yet. Run <code>manage.py simulate --staffing</code> to see the service level each number of agents gives, and the smallest staff that meets the target.</p></div>';
      return;
    }
    const key = JSON.stringify(staffing);
    if (host.dataset.key === key && host.clientWidth === Number(host.dataset.w)) return;
    host.dataset.key = key;
    host.dataset.w = host.clientWidth;
    const rowsData = staffing.rows.slice().sort((a, b) => a.agents - b.agents);
    const f = frame(host, 1, (v) => Math.round(v * 100) + "%", rowsData.map((r) => String(r.agents)));
    if (staffing.target !== undefined && staffing.target !== null) {
      svgEl("line", { class: "target", x1: f.m.l, x2: f.width - f.m.r, y1: f.y(staffing.target), y2: f.y(staffing.target) }, f.svg);
    }
    if (rowsData.some((r) => r.erlang_c_service_level !== null && r.erlang_c_service_level !== undefined)) {
      svgEl("path", { class: "erlang-line", d: linePath(rowsData.map((r) => (r.erlang_c_service_level === undefined ? null : r.erlang_c_service_level)), f) }, f.svg);
    }
    svgEl("path", { class: "staff-line", d: linePath(rowsData.map((r) => (r.service_level === undefined ? null : r.service_level)), f) }, f.svg);
    rowsData.forEach((r, i) => {
      if (r.service_level === null || r.service_level === undefined) return;
      const dot = svgEl("circle", { class: r.agents === staffing.recommended_agents ? "staff-pick" : "staff-dot", cx: f.x(i), cy: f.y(r.service_level), r: r.agents === staffing.recommended_agents ? 5 : 3 }, f.svg);
      svgEl("title", {}, dot).textContent = r.agents + " agents: service level " + pct(r.service_level);
    });
    if (staffing.recommended_agents !== undefined && staffing.recommended_agents !== null) {
      // Bottom right: the curve rises from the left, so that corner is free.
      const t = svgEl("text", { x: f.width - f.m.r, y: f.y(0) - 8, "text-anchor": "end" }, f.svg);
      t.textContent = "smallest staff meeting " + pct(staffing.target, 0) + " in " + staffing.service_level_seconds + " s: " + staffing.recommended_agents
        + (staffing.erlang_c_agents ? " (Erlang C: " + staffing.erlang_c_agents + ")" : "");
    }
    host.replaceChildren(f.svg);
  }

  // ---------- simulation ----------
  function renderSimulation(sim) {
    const status = $("sim-status");
    const badge = $("sim-badge");
    const running = !!(sim && sim.status === "RUNNING");
    if (!sim) {
      setText(status, "No simulation has been started from the dashboard yet.");
      badge.hidden = true;
    } else {
      badge.hidden = false;
      // A run whose arrivals are over but whose calls are still being handled is draining.
      const draining = sim.status !== "RUNNING" && sim.calls_open > 0;
      badge.className = "badge " + (draining ? "RUNNING" : sim.status);
      setText(badge, sim.status === "RUNNING" ? "Running" : draining ? "Draining" : sim.status === "FINISHED" ? "Finished" : "Stopped");
      const planned = sim.calls_planned ? " of " + num(sim.calls_planned) : "";
      setText(status, num(sim.calls_created) + planned + " calls arrived, " + num(sim.calls_open) + " in progress · "
        + num(sim.agents) + " agents · " + num(sim.calls_per_minute) + " calls per real minute · seed " + sim.seed);
    }
    const form = $("sim-form");
    if (!form) return;
    $("sim-start").hidden = running;
    $("sim-stop").hidden = !running;
    for (const input of form.querySelectorAll("input")) input.disabled = running;
    if (running) {
      // While a run plays, the form shows its parameters (read-only).
      const values = { agents: sim.agents, calls_per_hour: sim.calls_per_hour, time_scale: sim.time_scale, calls: sim.calls_planned, seed: sim.seed };
      for (const input of form.querySelectorAll("input")) {
        const v = values[input.name];
        const text = v === null || v === undefined ? "" : String(v);
        if (input.value !== text) input.value = text;
      }
    }
  }

  function wireSimulation() {
    const form = $("sim-form");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {};
      for (const input of form.querySelectorAll("input")) {
        if (input.value === "") continue;
        body[input.name] = Number(input.value);
      }
      $("sim-start").disabled = true;
      try {
        const run = await post("api/simulation/start", body);
        toast("Simulation started (seed " + run.seed + ").");
        poll();
      } catch (error) {
        toast(error.message, true);
      } finally {
        $("sim-start").disabled = false;
      }
    });
    $("sim-stop").addEventListener("click", async () => {
      try {
        await post("api/simulation/stop");
        toast("Simulation stopped; calls in progress finish on their own.");
        poll();
      } catch (error) {
        toast(error.message, true);
      }
    });
  }

  // ---------- polling ----------
  let timer = null;
  let inFlight = false;
  async function poll() {
    clearTimeout(timer);
    if (inFlight) return;
    inFlight = true;
    let fetched = null;
    try {
      const traffic = $("traffic").value;
      const response = await fetch(config.stateUrl + "?traffic=" + encodeURIComponent(traffic), { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.status === 401 || response.status === 403) { inFlight = false; window.location.reload(); return; }
      if (!response.ok) throw new Error("HTTP " + response.status);
      fetched = await response.json();
    } catch (error) {
      // The server or the network: say so in the header, keep polling.
      failures += 1;
      if (failures >= 3) {
        $("live").className = "live stale";
        setText($("live-text"), "Reconnecting… last update " + (lastSuccess ? new Date(lastSuccess).toLocaleTimeString() : "never"));
      }
    }
    try {
      if (fetched !== null) {
        const first = state === null;
        state = fetched;
        types = {
          agent: new Map(state.agent_types.map((t) => [t.id, t])),
          call: new Map(state.call_types.map((t) => [t.id, t])),
        };
        if (first) fillFilters();
        render();
        failures = 0;
        lastSuccess = Date.now();
        $("live").className = "live on";
        setText($("live-text"), "Live · updated " + new Date(state.time).toLocaleTimeString());
      }
    } catch (error) {
      console.error("The dashboard could not show the latest state:", error); // a bug of this page
    } finally {
      inFlight = false;
      timer = setTimeout(poll, document.hidden ? config.pollMs * 5 : config.pollMs);
    }
  }

  // ---------- alerts ----------
  function renderAlerts(disabled) {
    const host = $("alerts");
    const list = disabled || [];
    host.hidden = list.length === 0;
    const key = JSON.stringify(list.map((w) => [w.id, w.reason]));
    if (host.dataset.key === key) return;
    host.dataset.key = key;
    host.replaceChildren(...list.map((w) => {
      const item = document.createElement("p");
      item.className = "alert bad";
      const strong = document.createElement("strong");
      strong.textContent = "Webhook endpoint turned off: ";
      const link = document.createElement("a");
      link.href = "/admin/webhooks/webhookendpoint/" + encodeURIComponent(w.id) + "/change/";
      link.textContent = w.url;
      item.append(strong, link, document.createTextNode(" · " + w.reason + " Fix the receiver, then enable the endpoint again."));
      return item;
    }));
  }

  function render() {
    setText($("strategy"), state.settings.strategy.replace("_", " "));
    renderAlerts(state.webhooks_disabled);
    renderKpis(state.kpis);
    renderBoard(state.agents);
    renderQueue(state.queue);
    renderSimulation(state.simulation);
    drawArrivals(state.series);
    drawLatency(state.series, state.settings.max_assignment_time_ms);
    drawHeatmap(state.conversion);
    drawStaffing(state.staffing);
    document.body.dataset.updatedAt = state.time;
  }

  // ---------- wiring ----------
  buildKpis();
  wireSimulation();
  for (const button of document.querySelectorAll("button[data-sort]")) {
    button.addEventListener("click", () => setSort(button.dataset.sort));
  }
  $("traffic").addEventListener("change", () => {
    try { window.localStorage.setItem("dashboard-traffic", $("traffic").value); } catch (e) { /* private mode */ }
    lastOrder = "";
    poll();
  });
  try { $("traffic").value = window.localStorage.getItem("dashboard-traffic") || "all"; } catch (e) { /* private mode */ }
  for (const id of ["filter-status", "filter-type", "filter-name"]) {
    $(id).addEventListener("input", () => state && renderBoard(state.agents));
  }
  $("board-body").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-set-status]");
    if (!button) return;
    setStatus(button.closest("tr").dataset.agentId, button.dataset.setStatus);
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  setSort("name");
  poll();
})();
