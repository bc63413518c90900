// LaMDA: y = W0·x + s·B·S·A·x with A = V_rᵀ frozen, S trainable, B = U_r trained
// then frozen column by column (config.ts has the choices). LaMDA++ picks each
// module's r once per adapter set (planConfig, ./allocate.ts); every function
// below runs with that module's config (moduleConfig: r = its rank).
// State-dict keys (our own names): lamda_S.weight [r, r], lamda_B.weight [out, r].
import * as op from '../../graph/ops.ts';
import { svdTopR } from '../../linalg/svd.ts';
import type { AdapterMethod, HookSite } from '../types.ts';
import { fingerprint, frozen, matmul32, memo, weightData } from '../bases.ts';
import { toOutIn } from '../inject.ts';
import { frozenColumns, LamdaConfig, lamdaConfigSchema, lamdaScaling, moduleConfig, rankFor } from './config.ts';
import { allocateRanks } from './allocate.ts';

export const LAMDA_KEYS = { S: 'lamda_S.weight', B: 'lamda_B.weight' } as const;

/** A = V_rᵀ [r, in] and U_r [out, r] of W0 ([out, in]), signs canonical. */
export function lamdaFactors(W: Float32Array, m: number, n: number, r: number): { A: Float32Array; U: Float32Array } {
  return memo(`lamda|${fingerprint(W)}|${m}x${n}|${r}`, () => {
    const { U, Vt } = svdTopR(W, m, n, r);
    const A = new Float32Array(r * n), Ur = new Float32Array(m * r);
    for (let k = 0; k < r; k++) {
      let best = 0;
      for (let j = 0; j < n; j++) if (Math.abs(Vt[k * n + j]) > Math.abs(best)) best = Vt[k * n + j];
      const sgn = best < 0 ? -1 : 1;
      for (let j = 0; j < n; j++) A[k * n + j] = sgn * Vt[k * n + j];
      for (let i = 0; i < m; i++) Ur[i * r + k] = sgn * U[i * r + k];
    }
    return { A, U: Ur };
  });
}

/** LaMDA's state per adapter set: frozen B columns per key, their values when they froze, and how many. */
export interface LamdaState {
  frozen: Map<string, { saved: Float32Array; cols: number }>;
}

function eachFrozen(step: number, total: number, sites: HookSite<LamdaConfig>[], each: (key: string, m: number, r: number, cols: number) => void) {
  for (const s of sites) {
    const c = moduleConfig(s.config, s.site.name);
    const cols = frozenColumns(step, total, c);
    if (cols > 0) each(s.keys[LAMDA_KEYS.B], s.site.outFeatures, c.r, cols);
  }
}

