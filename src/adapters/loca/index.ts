// LoCA: ΔW = α·Σ_k c_k·d_m(u_k)·d_n(v_k)ᵀ (2-D inverse DCT of a sparse spectrum)
// with locations that move early in training (config.ts has the equations).
// State-dict keys (our own names; PEFT has no LoCA):
//   loca_spectrum [K]       the coefficients c
//   loca_locations [2, K]   u (row frequency) and v (column frequency), integers
//                           stored as float32; moved only by the hook (their
//                           gradient is zero and the hook restores them after
//                           the optimizer step), saved so merge/load are exact.
// The training graph also outputs `loca_fd.<module>` [5, K]:
//   Ĝ(u,v), Ĝ(u+1,v), Ĝ(u−1,v), Ĝ(u,v+1), Ĝ(u,v−1) with Ĝ = C_m·(∂L/∂ΔW)·C_nᵀ.
import * as op from '../../graph/ops.ts';
import type { Graph, Value } from '../../graph/ir.ts';
import type { AdapterMethod, HookSite } from '../types.ts';
import { fourierftIndices } from '../fourierft/index.ts';
import { capFrequencies, moduleConfig } from '../fourierft/config.ts';
import { LocaConfig, locaConfigSchema } from './config.ts';

export const LOCA_KEYS = { c: 'loca_spectrum', loc: 'loca_locations' } as const;
export const fdOutput = (site: string) => `loca_fd.${site}`;

/** Orthonormal DCT-II basis vector d_len(f)[t] = w_f·cos(π(2t+1)f / 2len). */
export function dctBasis(len: number, f: number, t: number): number {
  return (f === 0 ? Math.sqrt(1 / len) : Math.sqrt(2 / len)) * Math.cos((Math.PI * (((2 * t + 1) * f) % (4 * len))) / (2 * len));
}

/** [len, K] table of d_len(f_k)[t] for frequencies f [1, K] (float32 holding integers). */
function dctTable(g: Graph, f: Value, len: number): Value {
  const tName = `loca_range.${len}`;
  const t = g.leaf(tName) ?? g.weight(tName, BigInt64Array.from({ length: len }, (_, i) => BigInt(2 * i + 1)), [len, 1], 'int64');
  const fi = op.cast(f, 'int64');
  const prod = op.mul(t, fi); // (2t+1)·f
  const cosv = op.cos(op.mul(op.cast(op.mod(prod, 4 * len), 'float32'), Math.PI / (2 * len)));
  const w = op.where(op.equal(fi, g.scalar(0, 'int64')), Math.sqrt(1 / len), Math.sqrt(2 / len)); // [1, K]
  return op.mul(cosv, w);
}

const clampRow = (x: Value, lo: number, hi: number) => op.neg(op.max2(op.neg(op.max2(x, lo)), -hi));

/** LoCA's state per adapter set: locations saved before the optimizer step (restored after it). */
export interface LocaState {
  saved: Map<string, Float32Array>;
}

/** One location step for one module (see config.ts); `fd` is [5, K] row-major. */
export function moveLocations(loc: Float32Array, c: Float32Array, fd: ArrayLike<number>, m: number, n: number, alpha: number): number {
  const K = c.length;
  const taken = new Set<number>();
  for (let k = 0; k < K; k++) taken.add(loc[k] * n + loc[K + k]);
  let moved = 0;
  for (let k = 0; k < K; k++) {
    const u = loc[k], v = loc[K + k], g0 = Number(fd[k]);
    const cands: [number, number, number][] = [
      [u + 1, v, Number(fd[K + k])], [u - 1, v, Number(fd[2 * K + k])],
      [u, v + 1, Number(fd[3 * K + k])], [u, v - 1, Number(fd[4 * K + k])],
    ];
    let best = 0, bu = u, bv = v;
    for (const [cu, cv, gc] of cands) {
      if (cu < 0 || cu >= m || cv < 0 || cv >= n || taken.has(cu * n + cv)) continue;
      const d = alpha * c[k] * (gc - g0);
      if (d < best) [best, bu, bv] = [d, cu, cv];
    }
    if (bu !== u || bv !== v) {
      taken.delete(u * n + v);
      taken.add(bu * n + bv);
      loc[k] = bu;
      loc[K + k] = bv;
      moved++;
    }
  }
  return moved;
}

