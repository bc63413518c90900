// LoRA-SB (Ponkshe, Singhal et al. 2025; official code RaghavSinghal10/lora-sb):
// LoRA-XS's shape, W0·x + s·B·R·A·x with only R [r, r] trainable, initialized
// from an approximation of the first full fine-tuning step:
//   ΔW1 = −η·sign(Σ_batches ∂L/∂W0)   (utils/gradient_utils.py)
//   SVD(ΔW1) → B = U_r, R = Σ_r, A = V_rᵀ,  s = 1.
// The gradient init runs in the `beforeFit` hook (a few batches of the
// training set, frozen-weight gradients of the task's loss from the training loop, FitHookContext.weightGradients). B and
// A are stored with the adapter (`lorasb_B`, `lorasb_A`: they come from data,
// not a seed) and kept frozen by the per-step hooks (grads zeroed before the
// step, values restored after it, so weight decay does not move them). Until
// the init runs, B, A are the top-r singular vectors of W0 and R = 0 (ΔW = 0).
// Trainable parameters: r² per module (METHODS.md).
import { z } from 'zod';
import * as op from '../../graph/ops.ts';
import { svdTopR } from '../../linalg/svd.ts';
import type { AdapterMethod, HookSite } from '../types.ts';
import { matmul32, outIn64 } from '../bases.ts';

export const lorasbConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  /** s (LoRA-SB: 1). */
  scaling: z.number().positive().default(1),
  /** η of ΔW1 = −η·sign(Σ∇W L). */
  init_lr: z.number().positive().default(1e-3),
  /** Batches of the training set for the gradient estimate. */
  init_batches: z.number().int().positive().default(8),
  init_batch_size: z.number().int().positive().default(8),
  /** true: gradient init before training. false: R ~ N(0, 0.1²), no gradient init (tests). */
  init_weights: z.boolean().default(true),
});
export type LorasbConfig = z.infer<typeof lorasbConfigSchema>;

/** Stored with the adapter, never trained. */
export const LORASB_FROZEN = ['lorasb_A', 'lorasb_B'];
/** LoRA-SB's state per adapter set: the frozen B and A as they were when training started (restored after each step). */
export interface LorasbState {
  snapshot: Map<string, Float32Array> | null;
}

/** Sets B, R, A of one site from a dense ΔW1 [out, in]: B = U_r, R = diag(S_r), A = V_rᵀ. */
export function lorasbFromUpdate(dW: Float64Array, m: number, n: number, r: number, dst: { A: Float32Array; B: Float32Array; R: Float32Array }): void {
  const { U, S, Vt } = svdTopR(dW, m, n, r);
  dst.B.set(Float32Array.from(U));
  dst.A.set(Float32Array.from(Vt));
  dst.R.fill(0);
  for (let i = 0; i < r; i++) dst.R[i * r + i] = S[i];
}

export const lorasb: AdapterMethod<LorasbConfig, LorasbState> = {
  name: 'lorasb',
  schema: lorasbConfigSchema,
  peft: { peftType: 'LORASB', onlyBias: 'lora_only', moduleKeys: ['lorasb_A', 'lorasb_B', 'lorasb_R'] },

  createState: () => ({ snapshot: null }),

  init({ site, config, rng, baseWeight }) {
    const r = config.r, m = site.outFeatures, n = site.inFeatures;
    if (r > Math.min(m, n)) throw new Error(`lorasb: r=${r} exceeds min(in, out) of '${site.name}'`);
    const { U, Vt } = svdTopR(outIn64(site, baseWeight), m, n, r);
    const R = new Float32Array(r * r);
    if (!config.init_weights) rng.fillNormal(R, 0, 0.1);
    return [
      { key: 'lorasb_A', shape: [r, n], data: Float32Array.from(Vt) },
      { key: 'lorasb_B', shape: [m, r], data: Float32Array.from(U) },
      { key: 'lorasb_R', shape: [r, r], data: R },
    ];
  },

  forward({ config, p, x, base }) {
    const h = op.gemm(op.gemm(x, p['lorasb_A'], { transB: true }), p['lorasb_R'], { transB: true });
    return op.gemm(h, p['lorasb_B'], { transB: true, alpha: config.scaling }, base);
  },

  deltaWeight(site, config, params) {
    const r = config.r, m = site.outFeatures, n = site.inFeatures;
    const A = params['lorasb_A'], B = params['lorasb_B'], R = params['lorasb_R'];
    const dW = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      const acc = new Float64Array(n);
      for (let k = 0; k < r; k++) {
        let v = 0;
        for (let t = 0; t < r; t++) v += B[i * r + t] * R[t * r + k];
        if (v !== 0) for (let j = 0; j < n; j++) acc[j] += v * A[k * n + j];
      }
      for (let j = 0; j < n; j++) dW[i * n + j] = config.scaling * acc[j];
    }
    return dW;
  },

  /** ΔW = s·(B·R)·A. */
  factors(site, config, params) {
    const r = config.r;
    return { A: params['lorasb_A'], B: matmul32(params['lorasb_B'], params['lorasb_R'], site.outFeatures, r, r), r, scale: config.scaling };
  },

  /** METHODS.md: R (r×r); B and A are stored but frozen. */
  paramCount(_site, config) {
    return config.r * config.r;
  },

  hooks: {
    startRun({ state }) {
      state.snapshot = null; // retaken from B and A at this run's first step
    },
    async beforeFit(ctx) {
      if (!ctx.config.init_weights) return;
      const sites = ctx.sites.map((s: HookSite) => s.site);
      const G = await ctx.weightGradients(sites, { batches: ctx.config.init_batches, batchSize: ctx.config.init_batch_size });
      for (const hs of ctx.sites as HookSite<LorasbConfig>[]) {
        const g = G.get(hs.site.name)!;
        const dW1 = new Float64Array(g.length);
        for (let i = 0; i < g.length; i++) dW1[i] = -hs.config.init_lr * Math.sign(g[i]);
        const P = ctx.params;
        lorasbFromUpdate(dW1, hs.site.outFeatures, hs.site.inFeatures, hs.config.r, { A: P.get(hs.keys['lorasb_A'])!, B: P.get(hs.keys['lorasb_B'])!, R: P.get(hs.keys['lorasb_R'])! });
      }
    },
    beforeStep(ctx) {
      let snap = ctx.state.snapshot;
      if (!snap) {
        snap = new Map();
        for (const s of ctx.sites) for (const k of LORASB_FROZEN) snap.set(s.keys[k], Float32Array.from(ctx.params.get(s.keys[k])!));
        ctx.state.snapshot = snap;
      }
      for (const key of snap.keys()) ctx.grads.get(key)?.fill(0);
    },
    afterStep(ctx) {
      const snap = ctx.state.snapshot;
      if (snap) for (const [key, v] of snap) ctx.params.get(key)!.set(v);
    },
  },
};
