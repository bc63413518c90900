// AdaLoRA in PEFT's files: adapter_config.json is PEFT's AdaLoraConfig
// (LoraConfig's fields + init_r, target_r, tinit, tfinal, deltaT, beta1, beta2,
// orth_reg_weight, total_step, rank_pattern), the tensors are
// base_model.model.<module>.lora_A / lora_B / lora_E (no '.weight': PEFT's
// ParameterDicts), ranknum is not saved (it is init_r). Once the allocator has
// masked triplets, a save drops them as PEFT's resize_state_dict_by_rank_pattern
// does and writes rank_pattern {"<module>.lora_E": [kept…]}. With lora_alpha ≤ 0
// PEFT scales a module it reads back with rank_pattern by its kept rank k, not
// init_r (the rank it trained with): such a module's E is saved times init_r/k,
// so the file gives the trained adapter's outputs in PEFT (and in lorakit, which
// reads the file by PEFT's rule: adaloraScale).
import { z } from 'zod';
import { PEFT_PREFIX } from '../inject.ts';
import { peftLoraConfigSchema } from '../lora/peft.ts';
import type { PeftDescriptor } from '../types.ts';
import { AdaloraConfig, adaloraConfigSchema, patternKey } from './config.ts';
import type { AdaloraState } from './allocator.ts';

export const ADALORA_KEYS = { A: 'lora_A', B: 'lora_B', E: 'lora_E' } as const;

/** PEFT's AdaLoraConfig with its defaults. */
export const peftAdaloraConfigSchema = peftLoraConfigSchema.extend({
  peft_type: z.string().default('ADALORA'),
  target_r: z.number().int().nonnegative().default(8),
  init_r: z.number().int().positive().default(12),
  tinit: z.number().int().nonnegative().default(0),
  tfinal: z.number().int().nonnegative().default(0),
  deltaT: z.number().int().positive().default(1),
  beta1: z.number().default(0.85),
  beta2: z.number().default(0.85),
  orth_reg_weight: z.number().default(0.5),
  total_step: z.number().int().positive().nullable().default(null),
  rank_pattern: z.record(z.string(), z.array(z.boolean())).nullable().default(null),
  init_lora_weights: z.boolean().default(true),
});

const OWN = ['init_r', 'target_r', 'tinit', 'tfinal', 'deltaT', 'beta1', 'beta2', 'orth_reg_weight', 'total_step', 'rank_pattern', 'lora_alpha', 'lora_dropout', 'init_lora_weights'] as const;

export const adaloraPeft: PeftDescriptor<AdaloraConfig, AdaloraState> = {
  peftType: 'ADALORA',
  onlyBias: 'lora_only',
  fields: peftAdaloraConfigSchema,
  configOf: (f) => adaloraConfigSchema.parse(Object.fromEntries(OWN.map((k) => [k, f[k]]))),
  fieldsOf: (c, kept) => peftAdaloraConfigSchema.parse({ ...kept, ...Object.fromEntries(OWN.map((k) => [k, c[k]])), peft_type: 'ADALORA' }),
  moduleKeys: Object.values(ADALORA_KEYS),
  describe: (c) => `init_r ${c.init_r}${c.rank_pattern ? ', rank_pattern' : ''}`,
  savesBiases: true,
  finalizeSave({ state, config, sites, tensors, fields }) {
    if (config.total_step === null && state.totalSteps) fields.total_step = state.totalSteps;
    if (!state.pattern) return; // nothing masked in a run of this set: the tensors are what the config describes
    const pattern: Record<string, boolean[]> = {};
    for (const site of sites) {
      const keep = state.pattern.get(site.name);
      if (!keep) continue;
      pattern[patternKey(site.name)] = keep;
      const idx = keep.flatMap((k, i) => (k ? [i] : []));
      const r = keep.length, n = site.inFeatures, m = site.outFeatures, k2 = idx.length;
      const key = (sfx: string) => `${PEFT_PREFIX}${site.name}.${sfx}`;
      const A = tensors[key(ADALORA_KEYS.A)].data, E = tensors[key(ADALORA_KEYS.E)].data, B = tensors[key(ADALORA_KEYS.B)].data;
      const A2 = new Float32Array(k2 * n), E2 = new Float32Array(k2), B2 = new Float32Array(m * k2);
      // PEFT's scaling after its resize on load: lora_alpha, or with lora_alpha ≤ 0 the kept rank (trained: init_r).
      const e = config.lora_alpha > 0 || k2 === 0 ? 1 : r / k2;
      idx.forEach((i, c) => {
        A2.set(A.subarray(i * n, (i + 1) * n), c * n);
        E2[c] = E[i] * e;
        for (let row = 0; row < m; row++) B2[row * k2 + c] = B[row * r + i];
      });
      tensors[key(ADALORA_KEYS.A)] = { shape: [k2, n], data: A2 };
      tensors[key(ADALORA_KEYS.E)] = { shape: [k2, 1], data: E2 };
      tensors[key(ADALORA_KEYS.B)] = { shape: [m, k2], data: B2 };
    }
    fields.rank_pattern = pattern;
  },
};
