// LoRA in PEFT's files (peft/tuners/lora/config.py + peft/config.py): every
// LoraConfig field with PEFT's name and default (written in full, as PEFT's
// to_dict does), rank_pattern / alpha_pattern as per-module r / lora_alpha,
// the tensor keys (embedding sites: lora_embedding_A/B, no '.weight'), and the
// conversion of PiSSA/OLoRA residual inits to a plain LoRA on save. DoRA is
// PEFT's LORA with use_dora: true (../dora).

import { z } from 'zod';
import type { LinearSite } from '../../models/types.ts';
import { PEFT_PREFIX } from '../inject.ts';
import { patternValue } from '../targets.ts';
import type { PeftDescriptor } from '../types.ts';
import { LoraConfig, loraConfigSchema } from './config.ts';

const stringsOrRegex = z.union([z.string(), z.array(z.string())]);

/** PEFT's LoraConfig (0.20), inherited PeftConfig fields included, with PEFT's defaults; what PEFT's to_dict writes (no runtime_config). */
export const peftLoraConfigSchema = z.object({
  peft_type: z.string().default('LORA'),
  peft_version: z.string().nullable().default(null),
  task_type: z.string().nullable().default(null),
  base_model_name_or_path: z.string().nullable().default(null),
  revision: z.string().nullable().default(null),
  inference_mode: z.boolean().default(false),
  auto_mapping: z.unknown().nullable().default(null),
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().default(8),
  lora_dropout: z.number().min(0).max(1).default(0),
  target_modules: stringsOrRegex.nullable().default(null),
  exclude_modules: stringsOrRegex.nullable().default(null),
  fan_in_fan_out: z.boolean().default(false),
  bias: z.enum(['none', 'all', 'lora_only']).default('none'),
  use_rslora: z.boolean().default(false),
  modules_to_save: z.array(z.string()).nullable().default(null),
  init_lora_weights: z.union([z.boolean(), z.string()]).default(true),
  layers_to_transform: z.union([z.number().int(), z.array(z.number().int())]).nullable().default(null),
  layers_pattern: z.union([z.string(), z.array(z.string())]).nullable().default(null),
  rank_pattern: z.record(z.string(), z.number().int().positive()).nullable().default({}),
  alpha_pattern: z.record(z.string(), z.number()).nullable().default({}),
  megatron_config: z.unknown().nullable().default(null),
  megatron_core: z.string().nullable().default('megatron.core'),
  trainable_token_indices: z.unknown().nullable().default(null),
  loftq_config: z.unknown().default({}),
  eva_config: z.unknown().nullable().default(null),
  corda_config: z.unknown().nullable().default(null),
  lora_ga_config: z.unknown().nullable().default(null),
  use_dora: z.boolean().default(false),
  velora_config: z.unknown().nullable().default(null),
  alora_invocation_tokens: z.array(z.number().int()).nullable().default(null),
  use_qalora: z.boolean().default(false),
  qalora_group_size: z.number().default(16),
  monteclora_config: z.unknown().nullable().default(null),
  layer_replication: z.unknown().nullable().default(null),
  lora_bias: z.boolean().default(false),
  target_parameters: z.unknown().nullable().default(null),
  use_bdlora: z.unknown().nullable().default(null),
  arrow_config: z.unknown().nullable().default(null),
  ensure_weight_tying: z.boolean().default(false),
});

/**
 * LoraConfig fields that change what the adapter computes and that lorakit
 * does not implement, with what they are (PEFT 0.20's docs): a file that sets
 * one (not null / false) is refused naming it, never read as a plain LoRA.
 * `ensure_weight_tying` is checked on load, where the model is known (it only
 * matters for a tied embedding or head: src/peft/adapter_files.ts). Not here:
 * use_qalora and megatron_config, which PEFT applies only to GPTQ and Megatron
 * layers (plain linear layers ignore them).
 */
const UNSUPPORTED_VARIANTS: Record<string, string> = {
  use_bdlora: 'BD-LoRA (block-diagonal A or B)',
  arrow_config: 'Arrow routing among several LoRA experts',
  alora_invocation_tokens: 'Activated LoRA (aLoRA: the adapter acts only from the invocation tokens on)',
  monteclora_config: 'MonteCLoRA (variational Monte Carlo sampling on the LoRA factors)',
  velora_config: "VeLoRA (a compressed backward pass for lora_A; its forward is plain LoRA: set velora_config to null to use the adapter as one)",
  lora_bias: 'a trainable bias on lora_B (lora_B.bias)',
  layer_replication: 'layer replication (a deeper model built from repeated layers)',
  trainable_token_indices: 'trainable tokens (updated rows of the embedding table)',
  target_parameters: 'LoRA on nn.Parameters (target_parameters)',
};

/** Throws naming the first field of UNSUPPORTED_VARIANTS that `fields` sets. */
export function refuseUnsupportedVariants(fields: Record<string, unknown>): void {
  for (const [k, what] of Object.entries(UNSUPPORTED_VARIANTS)) {
    const v = fields[k];
    if (v === undefined || v === null || v === false) continue;
    throw new Error(`${k} = ${JSON.stringify(v)}: lorakit does not implement ${what}; it would not compute what PEFT computes with this file`);
  }
}

