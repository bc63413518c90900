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
};

export function getMethod(name: string): AdapterMethod {
  const m = METHODS[name.toLowerCase()];
  if (!m) throw new Error(`Unknown adapter method '${name}'. Available: ${Object.keys(METHODS).join(', ')}`);
  return m;
}

/** The method a PEFT LoraConfig describes (use_dora → DoRA). */
export function methodForPeftConfig(c: { peft_type?: string; use_dora?: boolean }): AdapterMethod {
  return c.use_dora ? METHODS.dora : METHODS.lora;
}
