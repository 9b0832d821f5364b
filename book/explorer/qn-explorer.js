/*
 * qn-explorer.js — the live explorer of chapter 8: controls, plots (uPlot), the URL.
 *
 * Mounts on every <div class="qn-explorer"> of the page. Needs qn-explorer-core.js (the
 * numerics, window.quadnetExplorer) and uPlot loaded before it; the exact-chain replicas run in
 * qn-explorer-worker.js, next to this file, or in time slices on the page where workers are not
 * available (file:// pages).
 *
 * Each control change recomputes the ODE, the theory and the predicted escape time at once
 * (a few ms; the time of the last update is in the root's data-qn-update-ms) and, 250 ms after the
 * last change, restarts the chain replicas (the running worker is terminated: stale work is
 * dropped) and rewrites the page's query string so the link reproduces the scenario.
 *
 * DOM contract (tests/site): root .qn-explorer with data-qn-ready="1" once mounted,
 * data-qn-renders (number of redraws), data-qn-update-ms, data-qn-chain ("running" | "done"),
 * data-qn-chain-mode ("worker" | "page"); sliders input[type=range].qn-explorer-slider[data-key];
 * plots .qn-explorer-plot[data-plot]; numbers table .qn-explorer-numbers.
 */
/* global uPlot */
(function () {
  "use strict";
  const QE = window.quadnetExplorer;
  if (!QE || !QE.internal) throw new Error("qn-explorer.js needs qn-explorer-core.js loaded first");
  const I = QE.internal;
  const BASE = document.currentScript ? document.currentScript.src.replace(/[^/?#]*([?#].*)?$/, "") : "";
  const START_STREAM = 1 << 20;   // the start (G and the Wishart part of Q0) uses this stream of the seed
  const ESCAPE_STREAM = 1 << 21;  // the draws of the predicted escape time use this one
  const POINTS = 240;
  const ALPHA_MAX = 1000;
  const ESCAPE_DRAWS = 24;
  const CHAIN_DELAY_MS = 250;
  const CHAIN_MAX_STEPS = 5e7;     // per replica (about a minute): a chain at N = 10⁵ stops at α = 500

  // key, label, range; `log` sliders move log10 of the value
  const CONTROLS = [
    { key: "p", label: "p, student width", min: 1, max: 8, step: 1, value: 4, int: true },
    { key: "ps", label: "p*, teacher width", min: 1, max: 6, step: 1, value: 2, int: true },
    { key: "eta", label: "η = aγ, effective step", min: 0.005, max: 0.5, log: true, step: 0.01, value: 0.125 },
    { key: "q0", label: "q₀, initial weight variance", min: 0.05, max: 5, log: true, step: 0.01, value: 1 },
    { key: "N", label: "N, input dimension (chain)", min: 100, max: 100000, log: true, step: 0.01, value: 1000, int: true },
    { key: "sigma", label: "σ, label noise", min: 0, max: 0.5, step: 0.01, value: 0 },
    { key: "tau", label: "τ, teacher anisotropy", min: 0, max: 0.8, step: 0.05, value: 0 },
    { key: "R", label: "chain replicas", min: 0, max: 16, step: 1, value: 4, int: true },
  ];
  const BY_KEY = Object.fromEntries(CONTROLS.map((c) => [c.key, c]));

  function fmt(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "—";
    if (x === Infinity) return "never (stays above the escape level)";
    const d = digits === undefined ? 3 : digits;
    const ax = Math.abs(x);
    if (ax !== 0 && (ax < 1e-3 || ax >= 1e5)) return x.toExponential(d - 1).replace("e", "·10^").replace("+", "");
    return Number(x.toPrecision(d)).toString();
  }

  function clamp(x, lo, hi) { return Math.min(hi, Math.max(lo, x)); }

  function linspace(a, b, n) {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = a + (b - a) * i / (n - 1);
    return out;
  }

  // ------------------------------------------------------------------ state and URL

  function defaults() {
    const s = { hold: "eta", seed: 1 };
    for (const c of CONTROLS) s[c.key] = c.value;
    return s;
  }

  function sanitize(s) {
    for (const c of CONTROLS) {
      let v = Number(s[c.key]);
      if (!Number.isFinite(v)) v = c.value;
      v = clamp(v, c.min, c.max);
      s[c.key] = c.int ? Math.round(v) : v;
    }
    s.hold = s.hold === "gamma" ? "gamma" : "eta";
    s.seed = Number.isInteger(Number(s.seed)) && Number(s.seed) >= 0 && Number(s.seed) < 2 ** 32 ? Number(s.seed) : 1;
    return s;
  }

  function fromURL() {
    const s = defaults();
    const q = new URLSearchParams(window.location.search);
    for (const key of Object.keys(s)) if (q.has(key)) s[key] = key === "hold" ? q.get(key) : Number(q.get(key));
    return sanitize(s);
  }

  function queryOf(s) {
    const q = new URLSearchParams();
    for (const c of CONTROLS) q.set(c.key, c.int ? String(s[c.key]) : String(Number(s[c.key].toPrecision(4))));
    q.set("hold", s.hold);
    q.set("seed", String(s.seed));
    return "?" + q.toString();
  }

  function writeURL(s) {
    const url = queryOf(s) + window.location.hash;
    try {
      window.history.replaceState(window.history.state, "", url);
    } catch (err) {
      // file:// pages may refuse; the share link below still carries the settings
    }
    return url;
  }

  // ------------------------------------------------------------------ computations

  /** Everything derived from the settings on the main thread: start, theory, ODE. */
  function compute(s) {
    const p = s.p, ps = s.ps, a = 1 / p, b = 1 / ps, eta = s.eta, lr = eta / a, noise = s.sigma;
    const pDiag = teacherEigenvalues(ps, s.tau);
    const start = I.gaussianStart(p, ps, s.N, s.q0, pDiag, new I.Rng(s.seed, START_STREAM));
    const th = QE.theory(p, ps, a, b, lr, noise);
    // the horizon from the first of the prediction's draws (the mean over all of them follows
    // right after the plots, see Explorer.predict)
    const key = predictionKey(s);
    const esc = PREDICTIONS.get(key) || Object.assign(escapePrediction(s, 1), { mean: NaN, pending: true });
    const tPred = esc.pending ? esc.times[0] : esc.mean;
    const settled = esc.settled && Number.isFinite(esc.settled[0]) ? esc.settled[0] : NaN;
    let alphaMax = th.plateauExists ? ALPHA_MAX : 100;
    if (Number.isFinite(tPred)) alphaMax = clamp(2.5 * tPred, 20, ALPHA_MAX);
    else if (Number.isFinite(settled)) alphaMax = clamp(1.5 * settled, 20, ALPHA_MAX);  // p < p*: no escape
    const alphas = linspace(0, alphaMax, POINTS);
    const O0 = p >= ps ? I.polar(start.M, p, ps) : null;
    const sys = new I.OverlapODE(start.P, p, ps, a, b, lr, noise * noise);
    const y0 = new Float64Array(sys.n);
    y0.set(start.Q); y0.set(start.M, p * p);
    const run = I.integrateStates(sys, y0, Float64Array.from(alphas), { rtol: 1e-7, atol: 1e-10, blowup: I.BLOWUP, dense: true });
    const ode = emptyStats(POINTS, Math.min(p, ps));
    run.states.forEach((y, i) => {
      if (!y) return;
      const sm = I.summary(y.subarray(0, p * p), y.subarray(p * p), start.P, p, ps, a, b, noise, O0);
      ode.loss[i] = sm.loss; ode.trQ[i] = sm.trQ; ode.normM2[i] = sm.normM2; ode.align[i] = sm.align;
      sm.sv.forEach((v, c) => { ode.sv[c][i] = v; });
    });
    let trP2 = 0, trP = 0;
    for (const x of pDiag) { trP += x; trP2 += x * x; }
    return {
      s, p, ps, a, b, lr, eta, noise, pDiag, start, th, esc, alphas, O0, ode,
      odeDiverged: run.diverged, odeAlphaDiverged: run.alphaDiverged,
      odeEscape: Number.isFinite(th.escapeLevel) ? I.crossing(alphas, ode.loss, th.escapeLevel) : NaN,
      // the zero-loss solutions W = √(b/a) O W* (OᵀO = I) exist only for p ≥ p*
      manifold: p >= ps ? { trQ: (b / a) * trP / p, normM2: (b / a) * trP2, sv: pDiag.map((x) => Math.sqrt(b / a) * x) }
        : { trQ: NaN, normM2: NaN, sv: [NaN] },
    };
  }

  /** P = diag(1 + τ … 1 − τ), evenly spaced: mean 1, so tr P = p* as for an isotropic teacher. */
  function teacherEigenvalues(ps, tau) {
    return ps === 1 ? [1] : linspace(1 + tau, 1 - tau, ps);
  }

  /** Predicted escape time (chapter 4) of the settings, from `draws` seeded Gaussian starts. */
  function escapePrediction(s, draws) {
    const a = 1 / s.p, lr = s.eta / a;
    return QE.escapeTime(s.p, s.ps, a, 1 / s.ps, lr, s.sigma, s.N, s.q0, draws, (s.seed + ESCAPE_STREAM) >>> 0, null,
                         { rtol: 1e-6 });
  }

  function predictionKey(s) {
    return [s.p, s.ps, s.eta, s.q0, s.N, s.sigma, s.seed].join("|");
  }

  const PREDICTIONS = new Map();   // a small cache: dragging back and forth recomputes nothing

  function emptyStats(T, k) {
    return { loss: new Array(T).fill(NaN), trQ: new Array(T).fill(NaN), normM2: new Array(T).fill(NaN),
             align: new Array(T).fill(NaN), sv: Array.from({ length: k }, () => new Array(T).fill(NaN)) };
  }

  function chainJob(m, id) {
    const C0 = I.gram(m.start.Q, m.start.M, m.start.P, m.p, m.ps);
    return { id, C0: Array.from(C0), p: m.p, ps: m.ps, N: m.s.N, a: m.a, b: m.b, lr: m.lr, noise: m.noise,
             alphas: m.alphas, replicas: m.s.R, seed: m.s.seed, O0: m.O0 ? Array.from(m.O0) : null,
             maxSteps: CHAIN_MAX_STEPS };
  }

  // ------------------------------------------------------------------ the explorer

  class Explorer {
    constructor(root) {
      this.root = root;
      this.state = fromURL();
      this.charts = {};
      this.chains = [];
      this.chainInfo = [];
      this.model = null;
      this.jobId = 0;
      this.worker = null;
      this.pending = false;
      this.chainTimer = null;
      this.renders = 0;
      this.build();
      this.update(true);
      this.watchTheme();
      root.dataset.qnReady = "1";
    }

    // ---------------------------------------------------------------- DOM

    build() {
      const root = this.root;
      root.classList.add("tex2jax_ignore", "mathjax_ignore");
      root.innerHTML = "";
      const form = el("form", { class: "qn-explorer-controls", "aria-label": "Explorer settings" });
      form.addEventListener("submit", (e) => e.preventDefault());
      this.inputs = {};
      this.outputs = {};
      for (const c of CONTROLS) form.appendChild(this.slider(c));
      form.appendChild(this.holdSwitch());
      const buttons = el("div", { class: "qn-explorer-buttons" });
      const reseed = el("button", { type: "button", class: "qn-explorer-button" }, "New random start");
      reseed.addEventListener("click", () => { this.state.seed = (this.state.seed + 1) >>> 0; this.update(true); });
      const reset = el("button", { type: "button", class: "qn-explorer-button" }, "Reset");
      reset.addEventListener("click", () => { this.state = defaults(); this.syncInputs(); this.update(true); });
      const stop = el("button", { type: "button", class: "qn-explorer-button" }, "Stop the chains");
      stop.addEventListener("click", () => this.stopByReader());
      this.link = el("a", { class: "qn-explorer-link", href: "" }, "Link to this scenario");
      buttons.append(reseed, reset, stop, this.link);
      form.appendChild(buttons);
      this.warning = el("p", { class: "qn-explorer-warning", role: "note" });
      this.status = el("p", { class: "qn-explorer-status", "aria-live": "polite" });
      this.numbers = el("table", { class: "qn-explorer-numbers" });
      const plots = el("div", { class: "qn-explorer-plots" });
      this.plotBoxes = {};
      for (const [key, title] of PLOTS) {
        const fig = el("figure", { class: "qn-explorer-figure" });
        const box = el("div", { class: "qn-explorer-plot", "data-plot": key, role: "img" });
        fig.append(box, el("figcaption", {}, title));
        plots.appendChild(fig);
        this.plotBoxes[key] = box;
      }
      root.append(form, this.warning, plots, this.status, this.numbers);
      this.syncInputs();
    }

    slider(c) {
      const id = `${this.root.id || "qn-explorer"}-${c.key}`;
      const wrap = el("div", { class: "qn-explorer-control" });
      const label = el("label", { for: id }, c.label);
      const input = el("input", {
        type: "range", id, class: "qn-explorer-slider", "data-key": c.key,
        min: String(c.log ? Math.log10(c.min) : c.min), max: String(c.log ? Math.log10(c.max) : c.max),
        step: String(c.step),   // in log10 units for the log sliders
      });
      const out = el("output", { for: id, class: "qn-explorer-value" });
      input.addEventListener("input", () => this.onSlider(c, input));
      wrap.append(label, input, out);
      this.inputs[c.key] = input;
      this.outputs[c.key] = out;
      return wrap;
    }

    holdSwitch() {
      const fs = el("fieldset", { class: "qn-explorer-hold" });
      fs.appendChild(el("legend", {}, "When p changes, hold"));
      this.holdInputs = {};
      for (const [value, text] of [["eta", "η = aγ fixed"], ["gamma", "γ fixed (η = γ/p moves)"]]) {
        const id = `${this.root.id || "qn-explorer"}-hold-${value}`;
        const input = el("input", { type: "radio", name: `${this.root.id || "qn-explorer"}-hold`, id, value });
        input.addEventListener("change", () => { if (input.checked) { this.state.hold = value; this.update(false); } });
        fs.append(input, el("label", { for: id }, text));
        this.holdInputs[value] = input;
      }
      return fs;
    }

    syncInputs() {
      for (const c of CONTROLS) {
        const v = this.state[c.key];
        this.inputs[c.key].value = String(c.log ? Math.log10(v) : v);
        this.showValue(c);
      }
      this.holdInputs[this.state.hold].checked = true;
    }

    showValue(c) {
      const v = this.state[c.key];
      let text = c.int ? String(v) : fmt(v, 3);
      if (c.key === "eta") text += `  (γ = ${fmt(v * this.state.p, 3)})`;
      this.outputs[c.key].textContent = text;
      this.inputs[c.key].setAttribute("aria-valuetext", text);
    }

    onSlider(c, input) {
      const raw = Number(input.value);
      let v = c.log ? 10 ** raw : raw;
      if (c.int) v = Math.round(v);
      if (c.key === "p" && this.state.hold === "gamma") {
        const gamma = this.state.eta * this.state.p;     // γ = η/a with a = 1/p
        this.state.eta = clamp(gamma / v, BY_KEY.eta.min, BY_KEY.eta.max);
        this.inputs.eta.value = String(Math.log10(this.state.eta));
      }
      this.state[c.key] = v;
      this.update(false);
    }

    // ---------------------------------------------------------------- updates

    /** Recompute the ODE and theory on the next frame (coalescing a drag), then plan the chains. */
    update(now) {
      for (const c of CONTROLS) this.showValue(c);
      if (now) { this.recompute(); return; }
      if (this.pending) return;
      this.pending = true;
      window.requestAnimationFrame(() => { this.pending = false; this.recompute(); });
    }

    recompute() {
      const t0 = performance.now();
      this.stopChains();
      let model;
      try {
        model = compute(this.state);
      } catch (err) {
        this.status.textContent = `Cannot compute this setting: ${err.message}`;
        return;
      }
      this.model = model;
      this.chains = [];
      this.chainInfo = [];
      this.chainFinished = false;
      this.draw();
      this.showNumbers();
      this.showWarning();
      const ms = performance.now() - t0;
      this.root.dataset.qnUpdateMs = ms.toFixed(2);
      if (model.esc.pending) this.predictTimer = window.setTimeout(() => this.predict(), 0);
      this.status.textContent = model.s.R ? "Chain replicas start in a moment…" : "No chain replicas (set “chain replicas” above 0).";
      this.chainTimer = window.setTimeout(() => this.startChains(), CHAIN_DELAY_MS);
    }

    /** The predicted escape time: the mean over ESCAPE_DRAWS seeded starts (a few ms). */
    predict() {
      this.predictTimer = null;
      const m = this.model, t0 = performance.now();
      const esc = escapePrediction(m.s, ESCAPE_DRAWS);
      PREDICTIONS.set(predictionKey(m.s), esc);
      if (PREDICTIONS.size > 64) PREDICTIONS.delete(PREDICTIONS.keys().next().value);
      m.esc = esc;
      this.draw();
      this.showNumbers();
      this.root.dataset.qnPredictMs = (performance.now() - t0).toFixed(2);
    }

    /** Drop the running (or planned) chain job, and the pending prediction unless `keepPrediction`. */
    stopChains(keepPrediction) {
      if (this.predictTimer && !keepPrediction) { window.clearTimeout(this.predictTimer); this.predictTimer = null; }
      if (this.chainTimer) { window.clearTimeout(this.chainTimer); this.chainTimer = null; }
      if (this.worker) { this.worker.terminate(); this.worker = null; }
      if (this.sliceTimer) { window.clearTimeout(this.sliceTimer); this.sliceTimer = null; }
      this.jobId++;
      this.root.dataset.qnChain = "stopped";
    }

    stopByReader() {
      if (this.root.dataset.qnChain !== "running" && !this.chainTimer) return;
      this.stopChains(true);
      this.showStatus();
      this.status.textContent += " — stopped.";
    }

    startChains() {
      this.chainTimer = null;
      const m = this.model;
      this.link.href = writeURL(this.state);
      if (!m.s.R) { this.root.dataset.qnChain = "done"; return; }
      const job = chainJob(m, ++this.jobId);
      this.root.dataset.qnChain = "running";
      try {
        this.worker = new Worker(BASE + "qn-explorer-worker.js");
        this.worker.onmessage = (e) => this.onChain(e.data);
        this.worker.onerror = (e) => { e.preventDefault(); this.worker = null; this.runOnPage(job); };
        this.worker.postMessage(job);
        this.root.dataset.qnChainMode = "worker";
      } catch (err) {
        this.runOnPage(job);
      }
    }

    /** Without workers: the same job in 15 ms slices, so the page stays responsive. */
    runOnPage(job) {
      this.root.dataset.qnChainMode = "page";
      const runner = new I.ChainJob(job);
      const slice = () => {
        if (job.id !== this.jobId) return;
        const msg = runner.work(performance.now() + 15);
        if (msg === null) { this.onChain({ id: job.id, finished: true }); return; }
        this.onChain(msg);
        this.sliceTimer = window.setTimeout(slice, 0);
      };
      slice();
    }

    onChain(msg) {
      if (msg.id !== this.jobId) return;   // a message from a job already superseded
      if (msg.error) { this.status.textContent = `Chain failed: ${msg.error}`; return; }
      if (msg.finished) {
        this.chainFinished = true;
        if (this.worker) { this.worker.terminate(); this.worker = null; }
      } else {
        this.chains[msg.replica] = msg.stats;
        this.chainInfo[msg.replica] = msg;
      }
      this.scheduleChainDraw();
    }

    scheduleChainDraw() {
      if (this.chainDrawPending) return;
      this.chainDrawPending = true;
      window.requestAnimationFrame(() => {
        this.chainDrawPending = false;
        this.draw();
        this.showNumbers();
        this.showStatus();
        if (this.chainFinished) this.root.dataset.qnChain = "done";   // set once drawn
      });
    }

    showStatus() {
      const m = this.model, info = this.chainInfo;
      const done = info.filter((x) => x && x.done).length;
      const div = info.filter((x) => x && x.diverged).length;
      const cur = info.find((x) => x && !x.done);
      let text = `Exact chain at N = ${m.s.N}: ${done} of ${m.s.R} replicas done`;
      if (div) text += ` (${div} diverged)`;
      if (cur) text += `; replica ${cur.replica + 1} at α = ${fmt(cur.alphaReached, 3)} of ${fmt(m.alphas[POINTS - 1], 3)}`;
      if (info.some((x) => x && x.capped)) text += `; each replica stops after ${fmt(CHAIN_MAX_STEPS)} steps (α = ${fmt(CHAIN_MAX_STEPS / m.s.N, 3)})`;
      this.status.textContent = text + (this.root.dataset.qnChainMode === "page" ? " (computed on the page)" : "");
    }

    showWarning() {
      const m = this.model, th = m.th;
      const etaC = th.criticalLr * m.a, etaM = th.manifoldCriticalLr * m.a;
      const parts = [];
      if (!th.plateauExists) parts.push(`η is above η_c = ${fmt(etaC)}: the plateau does not exist.`);
      else if (m.eta > etaM) parts.push(`η is above η_m = ${fmt(etaM)}: the solution manifold does not attract (the loss does not reach zero).`);
      if (m.odeDiverged) parts.push(`The ODE from this start diverges at α ≈ ${fmt(m.odeAlphaDiverged)}${th.plateauExists ? " although η < η_c: the threshold depends on the start" : ""}.`);
      if (m.s.tau > 0) parts.push("Theory lines assume an isotropic teacher (τ = 0).");
      this.warning.textContent = parts.join(" ");
      this.warning.hidden = parts.length === 0;
    }

    showNumbers() {
      const m = this.model, th = m.th;
      const esc = chainEscapes(this, m);
      const last = m.ode.align.filter(Number.isFinite).pop();
      const rows = [
        ["plateau loss ε_pl (theory)", fmt(th.plateauLoss, 4)],
        ["η_c = aγ_c: above it the plateau does not exist", `${fmt(th.criticalLr * m.a, 4)}  (γ_c = ${fmt(th.criticalLr, 4)})`],
        ["η_m = aγ_m: above it the solution manifold is unstable", `${fmt(th.manifoldCriticalLr * m.a, 4)}  (γ_m = ${fmt(th.manifoldCriticalLr, 4)})`],
        ["escape rate r at the plateau", fmt(th.escapeRate, 4)],
        ["noise seed κ (units of 1/N)", fmt(m.esc.kappa, 3)],
        [`predicted escape α (mean of ${ESCAPE_DRAWS} Gaussian starts, P = I)`, m.esc.pending ? "computing…" : fmt(m.esc.mean, 4)],
        ["ODE escape α (this start)", m.odeDiverged ? `diverges at α ≈ ${fmt(m.odeAlphaDiverged)}` : fmt(m.odeEscape, 4)],
        ["chain escape α (mean ± s.e. over finished replicas)", esc],
        ["alignment with the Procrustes point of the start (ODE, end)", m.O0 ? fmt(last, 4) : "— (needs p ≥ p*)"],
        ["time of the last update (ODE, theory, plots)", `${this.root.dataset.qnUpdateMs || "—"} ms`],
      ];
      this.numbers.innerHTML = "";
      const body = el("tbody");
      for (const [k, v] of rows) {
        const tr = el("tr");
        tr.append(el("th", { scope: "row" }, k), el("td", {}, v));
        body.appendChild(tr);
      }
      this.numbers.appendChild(body);
    }

    // ---------------------------------------------------------------- plots

    draw() {
      const t0 = performance.now();
      const m = this.model;
      const shape = `${m.p}|${m.ps}|${m.s.R}|${this.theme()}`;
      const width = this.plotWidth();
      for (const [key] of PLOTS) {
        const spec = plotSpec(key, m, this.chains);
        const box = this.plotBoxes[key];
        box.setAttribute("aria-label", spec.label);
        let chart = this.charts[key];
        if (!chart || chart.shape !== shape || chart.u.series.length !== spec.series.length + 1) {
          if (chart) chart.u.destroy();
          const u = new uPlot(chartOptions(spec, width, this.colors()), spec.data, box);
          chart = this.charts[key] = { u, shape };
        } else {
          chart.u.setData(spec.data);
        }
        chart.u.markers = spec.markers;
        chart.u.redraw(false, false);
      }
      this.renders++;
      this.root.dataset.qnRenders = String(this.renders);
      this.root.dataset.qnDrawMs = (performance.now() - t0).toFixed(2);
    }

    plotWidth() {
      return Math.max(240, Math.floor(this.plotBoxes.loss.parentElement.clientWidth || 320));
    }

    theme() {
      const t = document.documentElement.dataset.theme;
      if (t === "dark" || t === "light") return t;
      return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    }

    colors() {
      const cs = getComputedStyle(this.root);
      const v = (name, fallback) => (cs.getPropertyValue(name) || "").trim() || fallback;
      return { fg: v("--qn-fg", "#222"), grid: v("--qn-grid", "#ddd"), ode: v("--qn-ode", "#1f5fbf"),
               chain: v("--qn-chain", "#e07b00"), theory: v("--qn-theory", "#666"), marker: v("--qn-marker", "#2a9d3a"),
               bad: v("--qn-bad", "#c0392b") };
    }

    /** Rebuild the charts when the light/dark theme or the width changes. */
    watchTheme() {
      const rebuild = () => {
        for (const key of Object.keys(this.charts)) { this.charts[key].u.destroy(); delete this.charts[key]; }
        if (this.model) this.draw();
      };
      new MutationObserver(rebuild).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
      if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", rebuild);
      let lastWidth = this.plotWidth();
      if (window.ResizeObserver) {
        new ResizeObserver(() => {
          const w = this.plotWidth();
          if (Math.abs(w - lastWidth) > 4) { lastWidth = w; for (const c of Object.values(this.charts)) c.u.setSize({ width: w, height: 220 }); }
        }).observe(this.root);
      }
    }
  }

  const PLOTS = [
    ["loss", "Population loss ε(α), log scale: ODE, exact-chain replicas, plateau (theory) and escape times"],
    ["trq", "tr Q / p: the student's squared norm per unit, with its plateau and solution values"],
    ["m2", "‖M‖²: overlap with the teacher, log scale; the dashed line is linear growth at the plateau rate from the noise-seeded start"],
    ["sv", "Singular values of M (ODE; chain replica 1 thin), log scale, and their value on the solution manifold"],
    ["align", "Alignment with the Procrustes point of the start: tr(polar(M)ᵀ polar(M₀)) / p*"],
  ];

  function chainEscapes(ex, m) {
    if (!Number.isFinite(m.th.escapeLevel)) return "—";
    const times = [];
    ex.chainInfo.forEach((info, r) => {
      if (!info || !info.done) return;
      const t = I.crossing(m.alphas, ex.chains[r].loss, m.th.escapeLevel);
      if (Number.isFinite(t)) times.push(t);
    });
    if (!times.length) return ex.chainInfo.some((x) => x && x.done) ? "not within the plotted range" : "—";
    const mean = times.reduce((x, y) => x + y, 0) / times.length;
    if (times.length < 2) return `${fmt(mean, 4)} (1 replica)`;
    const sd = Math.sqrt(times.reduce((x, y) => x + (y - mean) ** 2, 0) / (times.length - 1));
    return `${fmt(mean, 4)} ± ${fmt(sd / Math.sqrt(times.length), 2)} (${times.length} replicas)`;
  }

  /** Data, series and markers of one plot. */
  function plotSpec(key, m, chains) {
    const x = m.alphas, T = x.length, th = m.th;
    const clean = (arr) => arr.map((v) => (Number.isFinite(v) ? v : null));
    const pos = (arr) => arr.map((v) => (Number.isFinite(v) && v > 0 ? v : null));
    const flat = (v) => new Array(T).fill(Number.isFinite(v) ? v : null);
    const series = [], data = [x];
    const add = (label, values, kind) => { series.push({ label, kind }); data.push(values); };
    const chainSeries = (field, tx) => chains.forEach((c, r) => { if (c) add(`chain ${r + 1}`, tx(c[field]), "chain"); });
    const markers = [];
    if (Number.isFinite(m.esc.mean)) markers.push({ x: m.esc.mean, label: "predicted escape", kind: "theory" });
    if (Number.isFinite(m.odeEscape)) markers.push({ x: m.odeEscape, label: "ODE escape", kind: "marker" });
    if (m.odeDiverged) markers.push({ x: m.odeAlphaDiverged, label: "ODE diverges", kind: "bad" });
    let label = "", log = false, range = null;
    if (key === "loss") {
      log = true;
      add("ODE", pos(m.ode.loss), "ode");
      chainSeries("loss", pos);
      add("plateau (theory)", flat(th.plateauLoss), "theory");
      label = `Loss against α up to ${fmt(x[T - 1])}; plateau loss ${fmt(th.plateauLoss)}; predicted escape at α ≈ ${fmt(m.esc.mean)}, ODE escape at ${fmt(m.odeEscape)}.`;
    } else if (key === "trq") {
      add("ODE", clean(m.ode.trQ), "ode");
      chainSeries("trQ", clean);
      add("plateau q (theory)", flat(th.plateauQ), "theory");
      add("solution (b/a) tr P / p", flat(m.manifold.trQ), "theory2");
      label = `tr Q / p against α: plateau value ${fmt(th.plateauQ)}, solution value ${fmt(m.manifold.trQ)}.`;
    } else if (key === "m2") {
      log = true;
      add("ODE", pos(m.ode.normM2), "ode");
      chainSeries("normM2", pos);
      add("solution (b/a) tr P²", flat(m.manifold.normM2), "theory2");
      const m0 = (m.s.q0 + m.esc.kappa) * m.p * m.ps / m.s.N;
      const grow = x.map((a) => (Number.isFinite(th.escapeRate) && Number.isFinite(m0) ? m0 * Math.exp(2 * th.escapeRate * a) : null))
        .map((v) => (v !== null && !(v > 3 * (Number.isFinite(m.manifold.normM2) ? m.manifold.normM2 : m.p)) ? v : null));
      add("(q₀+κ)pp*/N · exp(2rα)", grow, "theory");
      label = `Squared norm of M against α, from ${fmt(m.ode.normM2[0])} to the solution value ${fmt(m.manifold.normM2)}.`;
    } else if (key === "sv") {
      log = true;
      m.ode.sv.forEach((s, c) => add(`ODE s${c + 1}`, pos(s), "ode"));
      if (chains[0]) chains[0].sv.forEach((s, c) => add(`chain 1 s${c + 1}`, pos(s), "chain"));
      const levels = [...new Set(m.manifold.sv.map((v) => (Number.isFinite(v) ? Number(v.toPrecision(12)) : NaN)))];
      levels.forEach((v, c) => add(c ? `solution ${c + 1}` : "solution √(b/a)·eig P", flat(v), "theory2"));
      label = `The ${m.ode.sv.length} singular values of M against α; on the solution manifold they are √(b/a) times the teacher's eigenvalues.`;
    } else {
      range = [-1.05, 1.05];
      add("ODE", clean(m.ode.align), "ode");
      chainSeries("align", clean);
      add("Procrustes point", flat(m.O0 ? 1 : NaN), "theory2");
      label = m.O0 ? `Alignment with the closest solution to the start against α; 1 is the Procrustes point. ODE ends at ${fmt(m.ode.align.filter(Number.isFinite).pop())}.`
        : "The alignment needs p ≥ p*.";
    }
    return { series, data, markers, log, range, label };
  }

  function chartOptions(spec, width, col) {
    const style = {
      ode: { stroke: col.ode, width: 2 },
      chain: { stroke: col.chain, width: 1, alpha: 0.7 },
      theory: { stroke: col.theory, width: 1.25, dash: [6, 4] },
      theory2: { stroke: col.marker, width: 1.25, dash: [2, 3] },
    };
    const series = [{ label: "α" }].concat(spec.series.map((s) => Object.assign({ label: s.label, spanGaps: false, points: { show: false } },
      style[s.kind], { value: (u, v) => (v === null || v === undefined ? "—" : fmt(v, 4)) })));
    const axis = { stroke: col.fg, grid: { stroke: col.grid, width: 1 }, ticks: { stroke: col.grid, width: 1 } };
    const y = spec.log ? { distr: 3 } : (spec.range ? { range: spec.range } : {});
    return {
      width, height: 220, series,
      scales: { x: { time: false }, y },
      axes: [Object.assign({ label: "α = samples / N" }, axis), Object.assign({ size: 60 }, axis)],
      legend: { live: false },
      cursor: { drag: { x: true, y: false } },
      hooks: { draw: [(u) => drawMarkers(u, col)] },
    };
  }

  /** Vertical lines at the escape times (and divergence), with labels. */
  function drawMarkers(u, col) {
    const ctx = u.ctx, { left, top, width, height } = u.bbox;
    const dpr = window.devicePixelRatio || 1;
    ctx.save();
    ctx.font = `${11 * dpr}px sans-serif`;
    (u.markers || []).forEach((mk, i) => {
      const x = u.valToPos(mk.x, "x", true);
      if (!(x >= left && x <= left + width)) return;
      ctx.strokeStyle = mk.kind === "bad" ? col.bad : (mk.kind === "theory" ? col.theory : col.marker);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.lineWidth = 1.25 * dpr;
      ctx.setLineDash(mk.kind === "theory" ? [6 * dpr, 4 * dpr] : [2 * dpr, 2 * dpr]);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
      ctx.fillText(mk.label, x + 3 * dpr, top + (12 + 13 * i) * dpr);
    });
    ctx.restore();
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function mountAll() {
    if (typeof uPlot === "undefined") {
      for (const root of document.querySelectorAll(".qn-explorer")) {
        root.textContent = "The explorer could not load its charting library (uPlot).";
      }
      return;
    }
    QE.explorers = [];
    for (const root of document.querySelectorAll(".qn-explorer")) {
      if (!root.dataset.qnReady) QE.explorers.push(new Explorer(root));
    }
  }

  QE.mountAll = mountAll;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