export const loca: AdapterMethod<LocaConfig, LocaState> = {
  name: 'loca',
  schema: locaConfigSchema,
  peft: { peftType: 'LOCA', onlyBias: 'lora_only', moduleKeys: Object.values(LOCA_KEYS) },

  createState: () => ({ saved: new Map() }),

  planConfig(config, targets) {
    return capFrequencies(config, targets.map((t) => t.site));
  },

  init({ site, config: c0, rng }) {
    const config = moduleConfig(c0, site.name);
    const K = config.n_frequency;
    const { u, v } = fourierftIndices(site.outFeatures, site.inFeatures, config);
    const loc = new Float32Array(2 * K);
    loc.set(u, 0);
    loc.set(v, K);
    const c = new Float32Array(K);
    if (!config.init_weights) rng.fillNormal(c, 0, 1);
    return [
      { key: LOCA_KEYS.c, shape: [K], data: c },
      { key: LOCA_KEYS.loc, shape: [2, K], data: loc },
    ];
  },

  forward({ g, site, config: c0, p, x, W, bias }) {
    const config = moduleConfig(c0, site.name);
    const m = site.outFeatures, n = site.inFeatures, K = config.n_frequency, alpha = config.scaling;
    const loc = p[LOCA_KEYS.loc];
    const u = op.slice(loc, [0], [1], [0]), v = op.slice(loc, [1], [2], [0]); // [1, K]
    const cm = dctTable(g, u, m), cn = dctTable(g, v, n); // [m, K], [n, K]
    const c = p[LOCA_KEYS.c];
    const raw = site.layout === 'out_in' ? op.gemm(op.mul(cm, c), cn, { transB: true, alpha }) : op.gemm(cn, op.mul(cm, c), { transB: true, alpha });
    // Identity with a hand-written vjp: passes ∂L/∂ΔW through and, from it, declares the finite-difference table.
    const dW = g.setCustomVjp(op.identity(raw), [raw], (G) => {
      const P = site.layout === 'out_in' ? op.gemm(G, cn) : op.gemm(G, cn, { transA: true }); // G·cn [m, K]
      const Q = site.layout === 'out_in' ? op.gemm(G, cm, { transA: true }) : op.gemm(G, cm); // Gᵀ·cm [n, K]
      const along = (tab: Value, M: Value) => op.reduceSum(op.mul(tab, M), [0], true); // [1, K]
      const rows = [
        along(cm, P),
        along(dctTable(g, clampRow(op.add(u, 1), 0, m - 1), m), P),
        along(dctTable(g, clampRow(op.sub(u, 1), 0, m - 1), m), P),
        along(dctTable(g, clampRow(op.add(v, 1), 0, n - 1), n), Q),
        along(dctTable(g, clampRow(op.sub(v, 1), 0, n - 1), n), Q),
      ];
      const name = fdOutput(site.name);
      if (!g.outputs.some((o) => o.name === name)) g.output(name, op.concat(rows, 0));
      return [G];
    });
    void K;
    const Weff = op.add(W, dW);
    return site.layout === 'in_out' ? op.linear(x, Weff, bias) : op.linearT(x, Weff, bias);
  },

  deltaWeight(site, c0, params) {
    const config = moduleConfig(c0, site.name);
    const m = site.outFeatures, n = site.inFeatures, K = config.n_frequency;
    const c = params[LOCA_KEYS.c], loc = params[LOCA_KEYS.loc];
    const dW = new Float64Array(m * n);
    const du = new Float64Array(m), dv = new Float64Array(n);
    for (let k = 0; k < K; k++) {
      if (c[k] === 0) continue;
      const u = loc[k], v = loc[K + k];
      for (let i = 0; i < m; i++) du[i] = dctBasis(m, u, i);
      for (let j = 0; j < n; j++) dv[j] = dctBasis(n, v, j);
      for (let i = 0; i < m; i++) {
        const a = config.scaling * c[k] * du[i];
        for (let j = 0; j < n; j++) dW[i * n + j] += a * dv[j];
      }
    }
    return Float32Array.from(dW);
  },

  /** Coefficients + their (learnable) integer locations: 3·n_frequency. */
  paramCount(site, config) {
    return 3 * moduleConfig(config, site.name).n_frequency;
  },

  hooks: {
    beforeStep(ctx) {
      const st = ctx.state.saved;
      for (const s of ctx.sites as HookSite<LocaConfig>[]) {
        const key = s.keys[LOCA_KEYS.loc];
        st.set(key, Float32Array.from(ctx.params.get(key)!));
        ctx.grads.get(key)!.fill(0);
      }
    },
    afterStep(ctx) {
      const st = ctx.state.saved;
      for (const s of ctx.sites as HookSite<LocaConfig>[]) {
        const key = s.keys[LOCA_KEYS.loc];
        const loc = ctx.params.get(key)!;
        if (st.has(key)) loc.set(st.get(key)!); // the optimizer (weight decay) must not move locations
        const cfg = s.config;
        const step = ctx.step - 1;
        if (step >= cfg.location_fraction * ctx.totalSteps || step % cfg.location_interval !== 0) continue;
        const fd = ctx.outputs[fdOutput(s.site.name)];
        if (!fd) continue;
        moveLocations(loc, ctx.params.get(s.keys[LOCA_KEYS.c])!, fd.data as ArrayLike<number>, s.site.outFeatures, s.site.inFeatures, cfg.scaling);
      }
    },
  },
};