export const lamda: AdapterMethod<LamdaConfig, LamdaState> = {
  name: 'lamda',
  schema: lamdaConfigSchema,
  // rank_pattern is LaMDA's own config field (LaMDA++'s ranks), matched by rankFor.
  peft: { peftType: 'LAMDA', onlyBias: 'lora_only', moduleKeys: Object.values(LAMDA_KEYS) },
  createState: () => ({ frozen: new Map() }),
  deltaDependsOnBase: true,

  planConfig(config, targets) {
    if (!config.lamda_plus_plus) return config;
    const covered = targets.filter((t) => rankFor({ r: 0, rank_pattern: config.rank_pattern }, t.site.name) > 0);
    if (covered.length === targets.length && targets.length) return config; // ranks already allocated (a reload): keep them
    if (covered.length) {
      throw new Error(
        `LaMDA++: rank_pattern gives ranks for ${covered.map((t) => `'${t.site.name}'`).join(', ')} but not for ` +
          `${targets.filter((t) => !covered.includes(t)).map((t) => `'${t.site.name}'`).join(', ')}: give every adapted module a rank, or none (to allocate them)`,
      );
    }
    const modules = targets.map(({ site, weight }) => ({ name: site.name, out: site.outFeatures, in: site.inFeatures, weight: toOutIn(site, weight) }));
    const { ranks } = allocateRanks(modules, { r: config.r, total: config.total_rank, minRank: config.min_rank, maxRank: config.max_rank });
    return { ...config, rank_pattern: Object.fromEntries(modules.map((m, i) => [m.name, ranks[i]])) };
  },

  init({ site, config: c0, rng, baseWeight }) {
    const config = moduleConfig(c0, site.name);
    const m = site.outFeatures, n = site.inFeatures, r = config.r;
    const { U } = lamdaFactors(toOutIn(site, baseWeight), m, n, r);
    const S = new Float32Array(r * r);
    if (!config.init_weights) rng.fillNormal(S, 0, 0.1);
    return [
      { key: LAMDA_KEYS.S, shape: [r, r], data: S },
      { key: LAMDA_KEYS.B, shape: [m, r], data: Float32Array.from(U) },
    ];
  },

  forward({ g, site, config: c0, p, x, W, base }) {
    const config = moduleConfig(c0, site.name);
    const m = site.outFeatures, n = site.inFeatures, r = config.r;
    const w = toOutIn(site, weightData('LaMDA', W));
    const { A } = lamdaFactors(w, m, n, r);
    const Aw = frozen(g, `lamda_A.${site.name}.${fingerprint(w)}.${r}`, A, [r, n]);
    const h = op.gemm(op.gemm(x, Aw, { transB: true }), p[LAMDA_KEYS.S], { transB: true }); // [N, r]
    return op.gemm(h, p[LAMDA_KEYS.B], { transB: true, alpha: lamdaScaling(config) }, base);
  },

  deltaWeight(site, c0, params, baseWeight) {
    const config = moduleConfig(c0, site.name);
    if (!baseWeight) throw new Error('LaMDA: ΔW needs the base weight (A comes from its SVD)');
    const m = site.outFeatures, n = site.inFeatures, r = config.r, s = lamdaScaling(config);
    const { A } = lamdaFactors(baseWeight, m, n, r);
    const S = params[LAMDA_KEYS.S], B = params[LAMDA_KEYS.B];
    const BS = new Float64Array(m * r);
    for (let i = 0; i < m; i++) for (let k = 0; k < r; k++) for (let t = 0; t < r; t++) BS[i * r + t] += B[i * r + k] * S[k * r + t];
    const dW = new Float32Array(m * n);
    for (let i = 0; i < m; i++) for (let t = 0; t < r; t++) {
      const v = s * BS[i * r + t];
      for (let j = 0; j < n; j++) dW[i * n + j] += v * A[t * n + j];
    }
    return dW;
  },

  /** ΔW = s·(B·S)·A, r of this module. */
  factors(site, c0, params, baseWeight) {
    const config = moduleConfig(c0, site.name);
    if (!baseWeight) throw new Error('LaMDA: ΔW needs the base weight (A comes from its SVD)');
    const m = site.outFeatures, n = site.inFeatures, r = config.r;
    const { A } = lamdaFactors(baseWeight, m, n, r);
    return { A, B: matmul32(params[LAMDA_KEYS.B], params[LAMDA_KEYS.S], m, r, r), r, scale: lamdaScaling(config) };
  },

  paramCount(site, config) {
    const r = rankFor(config, site.name);
    return r * r + site.outFeatures * r;
  },

  hooks: {
    startRun({ state }) {
      state.frozen.clear(); // a new run freezes columns from its own values
    },
    // B's last `cols` columns (smallest singular values) are frozen: zero gradient,
    // and restored to the value they had when they froze after each step.
    beforeStep(ctx) {
      const st = ctx.state.frozen;
      eachFrozen(ctx.step, ctx.totalSteps, ctx.sites, (key, m, r, cols) => {
        const B = ctx.params.get(key)!, gB = ctx.grads.get(key)!;
        let e = st.get(key);
        if (!e) st.set(key, (e = { saved: new Float32Array(B.length), cols: 0 }));
        for (let c = r - cols; c < r - e.cols; c++) for (let i = 0; i < m; i++) e.saved[i * r + c] = B[i * r + c]; // newly frozen
        e.cols = Math.max(e.cols, cols);
        for (let c = r - e.cols; c < r; c++) for (let i = 0; i < m; i++) gB[i * r + c] = 0;
      });
    },
    afterStep(ctx) {
      const st = ctx.state.frozen;
      for (const s of ctx.sites) {
        const key = s.keys[LAMDA_KEYS.B], e = st.get(key);
        if (!e) continue;
        const B = ctx.params.get(key)!, r = rankFor(s.config, s.site.name), m = s.site.outFeatures;
        for (let c = r - e.cols; c < r; c++) for (let i = 0; i < m; i++) B[i * r + c] = e.saved[i * r + c];
      }
    },
  },
};
