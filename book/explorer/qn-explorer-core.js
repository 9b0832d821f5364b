/*
 * qn-explorer-core.js — the overlap dynamics of one-pass SGD in quadratic networks, computed in
 * the browser (chapter 8 of the quadnet book). No dependencies; runs on a page (defines
 * window.quadnetExplorer), in a Web Worker (importScripts) and under Node (module.exports).
 *
 * It is a port of the Python package quadnet, and the tests (tests/site/test_explorer_js.py)
 * hold it to it:
 *   odeRhs     quadnet.ode_rhs             (chapter 2: the overlap ODEs, γ² and label-noise terms)
 *   integrate  quadnet.integrate_ode       (adaptive Dormand–Prince 5(4), divergence detection)
 *   chain      quadnet.sgd_overlaps        (chapter 1: the exact finite-N chain of the overlaps)
 *   theory     quadnet.plateau, critical_lr, manifold_critical_lr, escape_rate (chapters 2–4)
 *   escapeTime the predicted escape time from a Gaussian start (chapter 4: the reduced ODE of the
 *              singular values of M, seeded with variance q0 + κ)
 * Public functions take positional arguments; matrices are arrays of row arrays. Bad input
 * throws a TypeError or RangeError that names the parameter.
 *
 * Random numbers: xoshiro128** (Blackman & Vigna, 2018), a 32-bit generator with period
 * 2^128 − 1. Stream `stream` of seed `seed` starts from four successive splitmix32 outputs of
 * the key fmix32(fmix32(seed) + 0x9e3779b9·(stream + 1)) (fmix32: MurmurHash3's finalizer), so
 * chain replica r draws the same numbers whatever the number of replicas. Uniforms on (0, 1)
 * carry 53 bits (two outputs); normals come from the Box–Muller transform (both values used);
 * Gamma(k) from Marsaglia & Tsang (2000), with Gamma(k) = Gamma(k + 1)·U^{1/k} for k < 1;
 * χ²_ν = 2·Gamma(ν/2).
 */
