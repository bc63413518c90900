import { z } from 'zod';

/**
 * SLTrain (Han et al. 2024, "SLTrain: a sparse plus low-rank approach for
 * parameter and memory efficient pretraining"): W = s·B·A + S with S sparse
 * on a fixed random support of density δ (only the values train). As a
 * fine-tuning adapter on a frozen W0 (lorakit's setting):
 *   y = W0·x + s·B·A·x + S·x,   ΔW = s·B·A + S,   s = lora_alpha / r.
 * Trainable: A [r, in], B [out, r], the nnz = round(δ·out·in) values of S.
 *
 * Choices (the paper trains from scratch, without W0):
 * - `sparse_init` defaults to 'zero' (S = 0, so ΔW = 0 at init like LoRA's
 *   B = 0): the paper's U(−1/√in, 1/√in) (METHODS.md, 'uniform') is a
 *   pre-training init and would perturb 3% of a pretrained W0 by a weight-sized
 *   amount. 'uniform' is available.
 * - A kaiming-uniform(a=√5), B = 0 (METHODS.md); r = 8, lora_alpha = 16
 *   (lorakit's LoRA training defaults; the paper's α is tuned per size).
 * - The support is drawn from `support_seed` and the module name
 *   (src/adapters/sltrain/support.ts), not stored: the same config gives the
 *   same support on load, whatever the AdapterSet seed.
 */
export const sltrainConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(16),
  /** δ: fraction of W's entries in the sparse support. Default 0.03. */
  density: z.number().gt(0).max(1).default(0.03),
  support_seed: z.number().int().nonnegative().default(42),
  sparse_init: z.enum(['zero', 'uniform']).default('zero'),
  /** Tests: B random too (kaiming), so the adapter changes outputs at init. */
  init_weights: z.boolean().default(true),
});
export type SLTrainConfig = z.infer<typeof sltrainConfigSchema>;

export const sltrainScaling = (c: SLTrainConfig) => c.lora_alpha / c.r;
export const sltrainNnz = (out: number, inF: number, density: number) => Math.max(1, Math.round(density * out * inF));
