import { z } from 'zod';

/**
 * AdaLoRA (Zhang et al., ICLR 2023), as PEFT implements it (tuners/adalora:
 * layer.py SVDLinear and RankAllocator, model.py forward and update_and_allocate):
 *   h = W0·x + (x·(A ⊙ E)ᵀ·Bᵀ)·α/(ranknum + 1e-5),  ranknum = init_r (fixed),
 * A [r, in], E [r, 1], B [out, r]. After every optimizer step the allocator
 * updates the importance EMAs of every entry (I = |p·∇p|, Ī, Ū; score Ī·Ū),
 * and on the budget schedule masks the triplets (E_i, A_i, B_·i) whose score
 * S_i = s(E_i) + mean_j s(A_ij) + mean_j s(B_ji) is ≤ the k-th smallest
 * (E_i set to 0). Budget: b0 = Σ init_r up to tinit, the cubic
 * b(t) = int((b0 − bT)·(1 − (t − tinit)/(T − tfinal − tinit))³ + bT) in
 * between (masking every deltaT steps), bT = target_r × modules from
 * T − tfinal (the mask is then fixed as rank_pattern). The loss gets
 * orth_reg_weight · mean over A and B matrices of ‖PPᵀ − I‖_F.
 *
 * Fields and defaults are PEFT's AdaLoraConfig (init_r 12, target_r 8, tinit 0,
 * tfinal 0, deltaT 1, β 0.85/0.85, orth_reg_weight 0.5, lora_alpha 8).
 * total_step: PEFT requires it; null here means "the training run's number of
 * steps" (the loop's), and the saved adapter_config.json records the run's.
 * rank_pattern: PEFT's {"<module>.lora_E": [kept…]}, set on a loaded adapter
 * whose triplets were dropped; such a module is built at its kept rank (with
 * ranknum still init_r) and no longer allocated. α is lora_alpha, or with
 * lora_alpha ≤ 0 the module's rank as PEFT built it: init_r, and on a module
 * read back with rank_pattern its kept rank (adaloraScale; checked against
 * real PEFT 0.20 by test/peft_real.test.ts, adalora_llama_alpha0).
 */
export const adaloraConfigSchema = z.object({
  init_r: z.number().int().positive().default(12),
  target_r: z.number().int().nonnegative().default(8),
  tinit: z.number().int().nonnegative().default(0),
  tfinal: z.number().int().nonnegative().default(0),
  deltaT: z.number().int().positive().default(1),
  beta1: z.number().gt(0).lt(1).default(0.85),
  beta2: z.number().gt(0).lt(1).default(0.85),
  orth_reg_weight: z.number().nonnegative().default(0.5),
  total_step: z.number().int().positive().nullable().default(null),
  rank_pattern: z.record(z.string(), z.array(z.boolean())).nullable().default(null),
  lora_alpha: z.number().default(8),
  lora_dropout: z.number().min(0).max(1).default(0),
  /** PEFT's init_lora_weights: true = E 0, A and B ~ N(0, 0.02); false = all N(0, 1) (tests). */
  init_lora_weights: z.boolean().default(true),
});
export type AdaloraConfig = z.infer<typeof adaloraConfigSchema>;

/**
 * scaling/(ranknum + 1e-5), ranknum = init_r (PEFT's SVDLinear: ranknum is init_r, also after the resize by
 * rank_pattern, which copies it). scaling = lora_alpha if lora_alpha > 0, else float(r) with r the rank the
 * module was last built with (update_layer): init_r, or — on an adapter read back with rank_pattern, whose
 * modules PEFT rebuilds at their kept rank (resize_modules_by_rank_pattern) — the module's kept rank. Pass the
 * module to get that per-module rule.
 */
export function adaloraScale(c: Pick<AdaloraConfig, 'lora_alpha' | 'init_r' | 'rank_pattern'>, module?: string): number {
  const s = c.lora_alpha > 0 ? c.lora_alpha : module === undefined ? c.init_r : moduleRank(c, module);
  return s / Math.fround(c.init_r + 1e-5);
}

/** rank_pattern key of a module (PEFT: the lora_E parameter's name without the adapter name). */
export const patternKey = (module: string) => `${module}.lora_E`;

/**
 * A module's kept triplets in rank_pattern, or undefined. PEFT's saver strips the adapter name from the keys
 * ("<module>.lora_E"); its loader also takes them with it ("<module>.lora_E.default").
 */
export function modulePattern(c: Pick<AdaloraConfig, 'rank_pattern'>, module: string): boolean[] | undefined {
  return c.rank_pattern?.[patternKey(module)] ?? c.rank_pattern?.[`${patternKey(module)}.default`];
}

/** The rank a module is built with: its kept triplets in rank_pattern, else init_r. */
export function moduleRank(c: Pick<AdaloraConfig, 'init_r' | 'rank_pattern'>, module: string): number {
  const p = modulePattern(c, module);
  return p ? p.filter(Boolean).length : c.init_r;
}
