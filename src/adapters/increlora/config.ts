import { z } from 'zod';

/**
 * IncreLoRA (Zhang et al., arXiv 2308.12043; official code FeiyuZhang98/IncreLoRA,
 * loralib/loralib/increlora.py SVDLinear and RankAllocator, NLU/src/transformers/
 * trainer.py compute_svd_orth_regu, optimization.py Multi_LambdaLR):
 *   ΔW = B·(A ⊙ E)·α/(ranknum + 1e-5)
 * over the components created so far: `init_r` active ones (E0 = 0, A0 and B0 ~
 * N(0, 0.02)), and, from step 0, `add_r` reserve components per module whose a and
 * b train while e = 1e-5 stays frozen (advance learning; e = 0 and a, b frozen
 * without it). A module's score is S = Σ|ΔW| ⊙ |∂L/∂ΔW| / √(mn), smoothed into
 * Ī, Ū (β1, β2); every `incre_interval` steps after `init_warmup` the modules
 * whose Ī·Ū is ≥ the k-th largest (k = min(top_h, target − total)) get add_r
 * more ranks: ranknum += add_r, their reserve e starts training, new reserves
 * are added. Each such event's new parameters form a new group with its own
 * linear warmup/decay (multi_lr). When the total reaches the target the last
 * reserves' e are set to 0. The loss gets reg_orth_coef · mean over modules of
 * ‖AAᵀ − I‖_F and ‖BᵀB − I‖_F (created components, reserves included).
 *
 * The method updates A, B and E itself with transformers' AdamW (eps 1e-8:
 * TrainingArguments' default; wd `weight_decay`; decay after the update), per
 * component with its own step count and group learning rate.
 *
 * Defaults: the RTE script at average rank 2 (NLU/scripts/rank=2/run_rte.sh):
 * lora_r 1, target_rank 2, top_h 5, init_warmup = incre_interval = 100,
 * reg_orth_coef 0.3, lora_alpha 32, β 0.85/0.85, advance learning and multi_lr on,
 * weight decay 0.01. add_r (incre_rank_num) null: {2:1, 4:2, 6:3, 8:4}[target_rank].
 *
 * lorakit's own choice: tensors have a fixed capacity `max_rank` per module
 * (components not yet created are zero and untouched), null = init_r +
 * min(target − initial total, 4·target_rank) + add_r, filled in when the set is
 * built (so a saved adapter reloads at the same shape). A module at capacity is
 * left out of the ranking (the official code has no such limit).
 */
export const increloraConfigSchema = z.object({
  init_r: z.number().int().positive().default(1),
  target_rank: z.number().int().positive().default(2),
  target_total_rank: z.number().int().positive().nullable().default(null),
  incre_rank_num: z.number().int().positive().nullable().default(null),
  top_h: z.number().int().positive().default(5),
  init_warmup: z.number().int().nonnegative().default(100),
  incre_interval: z.number().int().positive().default(100),
  beta1: z.number().gt(0).lt(1).default(0.85),
  beta2: z.number().gt(0).lt(1).default(0.85),
  advance_learn: z.boolean().default(true),
  multi_lr: z.boolean().default(true),
  reg_orth_coef: z.number().nonnegative().default(0.3),
  lora_alpha: z.number().default(32),
  lora_dropout: z.number().min(0).max(1).default(0),
  weight_decay: z.number().nonnegative().default(0.01),
  adam_epsilon: z.number().positive().default(1e-8),
  max_rank: z.number().int().positive().nullable().default(null),
  /** Tests: E ~ N(0, 1) at init (the official E0 = 0 makes ΔW = 0). */
  init_weights: z.boolean().default(true),
});
export type IncreloraConfig = z.infer<typeof increloraConfigSchema>;

/** add_r: incre_rank_num, or the official table by average target rank. */
export function addRank(c: Pick<IncreloraConfig, 'incre_rank_num' | 'target_rank'>): number {
  if (c.incre_rank_num !== null) return c.incre_rank_num;
  const t: Record<number, number> = { 2: 1, 4: 2, 6: 3, 8: 4 };
  if (!(c.target_rank in t)) throw new Error(`IncreLoRA: incre_rank_num is not set and target_rank ${c.target_rank} is not one of 2, 4, 6, 8 (the official table); set incre_rank_num`);
  return t[c.target_rank];
}

/** The run's target total rank. */
export const targetTotal = (c: IncreloraConfig, modules: number) => c.target_total_rank ?? c.target_rank * modules;

/** scaling/(ranknum + 1e-5), scaling = lora_alpha if > 0 else init_r. */
export function increScale(c: Pick<IncreloraConfig, 'lora_alpha' | 'init_r'>, ranknum: number): number {
  return (c.lora_alpha > 0 ? c.lora_alpha : c.init_r) / Math.fround(ranknum + 1e-5);
}

/**
 * Multi_LambdaLR's multiplier for a group created during step `created` (−1 for
 * the first group) at optimizer step `step`: the linear warmup/decay of
 * get_linear_schedule_with_warmup over the steps that remained, counted from 0
 * at the step after its creation.
 */
export function groupLambda(step: number, created: number, warmup: number, total: number): number {
  const k = step - created - 1;
  const T = total - created - 1;
  if (k < warmup) return k / Math.max(1, warmup);
  return Math.max(0, (T - k) / Math.max(1, T - warmup));
}
