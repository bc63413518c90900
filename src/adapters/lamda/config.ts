import { z } from 'zod';

/**
 * LaMDA (Azizi, Kundu, Pedram 2024, "LaMDA: Large Model Fine-Tuning via
 * Spectrally Decomposed Low-Dimensional Adaptation"):
 *   y = W0·x + s·B·S·A·x,   s = lora_alpha / r,
 * A (r×in, "PMA") frozen, S (r×r, the low-dimensional adapter) trainable, B
 * (out×r, "PMB") trainable at first and frozen gradually, one column at a
 * time, during the early steps. A and B start from the truncated SVD of W0:
 * A = V_rᵀ, B = U_r (W0 = UΣVᵀ, own SVD in src/linalg).
 *
 * Choices (the paper's code was not available to read):
 * - S = 0 at init, so ΔW = 0 and the model starts as the base model (with
 *   `init_weights: false`, S ~ N(0, 0.1²) for tests).
 * - Singular-vector signs are made canonical (the largest-|·| entry of each
 *   row of V_rᵀ positive, the matching column of U_r flipped with it), so A is
 *   a pure function of W0 and the PyTorch reference reproduces it.
 * - Freezing schedule: B's columns freeze in order of *ascending* singular
 *   value (the least important directions of W0 first); column j of the k
 *   frozen so far is frozen once step ≥ (k/r)·freeze_fraction·total steps, so
 *   B is entirely frozen after `freeze_fraction` of training (default 0.3).
 *   Frozen columns get zero gradient and are restored after each optimizer
 *   step (Adam's momentum would otherwise keep moving them).
 * - LaMDA++ (per-layer ranks from normalized singular-value energy) is not
 *   implemented here.
 * Trainable count (while B trains): r² + out·r. A is regenerated from W0, not stored.
 */
export const lamdaConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(16),
  /** Fraction of the training steps by which B is entirely frozen (0 = frozen from the start). */
  freeze_fraction: z.number().min(0).max(1).default(0.3),
  init_weights: z.boolean().default(true),
});
export type LamdaConfig = z.infer<typeof lamdaConfigSchema>;
export const lamdaScaling = (c: LamdaConfig) => c.lora_alpha / c.r;

/** How many of B's r columns are frozen at `step` of `total`. */
export function frozenColumns(step: number, total: number, c: Pick<LamdaConfig, 'r' | 'freeze_fraction'>): number {
  if (c.freeze_fraction <= 0) return c.r;
  const t = step / Math.max(1, c.freeze_fraction * total);
  return Math.min(c.r, Math.floor(t * c.r));
}
