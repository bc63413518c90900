import { z } from 'zod';

/**
 * DyLoRA (Valipour et al., EACL 2023; official code huawei-noah/Efficient-NLP
 * DyLoRA/loralib: DyLoRA.py `dynamic`, layers.py `Linear`):
 *   h = W0·x + (α/r)·(√(r/b)·B[:, :b])·(√(r/b)·A[:b])·x = W0·x + (α/b)·B[:, :b]·A[:b]·x
 * One b ~ U{1..r} is drawn per optimizer step for every layer at once
 * (run_glue.py's on_step_begin: c = torch.randint(0, r), b = c + 1). Training
 * always uses the "frozen" mode: the first b − 1 components take part in the
 * forward pass but are detached, so only component b gets a gradient; the
 * loop's AdamW still moves the detached rows through their momentum and weight
 * decay, as the official HF AdamW does (they are not taken out of the optimizer).
 * Evaluation and merging use one rank b for every layer: `eval_rank` (null = r),
 * or setEvalRank on a set (lorakit eval --rank b); no retraining.
 * Defaults: r 8, α 16 (the GLUE scripts), A kaiming-uniform, B = 0.
 */
export const dyloraConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(16),
  lora_dropout: z.number().min(0).max(1).default(0),
  /** The rank b used outside training (evaluation, merge, saving as LoRA); null = r. */
  eval_rank: z.number().int().positive().nullable().default(null),
  /** Tests: B random too, so the adapter changes outputs at init. */
  init_weights: z.boolean().default(true),
});
export type DyloraConfig = z.infer<typeof dyloraConfigSchema>;