(function (root, factory) {
  "use strict";
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.quadnetExplorer = Object.assign(root.quadnetExplorer || {}, api);
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const VERSION = "1.0.0";
  const BLOWUP = 1e3;      // divergence: tr Q > BLOWUP · max(tr Q0, (b/a) tr P, 1), as in quadnet
  const SD_TOL = 1e-12;    // semidefinite Cholesky: a pivot ≤ SD_TOL·C_jj is a zero direction
  const PSD_TOL = 1e-6;    // inputs: eigenvalues of [[Q, M], [Mᵀ, P]] down to −PSD_TOL·tr C pass

  // ------------------------------------------------------------------ input checks

  function num(name, x) {
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw new TypeError(`${name} must be a finite number, got ${String(x)}`);
    }
    return x;
  }

  function positive(name, x, allowZero) {
    num(name, x);
    if (allowZero ? x < 0 : x <= 0) {
      throw new RangeError(`${name} must be ${allowZero ? "≥ 0" : "> 0"}, got ${x}`);
    }
    return x;
  }

  function integer(name, x, min) {
    num(name, x);
    if (!Number.isInteger(x) || x < min) {
      throw new RangeError(`${name} must be an integer ≥ ${min}, got ${x}`);
    }
    return x;
  }

  /** An array of `rows` rows of `cols` finite numbers → row-major Float64Array. */
  function matrix(name, X, rows, cols) {
    if (!Array.isArray(X) || (rows !== undefined && X.length !== rows) || X.length < 1) {
      throw new TypeError(`${name} must be an array of ${rows === undefined ? "" : rows + " "}row arrays`);
    }
    const n = X.length;
    const m = cols === undefined ? (Array.isArray(X[0]) ? X[0].length : -1) : cols;
    const out = new Float64Array(n * m);
    for (let i = 0; i < n; i++) {
      const row = X[i];
      if (!Array.isArray(row) && !ArrayBuffer.isView(row)) {
        throw new TypeError(`${name} must be an array of row arrays (row ${i} is not an array)`);
      }
      if (row.length !== m || m < 1) {
        throw new RangeError(`${name} must have ${n} rows of ${m} entries; row ${i} has ${row.length}`);
      }
      for (let j = 0; j < m; j++) {
        const v = row[j];
        if (typeof v !== "number" || !Number.isFinite(v)) {
          throw new TypeError(`${name}[${i}][${j}] must be a finite number, got ${String(v)}`);
        }
        out[i * m + j] = v;
      }
    }
    return out;
  }

  function rowsOf(A, n, m) {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = Array.from(A.subarray(i * m, (i + 1) * m));
    return out;
  }

  /** Q (p×p), M (p×p*), P (p*×p*) from arrays of rows, checked like quadnet's overlap_triple. */
  function overlaps(Q, M, P, names) {
    const [nQ, nM, nP] = names || ["Q", "M", "P"];
    if (!Array.isArray(M) || !Array.isArray(M[0])) throw new TypeError(`${nM} must be an array of row arrays`);
    const p = M.length;
    const ps = M[0].length;
    const Mf = matrix(nM, M, p, ps);
    const Qf = matrix(nQ, Q, p, p);
    const Pf = matrix(nP, P, ps, ps);
    checkGram(Qf, Mf, Pf, p, ps, [nQ, nM, nP]);
    return { Q: Qf, M: Mf, P: Pf, p, ps };
  }

  function gram(Q, M, P, p, ps) {
    const d = p + ps;
    const C = new Float64Array(d * d);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < p; j++) C[i * d + j] = Q[i * p + j];
      for (let j = 0; j < ps; j++) {
        C[i * d + p + j] = M[i * ps + j];
        C[(p + j) * d + i] = M[i * ps + j];
      }
    }
    for (let i = 0; i < ps; i++) for (let j = 0; j < ps; j++) C[(p + i) * d + p + j] = P[i * ps + j];
    return C;
  }

  /** Q, P symmetric and [[Q, M], [Mᵀ, P]] positive semidefinite to PSD_TOL (relative). */
  function checkGram(Q, M, P, p, ps, names) {
    for (const [name, S, n] of [[names[0], Q, p], [names[2], P, ps]]) {
      let big = 0;
      for (let i = 0; i < n * n; i++) big = Math.max(big, Math.abs(S[i]));
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < i; j++) {
          if (Math.abs(S[i * n + j] - S[j * n + i]) > PSD_TOL * big) {
            throw new RangeError(`${name} must be symmetric (an overlap matrix)`);
          }
        }
      }
    }
    const d = p + ps;
    const C = gram(Q, M, P, p, ps);
    let tr = 0;
    for (let i = 0; i < d; i++) tr += C[i * d + i];
    // Cholesky of C + PSD_TOL·tr C·I succeeds iff every eigenvalue of C exceeds −PSD_TOL·tr C
    for (let i = 0; i < d; i++) C[i * d + i] += PSD_TOL * Math.max(tr, 1e-300);
    const L = new Float64Array(d * d);
    for (let j = 0; j < d; j++) {
      let s = C[j * d + j];
      for (let k = 0; k < j; k++) s -= L[j * d + k] * L[j * d + k];
      if (!(s > 0)) {
        throw new RangeError(
          `[[${names[0]}, ${names[1]}], [${names[1]}ᵀ, ${names[2]}]] must be positive semidefinite (a Gram matrix of overlaps)`);
      }
      const ljj = Math.sqrt(s);
      L[j * d + j] = ljj;
      for (let i = j + 1; i < d; i++) {
        let t = C[i * d + j];
        for (let k = 0; k < j; k++) t -= L[i * d + k] * L[j * d + k];
        L[i * d + j] = t / ljj;
      }
    }
  }

  function alphaGrid(alphas) {
    if (!Array.isArray(alphas) && !ArrayBuffer.isView(alphas)) throw new TypeError("alphas must be an array of times");
    if (alphas.length < 1) throw new RangeError("alphas must hold at least one time");
    const out = Float64Array.from(alphas);
    for (let i = 0; i < out.length; i++) {
      num(`alphas[${i}]`, out[i]);
      if (out[i] < 0) throw new RangeError(`alphas must be ≥ 0, got ${out[i]}`);
      if (i && !(out[i] > out[i - 1])) throw new RangeError("alphas must be strictly increasing");
    }
    return out;
  }

  // ------------------------------------------------------------------ the overlap ODEs

  /**
   * The ODE system for fixed (P, a, b, γ, σ²); state y = [Q (p·p, row-major), M (p·p*)].
   *   dM/dα = 2aγ [tr D M + 2(b M P − a Q M)]
   *   dQ/dα = 4aγ [tr D Q + 2 G] + 4a²γ² [(2ε₀ + σ²) Q + 4 tr D G + 8 (b² M P Mᵀ − ab (MMᵀQ + QMMᵀ) + a² Q³)]
   * with tr D = b tr P − a tr Q, G = b MMᵀ − a Q², ε₀ the loss without noise (quadnet.ode._rhs).
   */
  class OverlapODE {
    constructor(P, p, ps, a, b, lr, noise2) {
      this.P = P; this.p = p; this.ps = ps;
      this.a = a; this.b = b; this.lr = lr; this.noise2 = noise2;
      this.n = p * p + p * ps;
      let trP = 0, fro2P = 0;
      for (let i = 0; i < ps; i++) trP += P[i * ps + i];
      for (let i = 0; i < ps * ps; i++) fro2P += P[i] * P[i];
      this.trP = trP; this.fro2P = fro2P;
      this.MMt = new Float64Array(p * p);
      this.QQ = new Float64Array(p * p);
      this.MP = new Float64Array(p * ps);
      this.G = new Float64Array(p * p);
      this.MMtQ = new Float64Array(p * p);
    }

    trQ(y) {
      const p = this.p;
      let t = 0;
      for (let i = 0; i < p; i++) t += y[i * p + i];
      return t;
    }

    /** ε_g = ½ tr D² + b² ‖P‖² − 2ab ‖M‖² + a² ‖Q‖² + σ²/2 (quadnet.population_loss). */
    loss(y, withNoise) {
      const { p, ps, a, b } = this;
      const pp = p * p;
      let q2 = 0, m2 = 0;
      for (let i = 0; i < pp; i++) q2 += y[i] * y[i];
      for (let i = 0; i < p * ps; i++) m2 += y[pp + i] * y[pp + i];
      const trD = b * this.trP - a * this.trQ(y);
      return 0.5 * trD * trD + b * b * this.fro2P - 2 * a * b * m2 + a * a * q2
        + (withNoise === false ? 0 : 0.5 * this.noise2);
    }

    rhs(y, dy) {
      const { p, ps, a, b, lr, P, MMt, QQ, MP, G, MMtQ } = this;
      const pp = p * p;
      const Q = y, off = pp;   // M[i][k] = y[off + i·ps + k]
      const trD = b * this.trP - a * this.trQ(y);
      for (let i = 0; i < p; i++) {
        for (let j = 0; j < p; j++) {
          let s = 0, t = 0;
          for (let k = 0; k < ps; k++) s += y[off + i * ps + k] * y[off + j * ps + k];
          for (let k = 0; k < p; k++) t += Q[i * p + k] * Q[k * p + j];
          MMt[i * p + j] = s;
          QQ[i * p + j] = t;
        }
        for (let j = 0; j < ps; j++) {
          let s = 0;
          for (let k = 0; k < ps; k++) s += y[off + i * ps + k] * P[k * ps + j];
          MP[i * ps + j] = s;
        }
      }
      const g = a * lr;
      for (let i = 0; i < p; i++) {
        for (let j = 0; j < ps; j++) {
          let qm = 0;
          for (let k = 0; k < p; k++) qm += Q[i * p + k] * y[off + k * ps + j];
          const m = y[off + i * ps + j];
          dy[off + i * ps + j] = 2 * g * (trD * m + 2 * (b * MP[i * ps + j] - a * qm));
        }
      }
      for (let i = 0; i < pp; i++) {
        G[i] = b * MMt[i] - a * QQ[i];
        dy[i] = 4 * g * (trD * Q[i] + 2 * G[i]);
      }
      // γ² (SGD-noise) term
      const twoEps = 2 * this.loss(y, false) + this.noise2;
      for (let i = 0; i < p; i++) {
        for (let j = 0; j < p; j++) {
          let s = 0;
          for (let k = 0; k < p; k++) s += MMt[i * p + k] * Q[k * p + j];
          MMtQ[i * p + j] = s;
        }
      }
      const g2 = 4 * g * g;
      for (let i = 0; i < p; i++) {
        for (let j = 0; j < p; j++) {
          let mpm = 0, qqq = 0;
          for (let k = 0; k < ps; k++) mpm += MP[i * ps + k] * y[off + j * ps + k];
          for (let k = 0; k < p; k++) qqq += QQ[i * p + k] * Q[k * p + j];
          const cubic = b * b * mpm - a * b * (MMtQ[i * p + j] + MMtQ[j * p + i]) + a * a * qqq;
          const ij = i * p + j;
          dy[ij] += g2 * (twoEps * Q[ij] + 4 * trD * G[ij] + 8 * cubic);
        }
      }
    }
  }

  // ------------------------------------------------------------------ Dormand–Prince 5(4)

  const DP = {
    c: [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1],
    a: [
      [],
      [1 / 5],
      [3 / 40, 9 / 40],
      [44 / 45, -56 / 15, 32 / 9],
      [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
      [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
      [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
    ],
    // b5 − b4: the embedded error estimate
    e: [71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40],
    // continuous extension of order 4 (Hairer & Wanner's dopri5, CONTD5)
    d: [-12715105075 / 11282082432, 0, 87487479700 / 32700410799, -10690763975 / 1880347072,
        701980252875 / 199316789632, -1453857185 / 822651844, 69997945 / 29380423],
  };

  /**
   * Adaptive Dormand–Prince 5(4) with the error norm and step-size rule of Hairer, Nørsett &
   * Wanner (Solving ODEs I, II.4): err = RMS of the embedded error over atol + rtol·max(|y|, |y'|),
   * h ← h·clip(0.9·err^(−1/5), 0.2, 10); first step from their starting-step heuristic.
   * `f(y, dy)` is autonomous. `advance(tMax)` takes one accepted step, never past tMax.
   */
  class DoPri {
    constructor(f, y0, t0, rtol, atol) {
      this.f = f; this.n = y0.length;
      this.rtol = rtol; this.atol = atol;
      this.t = t0; this.y = Float64Array.from(y0);
      this.tPrev = t0; this.yPrev = Float64Array.from(y0);
      this.k = []; for (let i = 0; i < 7; i++) this.k.push(new Float64Array(this.n));
      this.tmp = new Float64Array(this.n);
      this.ynew = new Float64Array(this.n);
      this.steps = 0; this.evals = 0;
      f(this.y, this.k[0]); this.evals++;
      this.h = this.initialStep();
    }

    norm(v, yref) {
      let s = 0;
      for (let i = 0; i < this.n; i++) {
        const sc = this.atol + this.rtol * Math.abs(yref[i]);
        s += (v[i] / sc) ** 2;
      }
      return Math.sqrt(s / this.n);
    }

    initialStep() {
      const { y, k, tmp } = this;
      const d0 = this.norm(y, y), d1 = this.norm(k[0], y);
      let h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * d0 / d1;
      for (let i = 0; i < this.n; i++) tmp[i] = y[i] + h0 * k[0][i];
      const f1 = this.k[1];
      this.f(tmp, f1); this.evals++;
      for (let i = 0; i < this.n; i++) tmp[i] = f1[i] - k[0][i];
      const d2 = this.norm(tmp, y) / h0;
      const h1 = Math.max(d1, d2) <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : (0.01 / Math.max(d1, d2)) ** 0.2;
      return Math.min(100 * h0, h1);
    }

    /** One Dormand–Prince step of size h from (y = yStart, k[0] = f(yStart)) into `out`;
     * returns the error norm. Leaves f(out) in k[6] (first-same-as-last). */
    trial(yStart, h, out) {
      const { k, tmp, n } = this;
      for (let s = 1; s < 7; s++) {
        const row = DP.a[s];
        for (let i = 0; i < n; i++) {
          let acc = 0;
          for (let j = 0; j < s; j++) acc += row[j] * k[j][i];
          tmp[i] = yStart[i] + h * acc;
        }
        if (s === 6) out.set(tmp);
        this.f(tmp, k[s]); this.evals++;
      }
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let j = 0; j < 7; j++) acc += DP.e[j] * k[j][i];
        tmp[i] = h * acc;
      }
      let s = 0;
      for (let i = 0; i < n; i++) {
        const sc = this.atol + this.rtol * Math.max(Math.abs(yStart[i]), Math.abs(out[i]));
        s += (tmp[i] / sc) ** 2;
      }
      return Math.sqrt(s / n);
    }

    /** Advance by one accepted step, not past tMax (an output time is landed on exactly).
     * Returns false if the step size underflows. */
    advance(tMax) {
      const wanted = this.h;
      let h = wanted;
      for (;;) {
        const landing = this.t + h >= tMax;
        if (landing) h = tMax - this.t;
        if (!(h > 1e-14 * Math.max(1, Math.abs(this.t)))) return false;
        const err = this.trial(this.y, h, this.ynew);
        if (err <= 1) {
          const fac = err === 0 ? 10 : Math.min(10, Math.max(0.2, 0.9 * err ** -0.2));
          this.tPrev = this.t; this.yPrev.set(this.y);
          this.t = landing ? tMax : this.t + h;
          this.y.set(this.ynew);
          const k0 = this.k[0]; this.k[0] = this.k[6]; this.k[6] = k0;  // first same as last
          this.steps++;
          // a step shortened to land on tMax says little about the next one: keep the wanted size
          this.h = landing ? Math.max(h * fac, Math.min(wanted, h * 10)) : h * fac;
          return true;
        }
        h *= Number.isFinite(err) ? Math.max(0.2, 0.9 * err ** -0.2) : 0.2;
      }
    }
  }

  /** y at tPrev ≤ t ≤ this.t from the last accepted step (dense output, 4th order); valid
   * until the next step or trial. After the first-same-as-last swap k[6] holds f(yPrev) and
   * k[0] holds f(y). */
  DoPri.prototype.interpolate = function (t, out) {
    const h = this.t - this.tPrev, th = h > 0 ? (t - this.tPrev) / h : 1, th1 = 1 - th;
    const { k, y, yPrev, n } = this, d = DP.d;
    for (let i = 0; i < n; i++) {
      const r2 = y[i] - yPrev[i];
      const r3 = h * k[6][i] - r2;
      const r4 = r2 - h * k[0][i] - r3;
      const r5 = h * (d[0] * k[6][i] + d[2] * k[2][i] + d[3] * k[3][i] + d[4] * k[4][i] + d[5] * k[5][i] + d[6] * k[0][i]);
      out[i] = yPrev[i] + th * (r2 + th1 * (r3 + th * (r4 + th1 * r5)));
    }
    return out;
  };

  /**
   * Integrate the overlap ODEs from y0 at alphas[0], returning the states at `alphas`: stepping
   * onto each output time (`opts.dense` false, the API's default: the most accurate) or stepping
   * freely and interpolating (`opts.dense` true: what the page uses, far fewer steps).
   * Divergence (tr Q > blowup·max(tr Q0, (b/a) tr P, 1), a non-finite state, or a step size
   * collapsing with tr Q already past √limit) stops the run: states after it are null.
   */
  function integrateStates(sys, y0, al, opts) {
    const rtol = opts.rtol, atol = opts.atol;
    const maxSteps = opts.maxSteps || 2e6;
    const limit = opts.blowup * Math.max(sys.trQ(y0), (sys.b / sys.a) * sys.trP, 1);
    const states = new Array(al.length).fill(null);
    states[0] = Float64Array.from(y0);
    const solver = new DoPri((y, dy) => sys.rhs(y, dy), y0, al[0], rtol, atol);
    const tEnd = al[al.length - 1];
    let diverged = false, alphaDiverged = NaN;
    for (let i = 1; i < al.length && !diverged; i++) {
      while (solver.t < al[i]) {
        const ok = solver.advance(opts.dense ? tEnd : al[i]);
        const tr = sys.trQ(solver.y);
        if (!ok || !(tr <= limit)) {
          if (ok || !(tr < Math.sqrt(limit))) {
            diverged = true; alphaDiverged = solver.t; break;
          }
          throw new RangeError(`integrate: the step size collapsed at α = ${solver.t} without a divergence`);
        }
        if (solver.steps > maxSteps) throw new RangeError(`integrate: more than ${maxSteps} steps (α = ${solver.t})`);
      }
      if (diverged) break;
      states[i] = opts.dense ? solver.interpolate(al[i], new Float64Array(sys.n)) : Float64Array.from(solver.y);
    }
    return { states, diverged, alphaDiverged, steps: solver.steps, evals: solver.evals };
  }

  // ------------------------------------------------------------------ random numbers

  function fmix32(h) {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** xoshiro128** with splitmix32 seeding (see the header). */
  class Rng {
    constructor(seed, stream) {
      integer("seed", seed, 0);
      if (seed > 0xffffffff) throw new RangeError(`seed must be < 2^32, got ${seed}`);
      let key = (fmix32(fmix32(seed >>> 0) + Math.imul(0x9e3779b9, (stream || 0) + 1)) >>> 0);
      const s = new Uint32Array(4);
      for (let i = 0; i < 4; i++) {                       // splitmix32
        key = (key + 0x9e3779b9) >>> 0;
        s[i] = fmix32(key);
      }
      if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;   // the all-zero state is a fixed point
      this.s = s;
      this.spare = 0; this.hasSpare = false;
    }

    u32() {
      const s = this.s;
      const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
      const t = s[1] << 9;
      s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
      s[2] ^= t; s[3] = rotl(s[3], 11);
      return r;
    }

    /** Uniform on the open interval (0, 1), 53 random bits. */
    uniform() {
      const hi = this.u32() >>> 5, lo = this.u32() >>> 6;
      return (hi * 67108864 + lo + 0.5) / 9007199254740992;
    }

    normal() {
      if (this.hasSpare) { this.hasSpare = false; return this.spare; }
      const r = Math.sqrt(-2 * Math.log(this.uniform()));
      const th = 2 * Math.PI * this.uniform();
      this.spare = r * Math.sin(th); this.hasSpare = true;
      return r * Math.cos(th);
    }

    /** Gamma(k, 1), k > 0 (Marsaglia–Tsang). */
    gamma(k) {
      if (k < 1) return this.gamma(k + 1) * Math.pow(this.uniform(), 1 / k);
      const d = k - 1 / 3, c = 1 / Math.sqrt(9 * d);
      for (;;) {
        const x = this.normal();
        let v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        const u = this.uniform(), x2 = x * x;
        if (u < 1 - 0.0331 * x2 * x2) return d * v;
        if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return d * v;
      }
    }

    chi2(df) {
      if (df <= 0) return 0;
      return 2 * this.gamma(0.5 * df);
    }
  }

  function rotl(x, k) { return (x << k) | (x >>> (32 - k)); }

  // ------------------------------------------------------------------ the exact chain

  /**
   * One replica of the exact finite-N chain (quadnet.sgd_overlaps). State C = [[Q, M], [Mᵀ, P]]
   * (d = p + p*). A step: L = semidefinite Cholesky of C, u = (λ, ν) = L z with z ~ N(0, I_d),
   * |x|² = |z|² + χ²_{N−d}, e = b|ν|² − a|λ|² + σξ, c = 2aγe/√N;
   * Q += (2c/√N + c²|x|²/N) λλᵀ, M += (c/√N) λνᵀ. Random draws per step, in order: z, χ², ξ
   * (ξ only when σ > 0). `record(stepIndex, C)` is called at each output step count.
   */
  class ChainRun {
    constructor(C0, p, ps, N, a, b, lr, noise, steps, rng, blowup) {
      this.C = Float64Array.from(C0); this.p = p; this.ps = ps; this.d = p + ps;
      this.N = N; this.a = a; this.b = b; this.lr = lr; this.noise = noise;
      this.steps = steps; this.rng = rng;
      const d = this.d;
      this.L = new Float64Array(d * d); this.z = new Float64Array(d); this.u = new Float64Array(d);
      let trQ = 0, trP = 0;
      for (let i = 0; i < p; i++) trQ += C0[i * d + i];
      for (let i = p; i < d; i++) trP += C0[i * d + i];
      this.limit = (blowup || BLOWUP) * Math.max(trQ, (b / a) * trP, 1);
      this.done = 0;          // steps done
      this.next = 0;          // index of the next output
      this.diverged = false; this.alphaDiverged = NaN;
    }

    step() {
      const { C, L, z, u, d, p, rng } = this;
      for (let j = 0; j < d; j++) {            // semidefinite Cholesky (as quadnet's _sd_cholesky)
        let s = C[j * d + j];
        for (let k = 0; k < j; k++) s -= L[j * d + k] * L[j * d + k];
        const ok = s > SD_TOL * C[j * d + j];
        const ljj = ok ? Math.sqrt(s) : 0;
        L[j * d + j] = ljj;
        for (let i = j + 1; i < d; i++) {
          if (!ok) { L[i * d + j] = 0; continue; }
          let t = C[i * d + j];
          for (let k = 0; k < j; k++) t -= L[i * d + k] * L[j * d + k];
          L[i * d + j] = t / ljj;
        }
      }
      let zz = 0;
      for (let i = 0; i < d; i++) { const g = rng.normal(); z[i] = g; zz += g * g; }
      const x2 = zz + rng.chi2(this.N - d);
      const xi = this.noise > 0 ? rng.normal() : 0;
      let yh = 0, yt = 0;
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let k = 0; k <= i; k++) s += L[i * d + k] * z[k];
        u[i] = s;
        if (i < p) yh += s * s; else yt += s * s;
      }
      const sqrtN = Math.sqrt(this.N);
      const e = this.b * yt - this.a * yh + this.noise * xi;
      const c = 2 * this.a * this.lr * e / sqrtN;
      const kq = 2 * c / sqrtN + c * c * x2 / this.N;
      const km = c / sqrtN;
      let trQ = 0;
      for (let i = 0; i < p; i++) {
        for (let j = 0; j <= i; j++) {
          const v = C[i * d + j] + kq * u[i] * u[j];
          C[i * d + j] = v; C[j * d + i] = v;
        }
        for (let j = p; j < d; j++) {
          const v = C[i * d + j] + km * u[i] * u[j];
          C[i * d + j] = v; C[j * d + i] = v;
        }
        trQ += C[i * d + i];
      }
      return trQ;
    }

    /** Run until the last output, `maxSteps` more steps, or performance.now() > deadline. */
    advance(maxSteps, deadline, record) {
      const total = this.steps[this.steps.length - 1];
      let budget = maxSteps;
      while (this.next < this.steps.length && this.done === this.steps[this.next]) {
        record(this.next, this.C); this.next++;
      }
      while (!this.diverged && this.done < total && budget > 0) {
        const target = this.steps[this.next];
        const n = Math.min(target - this.done, budget, 4096);
        for (let t = 0; t < n; t++) {
          const tr = this.step();
          this.done++;
          if (!(tr <= this.limit)) { this.diverged = true; this.alphaDiverged = this.done / this.N; break; }
        }
        budget -= n;
        while (!this.diverged && this.next < this.steps.length && this.done === this.steps[this.next]) {
          record(this.next, this.C); this.next++;
        }
        if (deadline !== undefined && now() > deadline) break;
      }
      return this.diverged || this.done >= total;
    }
  }

  function now() {
    return typeof performance !== "undefined" ? performance.now() : Date.now();
  }

  function chainSteps(al, N) {
    const steps = new Array(al.length);
    for (let i = 0; i < al.length; i++) {
      steps[i] = Math.round(al[i] * N);
      if (i && steps[i] === steps[i - 1]) {
        throw new RangeError(`alphas must map to distinct step counts round(αN): α = ${al[i - 1]} and ${al[i]} both give ${steps[i]} steps at N = ${N}`);
      }
    }
    return steps;  // the chain starts at step 0 and reports from alphas[0] on, as sgd_overlaps
  }

  /** Loss of the Gram state C (d×d) with p student rows. */
  function gramLoss(C, p, ps, a, b, noise) {
    const d = p + ps;
    let trQ = 0, trP = 0, q2 = 0, m2 = 0, p2 = 0;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        const v = C[i * d + j];
        if (i < p && j < p) q2 += v * v;
        else if (i < p && j >= p) m2 += v * v;
        else if (i >= p && j >= p) p2 += v * v;
      }
      if (i < p) trQ += C[i * d + i]; else trP += C[i * d + i];
    }
    const trD = b * trP - a * trQ;
    return 0.5 * trD * trD + b * b * p2 - 2 * a * b * m2 + a * a * q2 + 0.5 * noise * noise;
  }

  // ------------------------------------------------------------------ small dense linear algebra

  /**
   * Thin SVD of A (m×n, row-major) by one-sided Jacobi rotations (Hestenes): returns singular
   * values (descending) s, U (m×r) and V (n×r), r = min(m, n).
   */
  function svd(A, m, n) {
    if (m < n) {
      const At = new Float64Array(n * m);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) At[j * m + i] = A[i * n + j];
      const r = svd(At, n, m);
      return { s: r.s, U: r.V, V: r.U, r: r.r };
    }
    const W = Float64Array.from(A);           // columns rotated until orthogonal
    const V = new Float64Array(n * n);
    for (let i = 0; i < n; i++) V[i * n + i] = 1;
    for (let sweep = 0; sweep < 60; sweep++) {
      let off = 0;
      for (let j = 0; j < n - 1; j++) {
        for (let k = j + 1; k < n; k++) {
          let alpha = 0, beta = 0, gamma = 0;
          for (let i = 0; i < m; i++) {
            const x = W[i * n + j], y = W[i * n + k];
            alpha += x * x; beta += y * y; gamma += x * y;
          }
          if (gamma === 0 || Math.abs(gamma) <= 1e-13 * Math.sqrt(alpha * beta)) continue;
          off = Math.max(off, Math.abs(gamma) / Math.sqrt(alpha * beta));
          const zeta = (beta - alpha) / (2 * gamma);
          const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
          const c = 1 / Math.sqrt(1 + t * t), s = c * t;
          for (let i = 0; i < m; i++) {
            const x = W[i * n + j], y = W[i * n + k];
            W[i * n + j] = c * x - s * y; W[i * n + k] = s * x + c * y;
          }
          for (let i = 0; i < n; i++) {
            const x = V[i * n + j], y = V[i * n + k];
            V[i * n + j] = c * x - s * y; V[i * n + k] = s * x + c * y;
          }
        }
      }
      if (off <= 1e-13) break;   // columns orthogonal to 1e-13: singular values to ~1e-13 relative
    }
    const norms = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += W[i * n + j] * W[i * n + j];
      norms[j] = Math.sqrt(s);
    }
    const order = Array.from({ length: n }, (_, j) => j).sort((x, y) => norms[y] - norms[x]);
    const s = new Float64Array(n), U = new Float64Array(m * n), Vs = new Float64Array(n * n);
    order.forEach((j, c) => {
      s[c] = norms[j];
      for (let i = 0; i < m; i++) U[i * n + c] = norms[j] > 0 ? W[i * n + j] / norms[j] : 0;
      for (let i = 0; i < n; i++) Vs[i * n + c] = V[i * n + j];
    });
    return { s, U, V: Vs, r: n };
  }

  /** Orthogonal polar factor U Vᵀ of M (p×p*, p ≥ p*), as quadnet.polar. */
  function polar(M, p, ps) {
    return polarOf(svd(M, p, ps), p, ps);
  }

  function polarOf(dec, p, ps) {
    const { U, V } = dec;
    const O = new Float64Array(p * ps);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < ps; j++) {
        let s = 0;
        for (let k = 0; k < ps; k++) s += U[i * ps + k] * V[j * ps + k];
        O[i * ps + j] = s;
      }
    }
    return O;
  }

  /** Summary of an overlap state for the plots: loss, tr Q / p, ‖M‖², singular values of M,
   * alignment tr(polar(M)ᵀ polar(M0)) / p* (quadnet.alignment; NaN when p < p*). */
  function summary(Q, M, P, p, ps, a, b, noise, O0) {
    let trQ = 0, trP = 0, q2 = 0, m2 = 0, p2 = 0;
    for (let i = 0; i < p; i++) trQ += Q[i * p + i];
    for (let i = 0; i < ps; i++) trP += P[i * ps + i];
    for (let i = 0; i < p * p; i++) q2 += Q[i] * Q[i];
    for (let i = 0; i < p * ps; i++) m2 += M[i] * M[i];
    for (let i = 0; i < ps * ps; i++) p2 += P[i] * P[i];
    const trD = b * trP - a * trQ;
    const loss = 0.5 * trD * trD + b * b * p2 - 2 * a * b * m2 + a * a * q2 + 0.5 * noise * noise;
    const dec = svd(M, p, ps);
    let align = NaN;
    if (O0) {
      const O = polarOf(dec, p, ps);
      let t = 0;
      for (let i = 0; i < p * ps; i++) t += O[i] * O0[i];
      align = t / ps;
    }
    return { loss, trQ: trQ / p, normM2: m2, sv: Array.from(dec.s), align };
  }

  function splitGram(C, p, ps) {
    const d = p + ps;
    const Q = new Float64Array(p * p), M = new Float64Array(p * ps), P = new Float64Array(ps * ps);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < p; j++) Q[i * p + j] = C[i * d + j];
      for (let j = 0; j < ps; j++) M[i * ps + j] = C[i * d + p + j];
    }
    for (let i = 0; i < ps; i++) for (let j = 0; j < ps; j++) P[i * ps + j] = C[(p + i) * d + p + j];
    return { Q, M, P };
  }

  /**
   * Exact initial overlaps of a student with i.i.d. N(0, q0) weights against a teacher with
   * W*W*ᵀ/N = P = diag(pDiag) (quadnet.starts.gaussian_overlaps for P = I): √N M0 = √q0 G P^{1/2},
   * N Q0 = q0 (G Gᵀ + A Aᵀ) with A a Bartlett factor of a Wishart_p(I, N − p*) matrix.
   * Draws from `rng`: G (p·p* normals, row-major), then per row i of A the i normals below the
   * diagonal and the χ²_{N−p*−i} diagonal.
   */
  function gaussianStart(p, ps, N, q0, pDiag, rng) {
    const G = new Float64Array(p * ps);
    for (let i = 0; i < p * ps; i++) G[i] = rng.normal();
    const A = new Float64Array(p * p);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < i; j++) A[i * p + j] = rng.normal();
      A[i * p + i] = Math.sqrt(rng.chi2(N - ps - i));
    }
    const Q = new Float64Array(p * p), M = new Float64Array(p * ps);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < p; j++) {
        let s = 0;
        for (let k = 0; k < ps; k++) s += G[i * ps + k] * G[j * ps + k];
        for (let k = 0; k < p; k++) s += A[i * p + k] * A[j * p + k];
        Q[i * p + j] = q0 * s / N;
      }
      for (let k = 0; k < ps; k++) M[i * ps + k] = Math.sqrt(q0 / N) * G[i * ps + k] * Math.sqrt(pDiag[k]);
    }
    const P = new Float64Array(ps * ps);
    for (let k = 0; k < ps; k++) P[k * ps + k] = pDiag[k];
    return { Q, M, P, G };
  }

  /**
   * The explorer's chain job: `replicas` replicas from the Gram matrix C0 (flat d×d), one after
   * the other, each summarized at every output (loss, tr Q/p, ‖M‖², singular values, alignment
   * with the polar factor O0 of M(0)). `work(deadline)` runs until performance.now() passes the
   * deadline and returns a progress message {id, replica, next, done, stats, diverged}; the Web
   * Worker posts these, the page without workers runs them in time slices.
   * Replica r draws from stream r of `seed` (as `chain`). `job.maxSteps` (optional) caps the
   * steps of each replica: one that reaches it stops there (`capped` in its messages).
   */
  class ChainJob {
    constructor(job) {
      this.job = job;
      this.al = Float64Array.from(job.alphas);
      this.steps = chainSteps(this.al, job.N);
      this.C0 = Float64Array.from(job.C0);
      this.O0 = job.O0 ? Float64Array.from(job.O0) : null;
      this.replica = -1; this.run = null; this.stats = null;
      this.finished = job.replicas === 0;
      this.nextReplica();
    }

    nextReplica() {
      const j = this.job;
      this.replica++;
      if (this.replica >= j.replicas) { this.finished = true; this.run = null; return; }
      this.run = new ChainRun(this.C0, j.p, j.ps, j.N, j.a, j.b, j.lr, j.noise, this.steps, new Rng(j.seed, this.replica));
      const T = this.al.length, k = Math.min(j.p, j.ps);
      this.stats = { loss: new Array(T).fill(NaN), trQ: new Array(T).fill(NaN), normM2: new Array(T).fill(NaN),
                     align: new Array(T).fill(NaN), sv: Array.from({ length: k }, () => new Array(T).fill(NaN)) };
    }

    record(i, C) {
      const j = this.job;
      const { Q, M, P } = splitGram(C, j.p, j.ps);
      const s = summary(Q, M, P, j.p, j.ps, j.a, j.b, j.noise, this.O0);
      const st = this.stats;
      st.loss[i] = s.loss; st.trQ[i] = s.trQ; st.normM2[i] = s.normM2; st.align[i] = s.align;
      for (let c = 0; c < s.sv.length; c++) st.sv[c][i] = s.sv[c];
    }

    /** Work until `deadline` (ms, performance.now()); null when everything is done. */
    work(deadline) {
      if (this.finished) return null;
      const run = this.run, cap = this.job.maxSteps || Infinity;
      const finished = run.advance(Math.max(0, cap - run.done), deadline, (i, C) => this.record(i, C));
      const capped = !finished && run.done >= cap;
      const done = finished || capped;
      const msg = { id: this.job.id, replica: this.replica, next: run.next, done, capped, diverged: run.diverged,
                    alphaDiverged: run.alphaDiverged, alphaReached: run.done / this.job.N, stats: this.stats };
      if (done) this.nextReplica();
      return msg;
    }
  }

  // ------------------------------------------------------------------ theory (P = I)

  function theoryArgs(p, pStar, a, b, lr, noise) {
    integer("p", p, 1); integer("pStar", pStar, 1);
    positive("a", a); positive("b", b); positive("lr", lr, true); positive("noise", noise, true);
  }

  /** g_c = aγ_c: positive root of 4[(p+4)K − (p+2)B²] g² + 8B g − (p+2) = 0 (quadnet.theory). */
  function criticalG(p, ps, b, noise) {
    const B = b * ps, K = B * B + 2 * b * b * ps + noise * noise;
    const A = 4 * ((p + 4) * K - (p + 2) * B * B);
    return (-8 * B + Math.sqrt(64 * B * B + 4 * A * (p + 2))) / (2 * A);
  }

  /** Plateau M = 0, Q = q I of the full ODE (null above γ_c, where it does not exist). */
  function plateau(p, ps, a, b, lr, noise) {
    const B = b * ps, g = a * lr;
    let u;
    if (g === 0) u = B / (p + 2);
    else {
      if (g > criticalG(p, ps, b, noise)) return null;
      const K = B * B + 2 * b * b * ps + noise * noise;
      const lin = (p + 2) * (1 + 2 * g * B);
      const disc = Math.max(lin * lin - 4 * g * (p + 2) * (p + 4) * (B + g * K), 0);
      u = 2 * (B + g * K) / (lin + Math.sqrt(disc));
    }
    const trD = B - p * u;
    return { q: u / a, trD, loss: 0.5 * trD * trD + b * b * ps + p * u * u + 0.5 * noise * noise };
  }

  /** Closed-form theory at P = I (chapters 2–4); NaN where the plateau does not exist. */
  function theory(p, pStar, a, b, lr, noise) {
    theoryArgs(p, pStar, a, b, lr, noise);
    const pl = plateau(p, pStar, a, b, lr, noise);
    const out = {
      criticalLr: criticalG(p, pStar, b, noise) / a,
      manifoldCriticalLr: 1 / (2 * a * b * (pStar + 2)),
      plateauExists: pl !== null,
      plateauLoss: NaN, plateauQ: NaN, escapeRate: NaN, escapeLevel: NaN,
    };
    if (pl) {
      out.plateauLoss = pl.loss;
      out.plateauQ = pl.q;
      out.escapeRate = 2 * a * lr * (pl.trD + 2 * b - 2 * a * pl.q);
      out.escapeLevel = 0.5 * noise * noise + 0.5 * (pl.loss - 0.5 * noise * noise);
    }
    return out;
  }

  /**
   * κ = ∫₀^∞ s(α) exp(−2∫₀^α r) dα along the M = 0 solution q(α) from q0: the variance (in units
   * of 1/N) that the SGD noise adds to M before the escape, mapped back to α = 0 (chapter 4).
   * r = 2g[b p* − a p q + 2b − 2aq], s = 4g² q E(q). Infinity when r ≤ 0 on the plateau (no
   * escape), NaN when the M = 0 solution diverges.
   */
  function kappa(p, ps, a, b, lr, noise, q0) {
    const g = a * lr, s2 = noise * noise;
    const E = (q) => 15 * b * b - 18 * a * b * q + 15 * a * a * q * q
      + 2 * (3 * b - 3 * a * q) * (b * (ps - 1) - a * q * (p - 1))
      + b * b * (ps * ps - 1) - 2 * a * b * q * (ps - 1) * (p - 1) + a * a * q * q * (p * p - 1) + s2;
    const rate = (q) => 2 * g * (b * ps - a * p * q + 2 * b - 2 * a * q);
    const src = (q) => 4 * g * g * q * E(q);
    const f = (y, dy) => {
      const q = y[0], trD = b * ps - a * p * q;
      const eps0 = 0.5 * trD * trD + b * b * ps + a * a * p * q * q;
      dy[0] = 4 * g * (trD * q - 2 * a * q * q)
        + 4 * g * g * ((2 * eps0 + s2) * q - 4 * a * trD * q * q + 8 * a * a * q * q * q);
      dy[1] = rate(q);
      dy[2] = src(q) * Math.exp(-2 * y[1]);
    };
    const pl = plateau(p, ps, a, b, lr, noise);
    if (!pl || !(rate(pl.q) > 0)) return Infinity;
    const solver = new DoPri(f, [q0, 0, 0], 0, 1e-10, 1e-14);
    const limit = BLOWUP * Math.max(p * q0, (b / a) * ps, 1);
    for (;;) {
      if (!solver.advance(Infinity) || !(p * solver.y[0] <= limit)) return NaN;
      const [q, R, K] = solver.y;
      const r = rate(q);
      const tail = r > 0 ? src(q) * Math.exp(-2 * R) / (2 * r) : Infinity;
      if (solver.t > 1 && tail <= 1e-12 * Math.max(K, 1e-300)) return K + tail;
      if (solver.t > 1e7) return Infinity;
    }
  }

  /**
   * The reduced ODE (P = I, Q(0) = q0 I, M(0) sharing its singular vectors with Q): k = min(p, p*)
   * singular values s of M, the eigenvalues q of Q along them, and q⊥ for the p − k others.
   * State y = [s_1..s_k, q_1..q_k, q⊥ (when p > k)].
   */
  function reducedSystem(p, ps, a, b, lr, noise) {
    const k = Math.min(p, ps), g = a * lr, s2 = noise * noise, perp = p - k;
    const loss = (y) => {
      let qs = 0, q2 = 0, m2 = 0;
      for (let i = 0; i < k; i++) { m2 += y[i] * y[i]; qs += y[k + i]; q2 += y[k + i] * y[k + i]; }
      if (perp) { qs += perp * y[2 * k]; q2 += perp * y[2 * k] * y[2 * k]; }
      const trD = b * ps - a * qs;
      return { trD, eps0: 0.5 * trD * trD + b * b * ps - 2 * a * b * m2 + a * a * q2 };
    };
    const f = (y, dy) => {
      const { trD, eps0 } = loss(y);
      const w = 2 * eps0 + s2;
      for (let i = 0; i < k; i++) {
        const s = y[i], q = y[k + i], G = b * s * s - a * q * q;
        dy[i] = 2 * g * (trD * s + 2 * (b * s - a * q * s));
        dy[k + i] = 4 * g * (trD * q + 2 * G)
          + 4 * g * g * (w * q + 4 * trD * G + 8 * (b * b * s * s - 2 * a * b * s * s * q + a * a * q * q * q));
      }
      if (perp) {
        const q = y[2 * k];
        dy[2 * k] = 4 * g * (trD * q - 2 * a * q * q)
          + 4 * g * g * (w * q - 4 * a * trD * q * q + 8 * a * a * q * q * q);
      }
    };
    return { k, perp, f, loss: (y) => loss(y).eps0 + 0.5 * s2, n: 2 * k + (perp ? 1 : 0), sSolution: Math.sqrt(b / a) };
  }

  /** First α where the reduced ODE from singular values `sv` of M(0) (and Q(0) = q0 I) falls
   * below `level`: {t, settled}. t is NaN if the run diverges and Infinity if it never gets there:
   * by alphaMax, or because it settled above the level, at α = `settled` (p < p* can stop there):
   * M has grown to the scale of the solutions (largest s above 0.1 √(b/a)) and every component's
   * relative rate of change is below 1e-3·r, r the escape rate (on the plateau s grows at r). */
  function reducedEscape(sys, sv, q0, level, alphaMax, rtol, rate) {
    const { k, n } = sys;
    const y0 = new Float64Array(n);
    for (let i = 0; i < k; i++) { y0[i] = sv[i]; y0[k + i] = q0; }
    if (sys.perp) y0[2 * k] = q0;
    if (sys.loss(y0) < level) return { t: 0, settled: NaN };
    const solver = new DoPri(sys.f, y0, 0, rtol || 1e-10, 1e-14);
    const trLimit = BLOWUP * 1e3 * Math.max(q0, 1);
    while (solver.t < alphaMax) {
      if (!solver.advance(alphaMax)) return { t: NaN, settled: NaN };
      let big = 0, fastest = 0;
      for (let i = 0; i < n; i++) {
        big = Math.max(big, Math.abs(solver.y[i]));
        fastest = Math.max(fastest, Math.abs(solver.k[0][i]) / Math.max(Math.abs(solver.y[i]), 1e-300));
      }
      if (!(big <= trLimit)) return { t: NaN, settled: NaN };
      if (sys.loss(solver.y) < level) return { t: bisectCrossing(solver, sys, level), settled: NaN };
      let sMax = 0;
      for (let i = 0; i < k; i++) sMax = Math.max(sMax, solver.y[i]);
      if (fastest < 1e-3 * rate && sMax > 0.1 * sys.sSolution) return { t: Infinity, settled: solver.t };
    }
    return { t: Infinity, settled: NaN };
  }

  /** α of the level crossing inside the solver's last step, by bisection with single
   * Dormand–Prince steps from the step's start (as accurate as the steps themselves). */
  function bisectCrossing(solver, sys, level) {
    const h = solver.t - solver.tPrev;
    const tmp = new Float64Array(solver.n);
    sys.f(solver.yPrev, solver.k[0]);
    let lo = 0, hi = 1;
    for (let it = 0; it < 60 && (hi - lo) * h > 1e-12 * Math.max(1, solver.t); it++) {
      const mid = 0.5 * (lo + hi);
      solver.trial(solver.yPrev, mid * h, tmp);
      if (sys.loss(tmp) < level) hi = mid; else lo = mid;
    }
    return solver.tPrev + 0.5 * (lo + hi) * h;
  }

  // ------------------------------------------------------------------ public API

  /** (dQ/dα, dM/dα) of the overlap ODEs (quadnet.ode_rhs). */
  function odeRhs(Q, M, P, a, b, lr, noise) {
    const o = overlaps(Q, M, P);
    positive("a", a); positive("b", b); positive("lr", lr); positive("noise", noise === undefined ? 0 : noise, true);
    const sys = new OverlapODE(o.P, o.p, o.ps, a, b, lr, (noise || 0) ** 2);
    const y = new Float64Array(sys.n);
    y.set(o.Q); y.set(o.M, o.p * o.p);
    const dy = new Float64Array(sys.n);
    sys.rhs(y, dy);
    return { dQ: rowsOf(dy.subarray(0, o.p * o.p), o.p, o.p), dM: rowsOf(dy.subarray(o.p * o.p), o.p, o.ps) };
  }

  function odeOptions(options) {
    const o = Object.assign({ rtol: 1e-9, atol: 1e-12, blowup: BLOWUP }, options || {});
    positive("rtol", o.rtol); positive("atol", o.atol); positive("blowup", o.blowup);
    if (o.blowup <= 1) throw new RangeError(`blowup must be > 1, got ${o.blowup}`);
    return o;
  }

  /** Loss along the ODE solution at `alphas` (quadnet.integrate_ode); NaN after a divergence.
   * `options` (optional): {rtol = 1e-9, atol = 1e-12, blowup = 1e3}. */
  function integrate(Q, M, P, a, b, lr, noise, alphas, options) {
    const o = overlaps(Q, M, P, ["Q0", "M0", "P"]);
    positive("a", a); positive("b", b); positive("lr", lr); positive("noise", noise, true);
    const al = alphaGrid(alphas);
    const opts = odeOptions(options);
    const sys = new OverlapODE(o.P, o.p, o.ps, a, b, lr, noise * noise);
    const y0 = new Float64Array(sys.n);
    y0.set(o.Q); y0.set(o.M, o.p * o.p);
    const run = integrateStates(sys, y0, al, opts);
    return {
      loss: run.states.map((y) => (y ? sys.loss(y) : NaN)),
      diverged: run.diverged,
      alphaDiverged: run.alphaDiverged,
      steps: run.steps,
    };
  }

  /** Exact finite-N chain (quadnet.sgd_overlaps): loss per replica × alpha, deterministic for
   * a seed (replica r uses stream r of the seed); NaN after a replica's divergence. */
  function chain(Q, M, P, N, a, b, lr, noise, alphas, replicas, seed) {
    const o = overlaps(Q, M, P, ["Q0", "M0", "P"]);
    integer("N", N, o.p + o.ps);
    positive("a", a); positive("b", b); positive("lr", lr); positive("noise", noise, true);
    integer("replicas", replicas, 1);
    integer("seed", seed, 0);
    const al = alphaGrid(alphas);
    const steps = chainSteps(al, N);
    const C0 = gram(o.Q, o.M, o.P, o.p, o.ps);
    const loss = [], diverged = [], alphaDiverged = [];
    for (let r = 0; r < replicas; r++) {
      const row = new Array(al.length).fill(NaN);
      const run = new ChainRun(C0, o.p, o.ps, N, a, b, lr, noise, steps, new Rng(seed, r));
      run.advance(Infinity, undefined, (i, C) => { row[i] = gramLoss(C, o.p, o.ps, a, b, noise); });
      loss.push(row); diverged.push(run.diverged); alphaDiverged.push(run.alphaDiverged);
    }
    return { loss, diverged, alphaDiverged };
  }

  /**
   * Predicted escape time from a Gaussian start (P = I, Q(0) = q0 I, √N M(0) = √(q0 + κ) G with
   * G a p × p* standard Gaussian matrix): the first α where the reduced ODE's loss falls below
   * the escape level σ²/2 + ½(ε_pl − σ²/2). With `G` (an array of rows) for that one draw;
   * otherwise `draws` seeded draws (stream 0 of `seed`) and their mean. A draw that never
   * reaches the level (p < p* can settle above it) counts as Infinity, and `settled` gives the α
   * where it settled. `options` (optional):
   * {rtol = 1e-10} of the reduced ODE (the page uses 1e-8: escape times to ~1e-7).
   */
  function escapeTime(p, pStar, a, b, lr, noise, N, q0, draws, seed, G, options) {
    theoryArgs(p, pStar, a, b, lr, noise);
    positive("lr", lr); integer("N", N, 1); positive("q0", q0);
    const th = theory(p, pStar, a, b, lr, noise);
    const out = { mean: NaN, times: [], kappa: NaN, level: th.escapeLevel };
    if (!th.plateauExists) return out;
    const kap = kappa(p, pStar, a, b, lr, noise, q0);
    out.kappa = kap;
    if (!Number.isFinite(kap)) { out.mean = Number.isNaN(kap) ? NaN : Infinity; return out; }
    const sys = reducedSystem(p, pStar, a, b, lr, noise);
    const scale = Math.sqrt((q0 + kap) / N);
    const alphaMax = 1e7;
    let mats;
    if (G !== undefined && G !== null) mats = [matrix("G", G, p, pStar)];
    else {
      integer("draws", draws, 1); integer("seed", seed, 0);
      const rng = new Rng(seed, 0);
      mats = [];
      for (let j = 0; j < draws; j++) {
        const g = new Float64Array(p * pStar);
        for (let i = 0; i < g.length; i++) g[i] = rng.normal();
        mats.push(g);
      }
    }
    out.settled = [];
    for (const g of mats) {
      const sv = svd(g, p, pStar).s.map((s) => s * scale);
      const r = reducedEscape(sys, sv, q0, th.escapeLevel, alphaMax, options && options.rtol, th.escapeRate);
      out.times.push(r.t);
      out.settled.push(r.settled);
    }
    out.mean = out.times.reduce((x, y) => x + y, 0) / out.times.length;
    return out;
  }

  /** First α where `loss` (at `alphas`) falls below `level`, by linear interpolation
   * (quadnet.escape_time); NaN when it never does. */
  function crossing(alphas, loss, level) {
    for (let i = 0; i < loss.length; i++) {
      if (loss[i] < level) {
        if (i === 0) return alphas[0];
        const l0 = loss[i - 1], l1 = loss[i];
        const frac = l0 !== l1 ? Math.min(1, Math.max(0, (l0 - level) / (l0 - l1))) : 0;
        return alphas[i - 1] + frac * (alphas[i] - alphas[i - 1]);
      }
    }
    return NaN;
  }

  return {
    version: VERSION,
    odeRhs, integrate, chain, theory, escapeTime,
    // building blocks for the explorer page and for readers who want to script it
    internal: {
      OverlapODE, DoPri, integrateStates, ChainRun, Rng, chainSteps, gram, splitGram, gramLoss,
      ChainJob, summary, svd, polar, gaussianStart, kappa, reducedSystem, reducedEscape, crossing, plateau,
      criticalG, BLOWUP,
      uniforms: (seed, stream, n) => { const r = new Rng(seed, stream); return Array.from({ length: n }, () => r.uniform()); },
      normals: (seed, stream, n) => { const r = new Rng(seed, stream); return Array.from({ length: n }, () => r.normal()); },
      chi2s: (seed, stream, df, n) => { const r = new Rng(seed, stream); return Array.from({ length: n }, () => r.chi2(df)); },
    },
  };
});
