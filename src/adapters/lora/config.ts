import { z } from 'zod';

/**
 * `init_lora_weights` values (PEFT): true (A kaiming-uniform, B = 0), false
 * (both random: tests), 'gaussian' (A ~ N(0, 1/r), B = 0), or the name of an
 * init in INITS (src/adapters/registry.ts): 'pissa', 'pissa_niter_<n>', 'olora'.
 */
export const initLoraWeightsSchema = z.union([z.boolean(), z.string()]);

/** LoraConfig fields with PEFT's names and defaults (peft/tuners/lora/config.py). */
export const loraConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(8),
  lora_dropout: z.number().min(0).max(1).default(0),
  use_rslora: z.boolean().default(false),
  init_lora_weights: initLoraWeightsSchema.default(true),
  fan_in_fan_out: z.boolean().default(false),
});
export type LoraConfig = z.infer<typeof loraConfigSchema>;

export function loraScaling(c: Pick<LoraConfig, 'r' | 'lora_alpha' | 'use_rslora'>): number {
  return c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
}
