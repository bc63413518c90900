// LoLDU (Shi et al. 2024; official code SKDDJ/LoLDU `minloldu/loldu.py`):
// W0 = P·L·D·U (LU with partial pivoting, D = diag of the U factor, U unit
// upper); with the first r components
//   W = W_res + σ·P·L_r·diag(z)·U_r,   W_res = W0 − σ0·P·L_r·diag(d)·U_r,
// trainable z [r] (init d) and σ (init σ0 = 1/r). We never form W_res: the
// site computes W0·x + P·L_r·(σ·z − σ0·d) ⊙ (U_r·x), the same function
// (ΔW = P·L_r·diag(σz − σ0d)·U_r, zero at init). P·L_r, U_r and d are
// recomputed from W0 (own LU, src/linalg/lu.ts) and cached by W0's contents.
// Keys `loldu_z`, `loldu_sigma` (our own names: PEFT has no LoLDU).
import { z } from 'zod';
import * as op from '../../graph/ops.ts';
import type { LinearSite } from '../../models/types.ts';
import { luPartialPivot } from '../../linalg/lu.ts';
import type { AdapterMethod } from '../types.ts';
import { fingerprint, frozen, memo, outIn64, weightData } from '../bases.ts';

export const lolduConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  /** σ0, the initial σ (default 1/r). */
  sigma: z.number().positive().nullable().default(null),
  /** true: z = d (ΔW = 0). false: z = d·(1 + 0.5·N(0,1)) (tests). */
  init_weights: z.boolean().default(true),
});
export type LolduConfig = z.infer<typeof lolduConfigSchema>;

export const sigma0 = (c: LolduConfig) => c.sigma ?? 1 / c.r;

/** P·L_r [out, r], U_r [r, in] (unit upper) and d [r] of a frozen weight (site layout), cached. */
export function lolduFactors(site: LinearSite, w: Float32Array, r: number): { PL: Float32Array; Ur: Float32Array; d: Float32Array } {
  return memo(`ldu|${fingerprint(w)}|${site.layout}|${site.outFeatures}x${site.inFeatures}|${r}`, () => {
    const m = site.outFeatures, n = site.inFeatures;
    const { perm, L, U, k } = luPartialPivot(outIn64(site, w), m, n);
    const PL = new Float32Array(m * r), Ur = new Float32Array(r * n), d = new Float32Array(r);
    // (P·L)[perm[i]] = L[i]
    for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) PL[perm[i] * r + j] = L[i * k + j];
    for (let i = 0; i < r; i++) {
      const di = U[i * n + i];
      if (di === 0) throw new Error(`loldu: '${site.name}' has a zero pivot at ${i} (rank < r)`);
      d[i] = di;
      for (let j = 0; j < n; j++) Ur[i * n + j] = U[i * n + j] / di;
    }
    return { PL, Ur, d };
  });
}

/** σ·z − σ0·d per component, each product rounded to float32 as the graph computes it. */
function lolduCoefficients(config: LolduConfig, params: Record<string, Float32Array>, d: Float32Array): Float64Array {
  const zz = params['loldu_z'], sg = params['loldu_sigma'][0], s0 = sigma0(config);
  return Float64Array.from({ length: config.r }, (_, i) => Math.fround(zz[i] * sg) - Math.fround(s0 * d[i]));
}

export const loldu: AdapterMethod<LolduConfig> = {
  name: 'loldu',
  schema: lolduConfigSchema,
  peft: { peftType: 'LOLDU', onlyBias: 'lora_only', moduleKeys: ['loldu_z', 'loldu_sigma'] },

  init({ site, config, rng, baseWeight }) {
    const r = config.r;
    if (r > Math.min(site.inFeatures, site.outFeatures)) throw new Error(`loldu: r=${r} exceeds min(in, out) of '${site.name}'`);
    const { d } = lolduFactors(site, baseWeight, r);
    const zz = Float32Array.from(d);
    if (!config.init_weights) for (let i = 0; i < r; i++) zz[i] *= 1 + 0.5 * rng.normal();
    return [
      { key: 'loldu_z', shape: [r], data: zz },
      { key: 'loldu_sigma', shape: [1], data: Float32Array.of(sigma0(config)) },
    ];
  },

  forward({ g, site, config, p, x, W, base }) {
    const r = config.r, m = site.outFeatures, n = site.inFeatures;
    const { PL, Ur, d } = lolduFactors(site, weightData('loldu', W), r);
    const tag = `${site.weightKey}.loldu.r${r}`;
    const s0d = Float32Array.from(d, (v) => v * sigma0(config));
    const coef = op.sub(op.mul(p['loldu_z'], p['loldu_sigma']), frozen(g, `${tag}.s0d.${sigma0(config)}`, s0d, [r]));
    const h = op.mul(op.gemm(x, frozen(g, `${tag}.Ur`, Ur, [r, n]), { transB: true }), coef);
    return op.gemm(h, frozen(g, `${tag}.PL`, PL, [m, r]), { transB: true }, base);
  },

  deltaWeight(site, config, params, baseWeight) {
    if (!baseWeight) throw new Error('loldu: merge needs the base weight');
    const r = config.r, m = site.outFeatures, n = site.inFeatures;
    const { PL, Ur, d } = lolduFactors({ ...site, layout: 'out_in' }, baseWeight, r);
    const c = lolduCoefficients(config, params, d);
    const dW = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      const acc = new Float64Array(n);
      for (let k = 0; k < r; k++) {
        const f = PL[i * r + k] * c[k];
        if (f === 0) continue;
        for (let j = 0; j < n; j++) acc[j] += f * Ur[k * n + j];
      }
      dW.set(acc, i * n);
    }
    return dW;
  },

  /** ΔW = (P·L_r·diag(σz − σ0d))·U_r. */
  factors(site, config, params, baseWeight) {
    if (!baseWeight) throw new Error('loldu: ΔW needs the base weight (its factors come from its LU)');
    const r = config.r, m = site.outFeatures;
    const { PL, Ur, d } = lolduFactors({ ...site, layout: 'out_in' }, baseWeight, r);
    const c = lolduCoefficients(config, params, d);
    const B = new Float32Array(m * r);
    for (let i = 0; i < m; i++) for (let k = 0; k < r; k++) B[i * r + k] = PL[i * r + k] * c[k];
    return { A: Ur, B, r, scale: 1 };
  },

  deltaDependsOnBase: true,

  /** METHODS.md: z (r) + σ (1). */
  paramCount(_site, config) {
    return config.r + 1;
  },
};
