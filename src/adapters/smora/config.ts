import { z } from 'zod';

/**
 * SMoRA (Zhao et al. 2025, "Each Rank Could be an Expert: Single-Ranked
 * Mixture of Experts LoRA"): every rank of a LoRA of rank R is an expert; a
 * router picks the top-k ranks per token,
 *   y = W0·x + s·Σ_{i∈TopK(z+β)} g_i(x)·b_i·a_iᵀ·x,   z = W_g·x (router logits),
 * and balances the load without an auxiliary loss: a selection-only bias β
 * (it changes which ranks are chosen, never the gate values) moves after each
 * step by β_i += u·sign(mean load − load_i) (DeepSeek-V3's loss-free balancing).
 *
 * Choices (METHODS.md marks the gate normalization *unverified*):
 * - g = k·softmax(z) over the selected ranks (a softmax restricted to TopK,
 *   times k): the gates of a token sum to k, so with a uniform router SMoRA is
 *   a rank-k LoRA with the usual scaling s = lora_alpha / top_k.
 * - The selection is not differentiated (TopK on detached logits); gradients
 *   reach W_g through the gate values.
 * - Load = number of tokens that selected each rank in the batch (padding
 *   positions included). β is hook state, saved with the adapter (`smora_selection_bias`, not
 *   trainable) so a reloaded adapter routes tokens as the trained one did.
 * - No dense ΔW (the update depends on each token's routing): SMoRA cannot be merged.
 * Defaults: 64 ranks, 8 active (METHODS.md), lora_alpha 16, u = 1e-3; A
 * kaiming-uniform, B = 0, W_g kaiming-uniform.
 */
export const smoraConfigSchema = z.object({
  /** Total ranks (experts) R. */
  num_ranks: z.number().int().positive().default(64),
  /** Active ranks per token k. */
  top_k: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(16),
  /** u: step of the load-balancing bias. 0 turns balancing off. */
  bias_update_rate: z.number().nonnegative().default(1e-3),
  /** Tests: B random too, so the adapter changes outputs at init. */
  init_weights: z.boolean().default(true),
});
export type SMoRAConfig = z.infer<typeof smoraConfigSchema>;
export const smoraScaling = (c: SMoRAConfig) => c.lora_alpha / c.top_k;
