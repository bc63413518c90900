// The one place a method is registered: adding a method = its folder (with its
// test_config.ts for the shared adapter harness, src/adapters/testing.ts) + one line here.
// (LoRA inits such as PiSSA/OLoRA register in ./inits.ts.)
import type { AdapterMethod } from './types.ts';
import { lora } from './lora/index.ts';
import { dora } from './dora/index.ts';
import { vera } from './vera/index.ts';
import { nola } from './nola/index.ts';
import { loraxs } from './loraxs/index.ts';
import { loldu } from './loldu/index.ts';
import { randlora } from './randlora/index.ts';
import { lorasb } from './lorasb/index.ts';
import { hydra } from './hydra/index.ts';
import { sltrain } from './sltrain/index.ts';
import { fourierft } from './fourierft/index.ts';
import { smora } from './smora/index.ts';
import { lamda } from './lamda/index.ts';
import { loca } from './loca/index.ts';
import { sora } from './sora/index.ts';
import { codyra } from './codyra/index.ts';
import { adalora } from './adalora/index.ts';
import { dylora } from './dylora/index.ts';
import { increlora } from './increlora/index.ts';
import { diffora } from './diffora/index.ts';
import { bayesianLora } from './bayesian_lora/index.ts';

export const METHODS: Record<string, AdapterMethod> = {
  lora,
  dora,
  hydra,
  sltrain,
  fourierft,
  smora,
  lamda,
  loca,
  vera,
  nola,
  loraxs,
  loldu,
  randlora,
  lorasb,
  sora,
  codyra,
  adalora,
  dylora,
  increlora,
  diffora,
  'bayesian-lora': bayesianLora,
};

export function getMethod(name: string): AdapterMethod {
  const m = METHODS[name.toLowerCase()];
  if (!m) throw new Error(`Unknown adapter method '${name}'. Available: ${Object.keys(METHODS).join(', ')}`);
  return m;
}

/** A file without peft_type is PEFT's default config class, LoraConfig. */
export const DEFAULT_PEFT_TYPE = 'LORA';

/**
 * The method of a PEFT peft_type (upper case) whose fields are `fields`: among
 * the methods of that type, the variant the fields select (use_dora → dora),
 * else the plain one; undefined when no method has that type.
 */
export function methodForPeftType(peftType: string, fields: Record<string, unknown>): AdapterMethod | undefined {
  const same = Object.values(METHODS).filter((m) => m.peft.peftType === peftType);
  return same.find((m) => m.peft.selectedBy?.(fields)) ?? same.find((m) => !m.peft.selectedBy);
}

/** Every peft_type lorakit reads. */
export function peftTypes(): string[] {
  return [...new Set(Object.values(METHODS).map((m) => m.peft.peftType))];
}
