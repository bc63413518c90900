import { z } from 'zod';
import { numpyLinspace } from '../sora/config.ts';

/**
 * CoDyRA (Lu et al., arXiv 2412.01004, "Continual Learning with Dynamic Rank-Selective
 * LoRA"; official code Artificer-AI-Lab/CoDyRA, loralib/codyra.py and models/codyra.py):
 *   h = W0·x + B·(g ⊙ A·dropout(x))     — no α/r scale (lora_scaling 1 is never applied)
 * A kaiming-uniform, B = 0, g ~ N(0, 1); no sparsity term in the loss. A, B and g
 * share one torch AdamW with β = (0.9, 0.9999) and wd 0 (the method runs it on its
 * own tensors, the loop's schedule gives the learning rate: the official one is
 * cosine without warmup, `--schedule cosine --warmup-ratio 0`). After the dense
 * phase, each step ends with SoRA's shrink-then-zero threshold κ on every gate,
 * κ from linspace(0, κ_max, lambda_num) advanced every (T − T_dense)//lambda_num
 * steps (kappaAt). When the sparse phase has fewer steps than lambda_num that
 * interval is 0 and κ stays 0 — no rank closes — as in the official loop: for
 * short runs lower lambda_num. Per task of a sequence the adapter is merged into W
 * (the open ranks only) and started afresh (src/tasks/continual.ts).
 * Defaults: runner_codyra.sh (r 16, κ_max 5e-3, dense 0.5) and train_model (50 κ values).
 */
export const codyraConfigSchema = z.object({
  r: z.number().int().positive().default(16),
  lora_dropout: z.number().min(0).max(1).default(0),
  /** κ_max (official --max_kappa). */
  kappa_max: z.number().nonnegative().default(5e-3),
  /** Fraction of the steps before any threshold (official --dense_iters). */
  dense_ratio: z.number().min(0).max(1).default(0.5),
  /** Number of κ values (official lambda_num). */
  lambda_num: z.number().int().positive().default(50),
  /** Decoupled weight decay of CoDyRA's AdamW (official --wd, default 0). */
  weight_decay: z.number().nonnegative().default(0),
  /** Tests: B random too, so the adapter changes outputs at init. */
  init_weights: z.boolean().default(true),
});
export type CodyraConfig = z.infer<typeof codyraConfigSchema>;

/** CoDyRA's AdamW (train_model: torch.optim.AdamW(..., betas=(0.9, 0.9999))). */
export const CODYRA_BETAS = [0.9, 0.9999] as const;

/**
 * κ used after step `t` (0-based) of a `T`-step task, and whether the threshold
 * applies then, exactly as train_model's loop: before each iteration
 * `if iteration >= dense_iters and iteration % step == 0: id += 1`, κ = λ[min(num−1, id)];
 * after the optimizer step the threshold runs when iteration > dense_iters.
 */
export function kappaAt(t: number, T: number, c: Pick<CodyraConfig, 'kappa_max' | 'dense_ratio' | 'lambda_num'>): { kappa: number; prune: boolean } {
  const lambdas = numpyLinspace(0, c.kappa_max, c.lambda_num);
  const dense = c.dense_ratio * T;
  const step = Math.trunc(Math.floor((T - dense) / c.lambda_num));
  let id = 0;
  if (step > 0) {
    // iterations i ≤ t with i ≥ dense and i % step == 0
    const first = Math.ceil(dense / step) * step;
    if (t >= first) id = Math.floor((t - first) / step) + 1;
  }
  return { kappa: lambdas[Math.min(lambdas.length - 1, id)], prune: t > dense };
}
