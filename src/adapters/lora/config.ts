import { z } from 'zod';

/** LoraConfig fields with PEFT's names and defaults (peft/tuners/lora/config.py). */
export const loraConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(8),
  lora_dropout: z.number().min(0).max(1).default(0),
  use_rslora: z.boolean().default(false),
  /** true: A kaiming-uniform, B = 0 (adapter starts as identity); false: both random (tests); 'gaussian': A ~ N(0, 1/r). */
  init_lora_weights: z.union([z.boolean(), z.literal('gaussian')]).default(true),
  fan_in_fan_out: z.boolean().default(false),
});
export type LoraConfig = z.infer<typeof loraConfigSchema>;

export function loraScaling(c: LoraConfig): number {
  return c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
}
