import { z } from 'zod';

/**
 * DiffoRA-style module selection (Jiang, Wang, Yuan, arXiv 2502.08905) —
 * UNVERIFIED: no official code exists, and the paper's relaxation, ρ and
 * weight-sharing mechanics could not be read here. Every rule below is
 * lorakit's own reading of the summary in shared/docs/methods/rank_optim_workflows.md;
 * do not compare its numbers with the paper's.
 *
 * - Each adapted module j has a LoRA and one gate a_j ∈ R (the entry of the
 *   "Differential Adaptation Matrix"): h = W0·x + σ(a_j)·s·B_j·A_j·x, s = α/r, a_j = 0 at init.
 * - Search phase (the first `search_fraction` of the steps), first-order
 *   bi-level updates alternating batch by batch (DARTS' first-order scheme):
 *   even steps update the LoRA weights (and the task head) with the loop's AdamW
 *   while the gates stay; odd steps are "held-out" batches on which only the
 *   gates move, with their own Adam (DARTS' architecture optimizer: β = (0.5,
 *   0.999), L2 weight decay 1e-3; lr `arch_lr`).
 * - Discretization at the end of the search: the round(ρ·L) modules (at least 1)
 *   with the largest σ(a_j) are kept (ties: the earlier module), the others'
 *   A_j and B_j are dropped (zeroed, no longer used).
 * - Weight sharing: the kept modules continue from the weights learned during
 *   the search, with σ(a_j) folded into B_j (B_j ← σ(a_j)·B_j, gate fixed to 1),
 *   so the function does not jump at the discretization.
 * Defaults (lorakit's): r 8, α 16, ρ 0.5, search 30% of the steps, arch_lr 3e-3
 * (ten times DARTS' 3e-4: lorakit's runs are hundreds of steps, not epochs).
 */
export const difforaConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(16),
  lora_dropout: z.number().min(0).max(1).default(0),
  /** ρ: fraction of the modules kept at the discretization. */
  rho: z.number().gt(0).max(1).default(0.5),
  /** Fraction of the training steps spent searching (0: keep every module, no search). */
  search_fraction: z.number().min(0).max(1).default(0.3),
  arch_lr: z.number().positive().default(3e-3),
  arch_weight_decay: z.number().nonnegative().default(1e-3),
  /** Tests: B random too, so the adapter changes outputs at init. */
  init_weights: z.boolean().default(true),
});
export type DifforaConfig = z.infer<typeof difforaConfigSchema>;

export const ARCH_ADAM = { beta1: 0.5, beta2: 0.999, eps: 1e-8 } as const;

/** Kept modules for gates γ: the round(ρ·L) largest (at least one), ties to the earlier module. */
export function selectTopRho(gammas: number[], rho: number): boolean[] {
  const L = gammas.length;
  const k = Math.max(1, Math.round(rho * L));
  const order = gammas.map((g, i) => i).sort((a, b) => gammas[b] - gammas[a] || a - b);
  const keep = new Array(L).fill(false);
  for (const i of order.slice(0, k)) keep[i] = true;
  return keep;
}

/** The step at which the search ends (discretization after it). */
export const searchSteps = (c: Pick<DifforaConfig, 'search_fraction'>, total: number) => Math.floor(c.search_fraction * total);

/** torch.optim.Adam (L2 weight decay added to the gradient, bias-corrected) on one tensor in place; t = its step count after this step. */
export function adamL2Step(p: Float32Array | Float64Array, grad: ArrayLike<number>, m: Float32Array | Float64Array, v: Float32Array | Float64Array, t: number, h: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }): void {
  const bc1 = 1 - h.beta1 ** t, bc2 = 1 - h.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    const g = grad[i] + h.weightDecay * p[i];
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps;
    p[i] = p[i] - (h.lr / bc1) * (m[i] / denom);
  }
}
