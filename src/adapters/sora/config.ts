import { z } from 'zod';

/**
 * SoRA (Ding et al., EMNLP 2023, "Sparse Low-rank Adaptation of Pre-trained
 * Language Models"; official code TsinghuaC3I/SoRA):
 *   h = W0·x + s·B·(g ⊙ A·dropout(x)),  s = lora_alpha / r,  g ∈ R^r (one gate per rank),
 * loss L_task + λ·Σ_modules Σ_i |g_i| / N_g (N_g: gate entries over all modules),
 * and the gates are updated by their own AdamW (SparseAdamW: transformers'
 * AdamW with eps 1e-6, wd 0, bias correction folded into the step size)
 * followed by the threshold ξ (./threshold.ts). The other tensors use the
 * loop's AdamW.
 *
 * Defaults: the main GLUE script (scripts/run_glue_sora_no_schedule.sh):
 * r 8, α 16, λ 10, ξ 3e-4 held constant. That script also clips gradients to
 * 0.1 and uses lr 8e-4 / wd 0.1: loop settings (--max-grad-norm, --lr,
 * --weight-decay), not the method's, so pass them to `lorakit train` to match.
 * Init as the official LowRankLinear: A kaiming-uniform(a=√5), B = 0, g ~ N(0, 1).
 */
export const soraConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(16),
  lora_dropout: z.number().min(0).max(1).default(0),
  /** λ of the L1 term (official --sparse_lambda). */
  sparse_lambda: z.number().nonnegative().default(10),
  /** ξ, the gate threshold after each gate step (official --sparse_lambda_2); absolute, not scaled by the learning rate. */
  sparse_lambda_2: z.number().nonnegative().default(3e-4),
  /** Learning rate of the gates (official --sparse_lr); null: the loop's. Follows the loop's schedule. */
  sparse_lr: z.number().positive().nullable().default(null),
  /** 'official': shrink-then-zero (0 below 2ξ); 'soft': the paper's sign(g)·max(|g| − ξ, 0). */
  threshold: z.enum(['official', 'soft']).default('official'),
  /** Tests: B random too, so the adapter changes outputs at init. */
  init_weights: z.boolean().default(true),
});
export type SoraConfig = z.infer<typeof soraConfigSchema>;
export const soraScaling = (c: Pick<SoraConfig, 'r' | 'lora_alpha'>) => c.lora_alpha / c.r;

/** SparseAdamW's fixed hyperparameters (transformers' AdamW defaults as the official code builds it). */
export const SPARSE_ADAMW = { beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0 } as const;

/**
 * ξ_k of the "sparsifying scheduler" (SparseAdamW._build_lambda_list), in float64 as numpy computes it:
 *   linear      linspace(ξ0, ξmax, K)
 *   log_linear  log(linspace(e^ξ0, e^ξmax, K))
 *   exp_linear  exp(linspace(log ξ0, log ξmax, K))
 */
export function xiSchedule(shape: 'linear' | 'log_linear' | 'exp_linear', xi0: number, xiMax: number, K: number): number[] {
  const linspace = (a: number, b: number) => numpyLinspace(a, b, K);
  if (shape === 'linear') return linspace(xi0, xiMax);
  if (shape === 'log_linear') return linspace(Math.exp(xi0), Math.exp(xiMax)).map(Math.log);
  if (!(xi0 > 0)) throw new Error(`SoRA xi schedule 'exp_linear' needs a positive start (log ξ0), got ${xi0}`);
  return linspace(Math.log(xi0), Math.log(xiMax)).map(Math.exp);
}

/** numpy.linspace(start, stop, num) with endpoint: start + i·step, the last value exactly `stop`. */
export function numpyLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => start + i * step);
  out[num - 1] = stop;
  return out;
}
