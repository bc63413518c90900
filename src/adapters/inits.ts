// LoRA initializations that are their own idea (one folder each), chosen by
// `init_lora_weights`. Adding one = its folder (with its test_config.ts,
// src/adapters/testing.ts) + one line here.
import type { LoraInit } from './types.ts';
import { pissa } from './pissa/index.ts';
import { olora } from './olora/index.ts';

export const INITS: Record<string, LoraInit> = {
  pissa,
  olora,
};

export function findInit(value: string): LoraInit {
  const hit = Object.values(INITS).find((i) => i.matches(value));
  if (!hit) throw new Error(`init_lora_weights '${value}' is not supported. Use true, false, 'gaussian', or one of: ${Object.keys(INITS).join(', ')}`);
  return hit;
}