export type PeftLoraConfig = z.infer<typeof peftLoraConfigSchema>;

/** Defaults for everything not given (what `LoraConfig(**fields)` would hold). */
export function makePeftConfig(fields: Partial<PeftLoraConfig>): PeftLoraConfig {
  return peftLoraConfigSchema.parse(fields);
}

/** r and lora_alpha of one module after rank_pattern / alpha_pattern. */
export function rankAlphaFor(c: Pick<PeftLoraConfig, 'r' | 'lora_alpha' | 'rank_pattern' | 'alpha_pattern'>, moduleName: string): { r: number; lora_alpha: number } {
  return { r: patternValue(c.rank_pattern, moduleName, c.r), lora_alpha: patternValue(c.alpha_pattern, moduleName, c.lora_alpha) };
}

/** PEFT's names of a site's A and B: 'lora_A.weight' / 'lora_B.weight', or 'lora_embedding_A' / 'lora_embedding_B' on an embedding. */
export function loraKeys(site: LinearSite): { A: string; B: string } {
  return site.kind === 'embedding' ? { A: 'lora_embedding_A', B: 'lora_embedding_B' } : { A: 'lora_A.weight', B: 'lora_B.weight' };
}

/**
 * PEFT's path_initial_model_for_weight_conversion: a PiSSA/OLoRA adapter as a
 * plain LoRA relative to the *original* base weight, A' = [A; A0],
 * B' = [B, −B0], r×2, alpha×2 (×√2 with rsLoRA).
 */
const convertResidual: PeftDescriptor<LoraConfig>['convertResidual'] = ({ sites, params, initial, shapes, tensors, fields }) => {
  for (const site of sites) {
    const k = loraKeys(site);
    const keyA = `${PEFT_PREFIX}${site.name}.${k.A}`, keyB = `${PEFT_PREFIX}${site.name}.${k.B}`;
    const A0 = initial.get(keyA), B0 = initial.get(keyB);
    if (!A0 || !B0) continue;
    const A = params.get(keyA)!, B = params.get(keyB)!;
    const [r, n] = shapes.get(keyA)!, m = site.outFeatures;
    const A2 = new Float32Array(2 * r * n);
    A2.set(A, 0);
    A2.set(A0, r * n);
    const B2 = new Float32Array(m * 2 * r);
    for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) {
      B2[i * 2 * r + j] = B[i * r + j];
      B2[i * 2 * r + r + j] = -B0[i * r + j];
    }
    tensors[keyA] = { shape: [2 * r, n], data: A2 };
    tensors[keyB] = { shape: [m, 2 * r], data: B2 };
  }
  const f = fields.use_rslora ? Math.SQRT2 : 2;
  fields.r *= 2;
  fields.lora_alpha *= f;
  fields.rank_pattern = Object.fromEntries(Object.entries(fields.rank_pattern ?? {}).map(([key, v]) => [key, 2 * (v as number)]));
  fields.alpha_pattern = Object.fromEntries(Object.entries(fields.alpha_pattern ?? {}).map(([key, v]) => [key, f * (v as number)]));
  fields.init_lora_weights = true;
};

/** PEFT's LORA descriptor; `useDora` is the DoRA variant (use_dora: true, plus the magnitude vector). */
export function loraPeft(opts: { useDora: boolean; extraKeys?: string[] }): PeftDescriptor<LoraConfig> {
  return {
    peftType: 'LORA',
    ...(opts.useDora && { selectedBy: (f: Record<string, unknown>) => f.use_dora === true }),
    onlyBias: 'lora_only',
    fields: peftLoraConfigSchema,
    configOf: (fields) => {
      refuseUnsupportedVariants(fields);
      return loraConfigSchema.parse(fields);
    },
    fieldsOf: (c, kept) =>
      makePeftConfig({
        ...kept,
        r: c.r, lora_alpha: c.lora_alpha, lora_dropout: c.lora_dropout, use_rslora: c.use_rslora,
        init_lora_weights: c.init_lora_weights, fan_in_fan_out: c.fan_in_fan_out, use_dora: opts.useDora,
        // a null pattern in the file is written back as PEFT's default {}
        rank_pattern: (kept?.rank_pattern as PeftLoraConfig['rank_pattern']) ?? {},
        alpha_pattern: (kept?.alpha_pattern as PeftLoraConfig['alpha_pattern']) ?? {},
      }),
    patterns: { rank_pattern: 'r', alpha_pattern: 'lora_alpha' },
    moduleKeys: ['lora_A.weight', 'lora_B.weight', ...(opts.useDora ? [] : ['lora_embedding_A', 'lora_embedding_B']), ...(opts.extraKeys ?? [])],
    describe: (c) => `r ${c.r}`,
    savesBiases: true,
    convertResidual,
  };
}
