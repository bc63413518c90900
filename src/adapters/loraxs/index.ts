// LoRA-XS (Bałazy et al. 2024; official code MohammadrezaBanaei/LoRA-XS):
// frozen factors from the truncated SVD of W0 = U Σ Vᵀ and a trainable r×r R
// between them:
//   ΔW = s · U_r · R · (Σ_r V_rᵀ),   s = lora_alpha / r  (default α = 16),
// R ~ N(0, 1e-5²). U_r and Σ_rV_rᵀ are recomputed from W0 (own SVD, src/linalg)
// and cached by W0's contents, never stored. Key `loraxs_R` (our own name).
import { z } from 'zod';
import * as op from '../../graph/ops.ts';
import type { LinearSite } from '../../models/types.ts';
import { svdTopR } from '../../linalg/svd.ts';
import type { AdapterMethod } from '../types.ts';
import { fingerprint, frozen, matmul32, memo, outIn64, weightData } from '../bases.ts';

export const loraxsConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  /** s = lora_alpha / r (LoRA-XS: 16 / r). */
  lora_alpha: z.number().positive().default(16),
  /** Std of the N(0, std²) init of R. */
  init_std: z.number().nonnegative().default(1e-5),
  /** true: R ~ N(0, init_std²). false: R ~ N(0, 0.1²) (tests). */
  init_weights: z.boolean().default(true),
});
export type LoraxsConfig = z.infer<typeof loraxsConfigSchema>;

/** U_r [out, r] and Σ_rV_rᵀ [r, in] of a frozen weight (site layout), cached by contents. */
export function svdFactors(site: LinearSite, w: Float32Array, r: number): { U: Float32Array; SVt: Float32Array; S: Float64Array } {
  return memo(`svd|${fingerprint(w)}|${site.layout}|${site.outFeatures}x${site.inFeatures}|${r}`, () => {
    const m = site.outFeatures, n = site.inFeatures;
    const { U, S, Vt } = svdTopR(outIn64(site, w), m, n, r);
    const SVt = new Float32Array(r * n);
    for (let i = 0; i < r; i++) for (let j = 0; j < n; j++) SVt[i * n + j] = S[i] * Vt[i * n + j];
    return { U: Float32Array.from(U), SVt, S };
  });
}

export const loraxs: AdapterMethod<LoraxsConfig> = {
  name: 'loraxs',
  schema: loraxsConfigSchema,
  peft: { peftType: 'LORAXS', onlyBias: 'lora_only', moduleKeys: ['loraxs_R'] },

  init({ site, config, rng, baseWeight }) {
    const r = config.r;
    if (r > Math.min(site.inFeatures, site.outFeatures)) throw new Error(`loraxs: r=${r} exceeds min(in, out) of '${site.name}'`);
    svdFactors(site, baseWeight, r); // factor once now (the forward and merge reuse it)
    const R = rng.fillNormal(new Float32Array(r * r), 0, config.init_weights ? config.init_std : 0.1);
    return [{ key: 'loraxs_R', shape: [r, r], data: R }];
  },

  forward({ g, site, config, p, x, W, base }) {
    const r = config.r, m = site.outFeatures, n = site.inFeatures;
    const { U, SVt } = svdFactors(site, weightData('loraxs', W), r);
    const tag = `${site.weightKey}.loraxs.r${r}`;
    const h = op.gemm(x, frozen(g, `${tag}.SVt`, SVt, [r, n]), { transB: true }); // [N, r]
    const hr = op.gemm(h, p['loraxs_R'], { transB: true }); // (R·h)
    return op.gemm(hr, frozen(g, `${tag}.U`, U, [m, r]), { transB: true, alpha: config.lora_alpha / r }, base);
  },

  deltaWeight(site, config, params, baseWeight) {
    const f = loraxs.factors!(site, config, params, baseWeight);
    const dW = matmul32(f.B, f.A, site.outFeatures, f.r, site.inFeatures);
    for (let i = 0; i < dW.length; i++) dW[i] *= f.scale;
    return dW;
  },

  /** ΔW = s·(U_r·R)·(Σ_rV_rᵀ). */
  factors(site, config, params, baseWeight) {
    if (!baseWeight) throw new Error('loraxs: ΔW needs the base weight (its factors come from its SVD)');
    const r = config.r;
    // baseWeight is [out, in]: factor it as an out_in site.
    const { U, SVt } = svdFactors({ ...site, layout: 'out_in' }, baseWeight, r);
    return { A: SVt, B: matmul32(U, params['loraxs_R'], site.outFeatures, r, r), r, scale: config.lora_alpha / r };
  },

  deltaDependsOnBase: true,

  /** METHODS.md: R (r×r). */
  paramCount(_site, config) {
    return config.r * config.r;
  },
};
