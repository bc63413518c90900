// adapter_config.json as PEFT writes and reads it (peft/tuners/lora/config.py +
// peft/config.py): LoraConfig's field names and defaults, sets written as
// lists, `inference_mode: true` on save. Unknown fields are kept (in
// `unknown`, written back on save) and reported through `warn`, never dropped
// silently. `rank_pattern` / `alpha_pattern` give per-module r / alpha; keys
// match a module name with PEFT's `(.*\.)?(key)$` rule.

import { z } from 'zod';
import type { LinearSite } from '../models/types.ts';
import type { TargetModules } from '../adapters/targets.ts';
import { matchesTarget } from '../adapters/targets.ts';

const stringsOrRegex = z.union([z.string(), z.array(z.string())]);

export const peftLoraConfigSchema = z.object({
  peft_type: z.string().default('LORA'),
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
  use_dora: z.boolean().default(false),
  use_qalora: z.boolean().default(false),
  qalora_group_size: z.number().default(16),
  layer_replication: z.unknown().nullable().default(null),
  runtime_config: z.unknown().default({ ephemeral_gpu_offload: false }),
  lora_bias: z.boolean().default(false),
  target_parameters: z.unknown().nullable().default(null),
});

export type PeftLoraConfig = z.infer<typeof peftLoraConfigSchema>;

/** A parsed adapter_config.json: PEFT's fields plus whatever else the file held. */
export interface LoadedPeftConfig {
  config: PeftLoraConfig;
  /** Fields lorakit does not know (kept, written back on save). */
  unknown: Record<string, unknown>;
  /** lorakit's own block (method, seed, labels...), if the file has one. */
  lorakit?: Record<string, any>;
}

export class PeftConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeftConfigError';
  }
}

const KNOWN = new Set(Object.keys(peftLoraConfigSchema.shape));

/** Parse adapter_config.json contents. The minimum is {peft_type, target_modules}. */
export function parsePeftConfig(json: Record<string, unknown>, opts: { source?: string; warn?: (msg: string) => void } = {}): LoadedPeftConfig {
  const src = opts.source ?? 'adapter_config.json';
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new PeftConfigError(`${src}: expected a JSON object`);
  const known: Record<string, unknown> = {};
  const unknown: Record<string, unknown> = {};
  let lorakit: Record<string, any> | undefined;
  for (const [k, v] of Object.entries(json)) {
    if (k === 'lorakit') lorakit = v as Record<string, any>;
    else if (KNOWN.has(k)) known[k] = v;
    else unknown[k] = v;
  }
  const pt = String(known.peft_type ?? 'LORA').toUpperCase();
  if (pt !== 'LORA') throw new PeftConfigError(`${src}: peft_type '${known.peft_type}' is not supported (lorakit reads LORA adapters, including DoRA/rsLoRA/PiSSA/OLoRA variants)`);
  if (Object.keys(unknown).length) {
    warn(`${src}: fields lorakit does not know were kept but not used: ${Object.keys(unknown).join(', ')}`);
  }
  const parsed = peftLoraConfigSchema.safeParse(known);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new PeftConfigError(`${src}: invalid LoRA config: ${issues}`);
  }
  const config = parsed.data;
  config.peft_type = 'LORA';
  if (config.target_modules === null && !config.layer_replication) {
    throw new PeftConfigError(`${src}: target_modules is missing (PEFT needs it to know which modules carry the adapter)`);
  }
  return { config, unknown, lorakit };
}

/** Defaults for everything not given (what `LoraConfig(**fields)` would hold). */
export function makePeftConfig(fields: Partial<PeftLoraConfig> & { target_modules: TargetModules }): PeftLoraConfig {
  return peftLoraConfigSchema.parse(fields);
}

/** The JSON PEFT writes: sets as lists, inference_mode true, unknown fields kept. */
export function serializePeftConfig(c: PeftLoraConfig, extra: { unknown?: Record<string, unknown>; lorakit?: Record<string, unknown> } = {}): string {
  const sortedList = (x: string | string[] | null) => (Array.isArray(x) ? [...new Set(x)] : x);
  const out: Record<string, unknown> = {
    ...extra.unknown,
    ...c,
    target_modules: sortedList(c.target_modules),
    exclude_modules: sortedList(c.exclude_modules),
    modules_to_save: c.modules_to_save ? [...c.modules_to_save] : null,
    inference_mode: true,
  };
  if (extra.lorakit) out.lorakit = extra.lorakit;
  const keys = Object.keys(out).sort();
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, out[k]])), null, 2) + '\n';
}

/** PEFT's pattern-key rule, re.match(r"(.*\.)?(key)$", name): the key matches the end of the name at a "." boundary. */
export function patternMatches(key: string, name: string): boolean {
  return new RegExp(`^(.*\\.)?(${key})$`).test(name);
}

function fromPattern<T>(pattern: Record<string, T> | null, name: string, dflt: T): T {
  if (!pattern) return dflt;
  // PEFT (get_pattern_key) takes the first key, in dict order, that matches.
  for (const [k, v] of Object.entries(pattern)) if (patternMatches(k, name)) return v;
  return dflt;
}

/** r and lora_alpha of one module after rank_pattern / alpha_pattern. */
export function rankAlphaFor(c: Pick<PeftLoraConfig, 'r' | 'lora_alpha' | 'rank_pattern' | 'alpha_pattern'>, moduleName: string): { r: number; lora_alpha: number } {
  return { r: fromPattern(c.rank_pattern, moduleName, c.r), lora_alpha: fromPattern(c.alpha_pattern, moduleName, c.lora_alpha) };
}

/** The layer index in a module path (PEFT: the number after a layers_pattern name, or the first '.N.'). */
export function layerIndex(name: string, layersPattern: string | string[] | null): number | null {
  const pats = layersPattern === null ? null : Array.isArray(layersPattern) ? layersPattern : [layersPattern];
  const m = pats
    ? pats.map((p) => name.match(new RegExp(`.*\\.${p}\\.(\\d+)\\.`))).find(Boolean)
    : name.match(/.*\.[^.]*\.(\d+)\./);
  return m ? Number(m[1]) : null;
}

/** Whether PEFT would put an adapter on this module (target_modules, exclude_modules, layers_to_transform). */
export function isPeftTarget(c: PeftLoraConfig, name: string): boolean {
  if (c.target_modules === null) return false;
  if (c.exclude_modules !== null && matchesTarget(name, c.exclude_modules)) return false;
  if (!matchesTarget(name, c.target_modules)) return false;
  if (c.layers_to_transform !== null && typeof c.target_modules !== 'string') {
    const want = Array.isArray(c.layers_to_transform) ? c.layers_to_transform : [c.layers_to_transform];
    const idx = layerIndex(name, c.layers_pattern);
    if (idx === null || !want.includes(idx)) return false;
  }
  return true;
}

/** Site filter for AdapterSet from a PEFT config (exclude_modules, layers_to_transform). */
export function peftSiteFilter(c: PeftLoraConfig): (site: LinearSite) => boolean {
  return (site) => isPeftTarget(c, site.name);
}
