// lorakit train's own defaults for a method's config where they differ from
// the method's (LoRA's alpha has been 16 since the first release; PEFT's is
// 8). The command line and the browser page start from the same values.

import { getMethod } from './registry.ts';

export const TRAIN_DEFAULTS: Record<string, Record<string, unknown>> = { lora: { lora_alpha: 16 }, dora: { lora_alpha: 16 } };

/** The method's config as lorakit train starts it: the method's defaults under TRAIN_DEFAULTS. */
export function trainDefaultConfig(method: string): Record<string, unknown> {
  return { ...(getMethod(method).schema.parse({}) as Record<string, unknown>), ...TRAIN_DEFAULTS[method] };
}
