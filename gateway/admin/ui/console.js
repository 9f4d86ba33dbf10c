// sluice console: a page over the admin JSON API (/admin/...), nothing else.
// The admin token comes from the form or from #token=, and is kept in this
// tab's sessionStorage. Every second the page reads /admin/history (only the
// samples it does not hold yet), /admin/budget and /admin/status, and
// redraws the charts (uPlot) and the tiles.
(() => {
  "use strict";

  const TOKEN_KEY = "sluice.admin.token";
  const POLL_MS = 1000;
  const TRANSFORMS_EVERY = 5; // polls between two reads of the transform list
  const $ = (sel, root = document) => root.querySelector(sel);
  const dpr = () => window.devicePixelRatio || 1;

  // ---------------------------------------------------------------- API

  let token = null;

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body, contentType) {
    const headers = { Authorization: "Bearer " + token };
    if (contentType) headers["Content-Type"] = contentType;
    let res;
    try {
      res = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit" });
    } catch (e) {
      throw new APIError(0, "cannot reach the admin API: " + e.message);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (res.status === 401) {
      signOut("The admin API refused the token (401). Enter the admin token.");
      throw new APIError(401, "unauthorized");
    }
    if (!res.ok) {
      throw new APIError(res.status, (data && data.error) || text || res.statusText);
    }
    return data;
  }

  // --------------------------------------------------------- formatting

  const num = (v) => typeof v === "number" && isFinite(v);

  function fmtBytes(n) {
    if (!num(n)) return "–";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    let v = Math.abs(n);
    while (v >= 1024 && i < u.length - 1) {
      v /= 1024;
      i++;
    }
    const s = i === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
    return (n < 0 ? "-" : "") + s + " " + u[i];
  }

  function fmtCount(n) {
    if (!num(n)) return "–";
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
    if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e4) return (n / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
    if (a >= 100 || Number.isInteger(n)) return String(Math.round(n));
    return n.toFixed(a >= 10 ? 1 : 2);
  }

  const fmtRate = (n) => (num(n) ? fmtCount(n) + "/s" : "–");
  const fmtPct = (l) => (!num(l) ? "–" : l === 0 ? "0%" : (l * 100).toFixed(Math.abs(l) < 0.1 ? 1 : 0) + "%");
  const fmtMs = (ms) => (!num(ms) ? "–" : ms >= 100 ? ms.toFixed(0) + " ms" : ms >= 1 ? ms.toFixed(1) + " ms" : (ms * 1000).toFixed(0) + " µs");
  const fmtUs = (us) => (num(us) ? (us >= 100 ? us.toFixed(0) : us.toFixed(1)) : "–");

  function fmtDuration(s) {
    if (!num(s)) return "–";
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function say(id, text, kind) {
    const p = document.getElementById(id);
    p.textContent = text;
    p.className = "msg" + (kind ? " " + kind : "");
  }

  // ------------------------------------------------------------ login

  function showLogin(message) {
    $("#app").hidden = true;
    $("#nav").hidden = true;
    $("#health").hidden = true;
    $("#login").hidden = false;
    $("#login-error").textContent = message || "";
    $("#token").value = "";
    $("#token").focus();
  }

  function signOut(message) {
    stopPolling();
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(message);
  }

  async function connect() {
    $("#connect").disabled = true;
    try {
      await api("GET", "/admin/budget");
    } catch (e) {
      if (e.status !== 401) showLogin("Cannot connect: " + e.message);
      return;
    } finally {
      $("#connect").disabled = false;
    }
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#nav").hidden = false;
    $("#health").hidden = false;
    setupCharts();
    await Promise.all([loadTransforms(), loadTenants()]);
    startPolling();
    $("#main").focus();
  }

  $("#login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("#token").value.trim();
    if (!t) return;
    token = t;
    sessionStorage.setItem(TOKEN_KEY, t);
    connect();
  });
  $("#signout").addEventListener("click", () => signOut("Signed out."));

  // ----------------------------------------------------- confirm dialog

  function confirmAction(text, okLabel) {
    const d = $("#confirm");
    $("#confirm-text").textContent = text;
    $("#confirm-ok").textContent = okLabel;
    d.returnValue = "cancel";
    d.showModal();
    $("#confirm-cancel").focus();
    return new Promise((resolve) => {
      d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    });
  }

  // ------------------------------------------------------------ history

  // hist holds the samples of /admin/history, oldest first.
  const hist = { t: [], series: {}, sources: {}, latchedBy: [], pause: null, resume: null, cap: 900 };

  function mergeHistory(h) {
    if (h.pause_above !== null && h.pause_above !== undefined) hist.pause = h.pause_above;
    if (h.resume_below !== null && h.resume_below !== undefined) hist.resume = h.resume_below;
    if (h.interval_ms > 0) hist.cap = Math.ceil((h.length_seconds * 1000) / h.interval_ms) + 5;
    const n = h.t.length;
    if (!n) return;
    const old = hist.t.length;
    hist.t.push(...h.t);
    hist.latchedBy.push(...h.latched_by);
    for (const [name, vals] of Object.entries(h.series)) {
      if (!hist.series[name]) hist.series[name] = new Array(old).fill(null);
      hist.series[name].push(...vals);
    }
    for (const [name, vals] of Object.entries(h.sources)) {
      if (!hist.sources[name]) hist.sources[name] = new Array(old).fill(null);
      hist.sources[name].push(...vals);
    }
    for (const arr of [...Object.values(hist.series), ...Object.values(hist.sources)]) {
      while (arr.length < hist.t.length) arr.push(null);
    }
    const drop = hist.t.length - hist.cap;
    if (drop > 0) {
      hist.t.splice(0, drop);
      hist.latchedBy.splice(0, drop);
      for (const arr of [...Object.values(hist.series), ...Object.values(hist.sources)]) arr.splice(0, drop);
    }
  }

  const lastT = () => (hist.t.length ? hist.t[hist.t.length - 1] : 0);
  const series = (name) => hist.series[name] || [];
  const latest = (name) => {
    const a = series(name);
    for (let i = a.length - 1; i >= 0 && i >= a.length - 3; i--) if (a[i] !== null) return a[i];
    return null;
  };

  // windowed returns the index of the first sample inside the window.
  function windowStart() {
    const from = lastT() - windowSeconds() * 1000;
    let lo = 0, hi = hist.t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (hist.t[mid] < from) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  const windowSeconds = () => Number($("#window").value) || 900;

  // ------------------------------------------------------------- charts

  const palette = ["#1d5fd1", "#d1731d", "#2a9d55", "#9b3bb3", "#c62828", "#00838f", "#6d4c41", "#5e6b7a"];
  const sourceColor = {};
  function colorOf(name) {
    if (!sourceColor[name]) sourceColor[name] = palette[Object.keys(sourceColor).length % palette.length];
    return sourceColor[name];
  }

  // hlines draws horizontal threshold lines with labels.
  function hlines(get) {
    return {
      hooks: {
        draw: [
          (u) => {
            const ctx = u.ctx, r = dpr();
            ctx.save();
            for (const l of get()) {
              if (!num(l.value)) continue;
              const y = Math.round(u.valToPos(l.value, l.scale || "y", true));
              if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
              ctx.strokeStyle = l.color;
              ctx.lineWidth = 1.5 * r;
              ctx.setLineDash([6 * r, 4 * r]);
              ctx.beginPath();
              ctx.moveTo(u.bbox.left, y);
              ctx.lineTo(u.bbox.left + u.bbox.width, y);
              ctx.stroke();
              ctx.setLineDash([]);
              ctx.fillStyle = l.color;
              ctx.font = 11 * r + "px system-ui, sans-serif";
              ctx.textAlign = "right";
              ctx.textBaseline = "bottom";
              ctx.fillText(l.label, u.bbox.left + u.bbox.width - 4 * r, y - 3 * r);
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  // bands shades the time ranges where flag(i) holds, under the series.
  function bands(chart, color) {
    return {
      hooks: {
        drawClear: [
          (u) => {
            const xs = u.data[0], f = chart.flags;
            if (!f || !f.length) return;
            const ctx = u.ctx;
            ctx.save();
            ctx.fillStyle = color;
            let start = -1;
            for (let i = 0; i <= xs.length; i++) {
              const on = i < xs.length && f[i] === 1;
              if (on && start < 0) start = i;
              if (!on && start >= 0) {
                const x0 = u.valToPos(xs[start], "x", true);
                const x1 = u.valToPos(xs[Math.min(i, xs.length - 1)], "x", true);
                ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 2 * dpr()), u.bbox.height);
                start = -1;
              }
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  // axisSize fits a y axis to its longest label.
  function axisSize(u, values, i, cycle) {
    const axis = u.axes[i];
    if (cycle > 1) return axis._size;
    let size = axis.ticks.size + axis.gap + 6;
    const longest = (values || []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), "");
    if (longest) {
      u.ctx.font = axis.font[0];
      size += u.ctx.measureText(longest).width / dpr();
    }
    return Math.ceil(size);
  }

  const bytesAxis = (u, vals) => vals.map((v) => fmtBytes(v));
  const countAxis = (u, vals) => vals.map((v) => fmtCount(v));

  class Chart {
    // cfg: {series(): [{label, stroke, width, dash, scale, fmt}], scales, axes, data(i0) → [ys...], flags(i0), plugins(chart), describe()}
    constructor(id, cfg) {
      this.fig = document.getElementById(id);
      this.box = $(".plot", this.fig);
      this.box.setAttribute("role", "img");
      this.cfg = cfg;
      this.u = null;
      this.key = "";
      this.flags = [];
    }

    width() {
      return Math.max(this.box.clientWidth || this.fig.clientWidth - 16, 280);
    }

    build(defs) {
      if (this.u) this.u.destroy();
      this.box.textContent = "";
      const opts = {
        width: this.width(),
        height: 240,
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
        scales: Object.assign(
          {
            x: {
              time: true,
              // The window, or less while the history is shorter (at
              // least a minute): no empty chart after a start.
              range: () => {
                const max = lastT() / 1000;
                const first = hist.t.length ? hist.t[0] / 1000 : max;
                return [Math.min(max - 60, Math.max(first, max - windowSeconds())), max];
              },
            },
          },
          this.cfg.scales || {}
        ),
        axes: [{ stroke: "#5d6978", grid: { stroke: "#eef1f5" } }].concat(
          (this.cfg.axes || [{}]).map((a) => Object.assign({ stroke: "#5d6978", grid: { stroke: "#eef1f5" }, size: axisSize }, a))
        ),
        series: [{ label: "time" }].concat(
          defs.map((d) => ({
            label: d.label,
            stroke: d.stroke,
            width: d.width || 1.6,
            dash: d.dash,
            scale: d.scale || "y",
            spanGaps: false,
            points: { show: false },
            value: (u, v) => (v === null || v === undefined ? "–" : d.fmt(v)),
          }))
        ),
        plugins: this.cfg.plugins ? this.cfg.plugins(this) : [],
      };
      this.u = new uPlot(opts, [[]].concat(defs.map(() => [])), this.box);
    }

    render() {
      const defs = this.cfg.series();
      const key = defs.map((d) => d.label).join("|");
      if (key !== this.key || !this.u) {
        this.build(defs);
        this.key = key;
      }
      const i0 = windowStart();
      const xs = hist.t.slice(i0).map((t) => t / 1000);
      const ys = this.cfg.data(i0);
      this.flags = this.cfg.flags ? this.cfg.flags(i0) : [];
      this.u.setData([xs].concat(ys));
      // Away from the cursor the legend reads the latest sample.
      if (xs.length && !(this.u.cursor.left >= 0)) this.u.setLegend({ idx: xs.length - 1 });
      this.fig.dataset.points = String(xs.length);
      this.fig.dataset.last = JSON.stringify(ys.map((y) => (y.length ? y[y.length - 1] : null)));
      this.box.setAttribute("aria-label", this.fig.querySelector("figcaption").firstChild.textContent.trim() + ": " + this.cfg.describe());
    }

    resize() {
      if (this.u) this.u.setSize({ width: this.width(), height: 240 });
    }
  }

  let charts = [];

  function setupCharts() {
    if (charts.length) return;
    const sl = (name) => (i0) => series(name).slice(i0);

    const pressure = new Chart("chart-pressure", {
      series: () =>
        [{ label: "level", stroke: "#14233c", width: 2.4, fmt: fmtPct }].concat(
          Object.keys(hist.sources).sort().map((n) => ({ label: n, stroke: colorOf(n), fmt: fmtPct }))
        ),
      scales: { y: { range: (u, min, max) => [0, Math.max(1, max || 0)] } },
      axes: [{ values: (u, vals) => vals.map((v) => fmtPct(v)) }],
      data: (i0) => [series("pressure_level").slice(i0)].concat(Object.keys(hist.sources).sort().map((n) => hist.sources[n].slice(i0))),
      flags: sl("latched"),
      plugins: (c) => [
        bands(c, "rgba(198, 40, 40, 0.12)"),
        hlines(() => [
          { value: hist.pause, color: "#c62828", label: "pause above " + fmtPct(hist.pause) },
          { value: hist.resume, color: "#1a7f37", label: "resume below " + fmtPct(hist.resume) },
        ]),
      ],
      describe: () => "level " + fmtPct(latest("pressure_level")) + (latest("latched") === 1 ? ", latched" : ", open"),
    });

    const budget = new Chart("chart-budget", {
      series: () => [
        { label: "byte budget", stroke: "#1d5fd1", width: 2, fmt: fmtBytes },
        { label: "record cap", stroke: "#d1731d", scale: "rec", fmt: fmtCount },
      ],
      scales: { y: { range: (u, min, max) => [0, (max || 1) * 1.1] }, rec: { range: (u, min, max) => [0, (max || 1) * 1.1] } },
      axes: [{ values: bytesAxis }, { scale: "rec", side: 1, grid: { show: false }, values: countAxis }],
      data: (i0) => [series("byte_budget_bytes").slice(i0), series("record_cap").slice(i0)],
      describe: () => fmtBytes(latest("byte_budget_bytes")) + ", record cap " + fmtCount(latest("record_cap")),
    });

    const inflight = new Chart("chart-inflight", {
      series: () => [
        { label: "in flight", stroke: "#1d5fd1", width: 2, fmt: fmtBytes },
        { label: "limit", stroke: "#c62828", dash: [6, 4], fmt: fmtBytes },
      ],
      scales: { y: { range: (u, min, max) => [0, (max || 1) * 1.08] } },
      axes: [{ values: bytesAxis }],
      data: (i0) => [series("inflight_bytes").slice(i0), series("inflight_limit_bytes").slice(i0)],
      describe: () => fmtBytes(latest("inflight_bytes")) + " of " + fmtBytes(latest("inflight_limit_bytes")),
    });

    const ingest = new Chart("chart-ingest", {
      series: () => [
        { label: "events/s", stroke: "#2a9d55", width: 2, fmt: fmtRate },
        { label: "requests/s", stroke: "#1d5fd1", fmt: fmtRate },
        { label: "rejected/s", stroke: "#c62828", scale: "rej", fmt: fmtRate },
      ],
      scales: { y: { range: (u, min, max) => [0, (max || 1) * 1.1] }, rej: { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.1)] } },
      axes: [{ values: countAxis }, { scale: "rej", side: 1, grid: { show: false }, values: countAxis }],
      data: (i0) => [series("ingest_events_per_second").slice(i0), series("ingest_requests_per_second").slice(i0), series("gate_rejections_per_second").slice(i0)],
      flags: sl("latched"),
      plugins: (c) => [bands(c, "rgba(198, 40, 40, 0.12)")],
      describe: () => fmtRate(latest("ingest_events_per_second")) + " events, " + fmtRate(latest("gate_rejections_per_second")) + " rejected",
    });

    const sink = new Chart("chart-sink", {
      series: () => [
        { label: "mean", stroke: "#1d5fd1", width: 2, fmt: fmtMs },
        { label: "max", stroke: "#9b3bb3", fmt: fmtMs },
      ],
      scales: { y: { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.1)] } },
      axes: [{ values: (u, vals) => vals.map((v) => fmtMs(v)) }],
      data: (i0) => [series("sink_latency_mean_ms").slice(i0), series("sink_latency_max_ms").slice(i0)],
      flags: (i0) => series("sink_healthy").slice(i0).map((v) => (v === 0 ? 1 : 0)),
      plugins: (c) => [bands(c, "rgba(198, 40, 40, 0.16)")],
      describe: () => "mean " + fmtMs(latest("sink_latency_mean_ms")) + ", max " + fmtMs(latest("sink_latency_max_ms")) + (latest("sink_healthy") === 0 ? ", unhealthy" : ""),
    });

    charts = [pressure, budget, inflight, ingest, sink];
    window.sluiceConsole = { charts, hist }; // for the browser tests and the curious
    let pending = false;
    new ResizeObserver(() => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        charts.forEach((c) => c.resize());
      });
    }).observe($("#governor"));
    $("#window").addEventListener("change", () => charts.forEach((c) => c.render()));
  }

  // -------------------------------------------------------------- tiles

  function tile(id, value, detail, kind) {
    const t = document.getElementById(id);
    $("[data-v]", t).textContent = value;
    $("[data-d]", t).textContent = detail || "";
    t.className = "tile" + (kind ? " " + kind : "");
  }

  function renderTiles(b) {
    const p = b.pressure, m = b.memory || {}, g = b.gate;
    if (num(b.byte_budget)) {
      const a = b.aimd || {};
      tile("tile-budget", fmtBytes(b.byte_budget), "record cap " + fmtCount(b.record_cap) + " · range " + fmtBytes(a.min) + "–" + fmtBytes(a.max));
    } else tile("tile-budget", "–", "no budget configured");
    if (p) {
      const kind = p.level >= p.pause_above ? "bad" : p.level > p.resume_below ? "warn" : "";
      const top = (p.sources || []).slice().sort((x, y) => y.level - x.level)[0];
      tile("tile-pressure", fmtPct(p.level), (top ? "highest " + top.name + (top.hard ? " (hard)" : "") + " · " : "") + "pause > " + fmtPct(p.pause_above) + " · resume < " + fmtPct(p.resume_below), kind);
      if (p.latched) {
        const since = p.latched_since ? fmtDuration((Date.now() - Date.parse(p.latched_since)) / 1000) : "";
        tile("tile-latch", "latched", "by " + (p.latched_by || "?") + (since ? " for " + since : "") + " · " + p.pauses + " pauses", "bad");
      } else tile("tile-latch", "open", p.pauses + " pauses, " + p.resumes + " resumes since start", "ok");
    }
    if (num(m.inflight_bytes)) {
      const share = m.limit_bytes > 0 ? " (" + fmtPct(m.inflight_bytes / m.limit_bytes) + ")" : "";
      tile("tile-inflight", fmtBytes(m.inflight_bytes), "of " + fmtBytes(m.limit_bytes) + share + " · heap " + fmtBytes(m.heap_bytes));
    }
    const ev = latest("ingest_events_per_second"), rq = latest("ingest_requests_per_second");
    tile("tile-events", fmtRate(ev), "events · " + fmtRate(rq) + " requests · " + fmtBytes(latest("ingest_bytes_per_second")) + "/s");
    const rej = latest("gate_rejections_per_second");
    tile("tile-rejections", fmtRate(rej), g ? "gate " + g.state + " · " + fmtCount(g.rejections) + " held since start" : "", rej > 0 ? "bad" : "");
  }

  function renderStatus(s) {
    const ready = $("#pill-ready"), sinkPill = $("#pill-sink");
    ready.textContent = s.ready ? "ready" : "not ready";
    ready.className = "pill " + (s.ready ? "ok" : "bad");
    ready.title = s.reason || "taking traffic";
    sinkPill.textContent = s.sink.healthy ? "sink healthy" : "sink unhealthy";
    sinkPill.className = "pill " + (s.sink.healthy ? "ok" : "bad");
    sinkPill.title = s.sink.error || "the sink acknowledges writes";
    $("#uptime").textContent = "up " + fmtDuration(s.uptime_seconds);
    const banner = $("#readiness");
    const problems = [];
    if (!s.ready) problems.push("Not ready: " + (s.reason || "unknown reason"));
    if (!s.sink.healthy && !(s.reason || "").includes(s.sink.error)) problems.push("Sink unhealthy: " + s.sink.error);
    banner.textContent = problems.join(" — ");
    banner.hidden = problems.length === 0;
    const mean = latest("sink_latency_mean_ms"), mx = latest("sink_latency_max_ms");
    tile("tile-sink", s.sink.healthy ? "healthy" : "unhealthy", s.sink.healthy ? "write mean " + fmtMs(mean) + " · max " + fmtMs(mx) : s.sink.error, s.sink.healthy ? "ok" : "bad");
  }

  function renderGate(b) {
    const pill = $("#pill-gate");
    const p = b.pressure;
    if (!p) {
      pill.textContent = "gate –";
      return;
    }
    pill.textContent = p.latched ? "gate held by " + (p.latched_by || "?") : "gate open";
    pill.className = "pill " + (p.latched ? "bad" : "ok");
  }

  // ------------------------------------------------------------ polling

  let timer = null, polls = 0, polling = false;

  function startPolling() {
    stopPolling();
    polling = true;
    poll();
  }

  function stopPolling() {
    polling = false;
    if (timer) clearTimeout(timer);
    timer = null;
  }

  async function poll() {
    if (!polling) return;
    const started = Date.now();
    try {
      const [h, b, s] = await Promise.all([
        api("GET", "/admin/history?since=" + lastT()),
        api("GET", "/admin/budget"),
        api("GET", "/admin/status").catch((e) => (e.status === 503 ? null : Promise.reject(e))),
      ]);
      mergeHistory(h);
      charts.forEach((c) => c.render());
      renderTiles(b);
      renderGate(b);
      if (s) renderStatus(s);
      const u = $("#gov-updated");
      u.textContent = "updated " + new Date(lastT() || Date.now()).toLocaleTimeString();
      u.className = "muted";
      if (++polls % TRANSFORMS_EVERY === 0) loadTransforms(true);
    } catch (e) {
      if (e.status === 401) return;
      const u = $("#gov-updated");
      u.textContent = "update failed: " + e.message + " (retrying)";
      u.className = "error";
    }
    if (polling) timer = setTimeout(poll, Math.max(100, POLL_MS - (Date.now() - started)));
  }

  // --------------------------------------------------------- transforms

  let transforms = [];

  async function loadTransforms(quiet) {
    try {
      const r = await api("GET", "/admin/transforms");
      transforms = r.transforms || [];
      renderTransforms();
    } catch (e) {
      if (!quiet && e.status !== 401) say("tr-msg", "Cannot list transforms: " + e.message, "bad");
    }
  }

  function renderTransforms() {
    const body = $("#tr-body");
    const focused = document.activeElement && document.activeElement.closest("#tr-body") ? document.activeElement.id : null;
    body.textContent = "";
    if (!transforms.length) {
      body.append(el("tr", {}, el("td", { colspan: 11, class: "muted", text: "No transforms. Upload one below, or start sluice with --transforms DIR." })));
    }
    for (const t of transforms) {
      const versions = t.versions || [t.version];
      const canRollBack = versions.some((v) => v < t.version);
      body.append(
        el(
          "tr",
          { "data-name": t.name },
          el("th", { scope: "row", class: "mono", text: t.name }),
          el("td", { "data-version": t.version, text: "v" + t.version + (versions.length > 1 ? " (kept: " + versions.join(", ") + ")" : "") }),
          el("td", {}, el("code", { title: t.digest, text: t.digest.slice(0, 12) })),
          el("td", { class: "num", text: fmtBytes(t.size) }),
          el("td", { class: "num", text: fmtCount(t.calls) }),
          el("td", { class: "num", text: fmtCount(t.records) }),
          el("td", { class: "num" + (t.traps ? " error" : ""), text: fmtCount(t.traps) }),
          el("td", { class: "num", text: t.peak_memory_bytes ? fmtBytes(t.peak_memory_bytes) : "–" }),
          el("td", {}, ...(t.used_by.length ? t.used_by.map((p) => el("span", { class: "tag", text: p })) : [el("span", { class: "muted", text: "unused" })])),
          el("td", { text: new Date(t.created).toLocaleString() }),
          el(
            "td",
            { class: "actions" },
            el("button", {
              type: "button", id: "rollback-" + t.name, "aria-label": "Roll back " + t.name + " to its previous version",
              disabled: !canRollBack, title: canRollBack ? "make the previous version current" : "no earlier version kept",
              text: "Roll back", onclick: () => rollback(t),
            }),
            el("button", {
              type: "button", id: "delete-" + t.name, class: "danger", "aria-label": "Delete " + t.name,
              title: t.used_by.length ? "in use by " + t.used_by.join(", ") : "delete every version", text: "Delete", onclick: () => remove(t),
            })
          )
        )
      );
    }
    const dl = $("#tr-names");
    dl.textContent = "";
    for (const t of transforms) dl.append(el("option", { value: t.name }));
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  }

  async function rollback(t) {
    if (!(await confirmAction("Make the version before v" + t.version + " of " + t.name + " current? Pipelines that use it switch at once.", "Roll back"))) return;
    try {
      const info = await api("POST", "/admin/transforms/" + encodeURIComponent(t.name) + "/rollback");
      say("tr-msg", "Rolled back " + info.name + ": v" + info.version + " is current (digest " + info.digest.slice(0, 12) + ").", "ok");
    } catch (e) {
      say("tr-msg", "Roll back " + t.name + ": " + e.message, "bad");
    }
    await loadTransforms();
    const b = document.getElementById("rollback-" + t.name);
    if (b) (b.disabled ? document.getElementById("delete-" + t.name) : b).focus();
  }

  async function remove(t) {
    if (!(await confirmAction("Delete " + t.name + " and all its versions?", "Delete"))) return;
    try {
      await api("DELETE", "/admin/transforms/" + encodeURIComponent(t.name));
      say("tr-msg", "Deleted " + t.name + ".", "ok");
    } catch (e) {
      say("tr-msg", "Delete " + t.name + ": " + e.message, "bad");
    }
    await loadTransforms();
  }

  $("#tr-refresh").addEventListener("click", () => loadTransforms());

  $("#upload-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("#up-name").value.trim();
    const file = $("#up-file").files[0];
    if (!name || !file) return;
    $("#up-submit").disabled = true;
    say("tr-msg", "Uploading " + file.name + " as " + name + "…");
    try {
      const info = await api("PUT", "/admin/transforms/" + encodeURIComponent(name), await file.arrayBuffer(), "application/wasm");
      say("tr-msg", "Uploaded " + info.name + " v" + info.version + " (" + fmtBytes(info.size) + ", digest " + info.digest.slice(0, 12) + ").", "ok");
      $("#upload-form").reset();
    } catch (e) {
      say("tr-msg", "Upload " + name + ": " + e.message, "bad");
    } finally {
      $("#up-submit").disabled = false;
    }
    await loadTransforms();
  });

  // ---------------------------------------------------------- pipelines

  const parseChain = (s) => s.split(/[\s,]+/).filter(Boolean);
  let tenants = [];

  async function loadTenants() {
    try {
      const r = await api("GET", "/admin/pipeline");
      tenants = ["default"].concat(r.tenants || []);
    } catch (e) {
      tenants = ["default"];
    }
    for (const id of ["#pl-tenant", "#dr-tenant"]) {
      const sel = $(id);
      const keep = sel.value;
      sel.textContent = "";
      for (const t of tenants) sel.append(el("option", { value: t, text: t === "default" ? "default pipeline" : t }));
      if (tenants.includes(keep)) sel.value = keep;
    }
    await loadPipeline();
  }

  const tenantQuery = (t) => (t && t !== "default" ? "?tenant=" + encodeURIComponent(t) : "");

  async function loadPipeline() {
    const t = $("#pl-tenant").value;
    try {
      const r = await api("GET", "/admin/pipeline" + tenantQuery(t));
      $("#pl-current").textContent = r.transforms.length ? r.transforms.join(" → ") : "pass-through (no transforms)";
      $("#pl-chain").value = r.transforms.join(", ");
    } catch (e) {
      say("pl-msg", "Cannot read the pipeline of " + t + ": " + e.message, "bad");
    }
  }

  $("#pl-tenant").addEventListener("change", loadPipeline);
  $("#pl-reset").addEventListener("click", loadPipeline);
  $("#pl-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = $("#pl-tenant").value;
    const chain = parseChain($("#pl-chain").value);
    $("#pl-apply").disabled = true;
    try {
      const r = await api("PUT", "/admin/pipeline" + tenantQuery(t), JSON.stringify({ transforms: chain }), "application/json");
      say("pl-msg", "Applied to " + r.tenant + ": " + (r.transforms.join(" → ") || "pass-through") + " (was " + (r.previous.join(" → ") || "pass-through") + ").", "ok");
    } catch (e) {
      say("pl-msg", "Apply to " + t + ": " + e.message, "bad");
    } finally {
      $("#pl-apply").disabled = false;
    }
    await Promise.all([loadPipeline(), loadTransforms()]);
  });

  // ------------------------------------------------------------ dry run

  function valueText(r) {
    if (r.value !== undefined) return JSON.stringify(r.value);
    if (r.value_string !== undefined) return r.value_string;
    if (r.value_base64 !== undefined) return "base64:" + r.value_base64;
    return "";
  }

  $("#dr-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = $("#dr-tenant").value;
    const chain = parseChain($("#dr-chain").value);
    let q = tenantQuery(t);
    if (chain.length) q += (q ? "&" : "?") + "transforms=" + encodeURIComponent(chain.join(","));
    $("#dr-run").disabled = true;
    say("dr-msg", "Running…");
    try {
      const r = await api("POST", "/admin/pipeline/test" + q, $("#dr-events").value, "application/x-ndjson");
      renderDryRun(r);
      say("dr-msg", "Done: nothing was produced.", "ok");
    } catch (e) {
      $("#dr-result").hidden = true;
      say("dr-msg", "Dry run: " + e.message, "bad");
    } finally {
      $("#dr-run").disabled = false;
    }
  });

  function renderDryRun(r) {
    const s = r.summary;
    $("#dr-summary").textContent =
      (r.transforms.join(" → ") || "pass-through") + ": " + s.events + " events → " + s.kept + " kept, " + s.dropped + " dropped, " +
      s.dead_lettered + " dead-lettered, " + s.fanned_out + " fanned out; " + s.records_out + " records out; " +
      fmtMs(r.duration_us / 1000) + " in all (its own instances included); peak guest memory " + fmtBytes(r.peak_memory_bytes) + ".";
    const eb = $("#dr-events-table tbody");
    eb.textContent = "";
    for (const e of r.events) {
      eb.append(
        el("tr", { "data-decision": e.decision },
          el("td", { class: "num", text: String(e.index) }),
          el("td", { class: "dec dec-" + e.decision, text: e.decision.replace("_", " ") }),
          el("td", { class: "num", text: String(e.outputs) }),
          el("td", { text: e.reason || "" }),
          el("td", { text: e.stage || "" }),
          el("td", { class: "num", text: fmtUs(e.duration_us) })
        )
      );
    }
    const rb = $("#dr-records-table tbody");
    rb.textContent = "";
    if (!r.records.length) rb.append(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "no output records" })));
    for (const rec of r.records) {
      rb.append(
        el("tr", {},
          el("td", { class: "num", text: String(rec.input) }),
          el("td", { class: "mono", text: rec.topic || "(default topic)" }),
          el("td", { class: "mono", text: rec.key === null || rec.key === undefined ? (rec.key_base64 ? "base64:" + rec.key_base64 : "—") : rec.key }),
          el("td", {}, ...rec.headers.map((h) => el("span", { class: "tag mono", text: h.key + "=" + h.value }))),
          el("td", {}, el("pre", { text: valueText(rec) }))
        )
      );
    }
    $("#dr-result").hidden = false;
    $("#dr-summary").focus();
    $("#dr-result").scrollIntoView({ block: "start" });
  }

  // -------------------------------------------------------------- start

  // tokenFromHash moves a #token=... into sessionStorage and out of the
  // address bar (and the history); it reports whether there was one.
  function tokenFromHash() {
    const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
    if (!m) return false;
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
    return true;
  }

  function start() {
    tokenFromHash();
    token = sessionStorage.getItem(TOKEN_KEY);
    if (token) connect();
    else showLogin();
  }

  window.addEventListener("hashchange", () => {
    if (tokenFromHash()) {
      stopPolling();
      start();
    }
  });

  start();
})();
