import { z } from 'zod';

/**
 * Hydra (Kim et al. 2024, "Hydra: Multi-head Low-rank Adaptation for
 * Parameter Efficient Fine-tuning"): a parallel LoRA branch on the input and a
 * sequential LoRA branch on the frozen layer's output,
 *   h = W0·x + B_p·A_p·x + B_s·A_s·(W0·x)  ⇒  W = (I + B_s·A_s)·W0 + B_p·A_p.
 * No α scaling (METHODS.md). A kaiming-uniform(a=√5) (fan-in n for A_p, m for
 * A_s), B = 0, so the adapter starts as the identity.
 *
 * Choice (bias): the sequential branch reads W0·x *without* the base bias, so
 * that merge is exactly W = (I + B_s·A_s)·W0 + B_p·A_p with the bias left as
 * is (the paper's equations have no bias term).
 */
export const hydraConfigSchema = z.object({
  /** Rank of the sequential branch (B_s m×r_seq, A_s r_seq×m). Default 8. */
  r_seq: z.number().int().positive().default(8),
  /** Rank of the parallel branch (B_p m×r_par, A_p r_par×n). Default 4. */
  r_par: z.number().int().positive().default(4),
  /** Tests: B random too (kaiming), so the adapter changes outputs at init. */
  init_weights: z.boolean().default(true),
});
export type HydraConfig = z.infer<typeof hydraConfigSchema>;
