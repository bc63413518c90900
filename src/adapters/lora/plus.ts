// LoRA+ (Hayou et al. 2024; PEFT `create_loraplus_optimizer`): B learns
// `ratio`× faster than A. Expressed as AdamW parameter groups (src/optim/adamw.ts):
// pass them as TrainOptions.optimizerGroups.
import type { AdamWGroup } from '../../optim/adamw.ts';

export function loraPlusGroups(ratio: number, opts: { embeddingLrScale?: number } = {}): AdamWGroup[] {
  if (!(ratio > 0) || !Number.isFinite(ratio)) throw new Error(`LoRA+ ratio must be a positive number, got ${ratio}`);
  const groups: AdamWGroup[] = [{ match: (n) => n.endsWith('.lora_B.weight'), lrScale: ratio }];
  if (opts.embeddingLrScale !== undefined) groups.unshift({ match: (n) => n.endsWith('.lora_embedding_A') || n.endsWith('.lora_embedding_B'), lrScale: opts.embeddingLrScale });
  return groups;
}
