import { z } from 'zod';
import { patternValue } from '../targets.ts';

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
 * - LaMDA++ (`lamda_plus_plus: true`): per-module ranks r_l from the
 *   normalized singular-value energy of each pretrained weight, under a total
 *   rank budget (rule and its provenance in ./allocate.ts). The ranks are kept
 *   in `rank_pattern` (module name → r_l, PEFT's pattern-key rule), which is
 *   saved with the adapter, so a reload rebuilds exactly these ranks without
 *   recomputing them. `rank_pattern` also works alone (hand-set ranks).
 *   Each module's scale is lora_alpha / r_l.
 * Trainable count (while B trains): r_l² + out·r_l per module. A is regenerated from W0, not stored.
 */
export const lamdaConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(16),
  /** Fraction of the training steps by which B is entirely frozen (0 = frozen from the start). */
  freeze_fraction: z.number().min(0).max(1).default(0.3),
  init_weights: z.boolean().default(true),
  /** LaMDA++: allocate per-module ranks from the weights' normalized singular-value energy (./allocate.ts). */
  lamda_plus_plus: z.boolean().default(false),
  /** LaMDA++ budget: Σ r_l over the adapted modules (default r × number of modules, i.e. average rank r). */
  total_rank: z.number().int().positive().nullable().default(null),
  /** LaMDA++ bounds on each r_l (max_rank default 2·r; never above min(out, in)). */
  min_rank: z.number().int().positive().default(1),
  max_rank: z.number().int().positive().nullable().default(null),
  /** Per-module ranks (module name or PEFT pattern key → r); LaMDA++ fills it. */
  rank_pattern: z.record(z.string(), z.number().int().positive()).default({}),
});
export type LamdaConfig = z.infer<typeof lamdaConfigSchema>;
export const lamdaScaling = (c: Pick<LamdaConfig, 'lora_alpha' | 'r'>) => c.lora_alpha / c.r;

/** r of one module: its rank_pattern entry (exact name first, then PEFT's `(.*\.)?key$` rule), else r. */
export function rankFor(c: Pick<LamdaConfig, 'r' | 'rank_pattern'>, module: string): number {
  const p = c.rank_pattern ?? {};
  if (Object.hasOwn(p, module)) return p[module];
  return patternValue(p, module, c.r);
}

/** The config one module runs with: r = its rank (so scaling, shapes and the freezing schedule follow it). */
export function moduleConfig(c: LamdaConfig, module: string): LamdaConfig {
  const r = rankFor(c, module);
  return r === c.r ? c : { ...c, r };
}

/** How many of B's r columns are frozen at `step` of `total`. */
export function frozenColumns(step: number, total: number, c: Pick<LamdaConfig, 'r' | 'freeze_fraction'>): number {
  if (c.freeze_fraction <= 0) return c.r;
  const t = step / Math.max(1, c.freeze_fraction * total);
  return Math.min(c.r, Math.floor(t * c.r));
}
