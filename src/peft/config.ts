// adapter_config.json as PEFT writes and reads it (peft/tuners/lora/config.py +
// peft/config.py): LoraConfig's field names and defaults, sets written as
// lists, `inference_mode: true` on save. Unknown fields are kept (in
// `unknown`, written back on save) and reported through `warn`, never dropped
// silently. `rank_pattern` / `alpha_pattern` give per-module r / alpha; keys
// match a module name with PEFT's `(.*\.)?(key)$` rule.

import { z } from 'zod';
import type { LinearSite } from '../models/types.ts';
import type { TargetModules } from '../adapters/targets.ts';
import { matchesTarget, patternMatches, patternValue } from '../adapters/targets.ts';

// PEFT's pattern-key rule lives with the other matching rules; re-exported for config users.
export { patternMatches, patternValue };
import { METHODS, methodForPeftConfig } from '../adapters/registry.ts';
import type { AdapterMethod } from '../adapters/types.ts';

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

/** r and lora_alpha of one module after rank_pattern / alpha_pattern. */
export function rankAlphaFor(c: Pick<PeftLoraConfig, 'r' | 'lora_alpha' | 'rank_pattern' | 'alpha_pattern'>, moduleName: string): { r: number; lora_alpha: number } {
  return { r: patternValue(c.rank_pattern, moduleName, c.r), lora_alpha: patternValue(c.alpha_pattern, moduleName, c.lora_alpha) };
}

/** The layer index in a module path (PEFT: the number after a layers_pattern name, or the first '.N.'). */
export function layerIndex(name: string, layersPattern: string | string[] | null): number | null {
  const pats = layersPattern === null ? null : Array.isArray(layersPattern) ? layersPattern : [layersPattern];
  const m = pats
    ? pats.map((p) => name.match(new RegExp(`.*\\.${p}\\.(\\d+)\\.`))).find(Boolean)
    : name.match(/.*\.[^.]*\.(\d+)\./);
  return m ? Number(m[1]) : null;
}

/** The fields that decide which modules PEFT adapts (any tuner's config has them). */
export type PeftTargeting = Pick<PeftLoraConfig, 'target_modules' | 'exclude_modules' | 'layers_to_transform' | 'layers_pattern'>;

/** Whether PEFT would put an adapter on this module (target_modules, exclude_modules, layers_to_transform). */
export function isPeftTarget(c: PeftTargeting, name: string): boolean {
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
export function peftSiteFilter(c: PeftTargeting): (site: LinearSite) => boolean {
  return (site) => isPeftTarget(c, site.name);
}

// ---- Configs of the other methods (PEFT's VERA / RANDLORA / FOURIERFT and lorakit's own) ----

/** What every tuner config holds beside its method's fields (PeftConfig + the shared tuner fields). */
export const peftCommonSchema = z.object({
  peft_type: z.string(),
  task_type: z.string().nullable().default(null),
  base_model_name_or_path: z.string().nullable().default(null),
  revision: z.string().nullable().default(null),
  inference_mode: z.boolean().default(false),
  auto_mapping: z.unknown().nullable().default(null),
  target_modules: stringsOrRegex.nullable().default(null),
  exclude_modules: stringsOrRegex.nullable().default(null),
  layers_to_transform: z.union([z.number().int(), z.array(z.number().int())]).nullable().default(null),
  layers_pattern: z.union([z.string(), z.array(z.string())]).nullable().default(null),
  modules_to_save: z.array(z.string()).nullable().default(null),
  /** 'none' | 'all' | '<method>_only' (PEFT: vera_only, randlora_only, fourier_only). */
  bias: z.string().default('none'),
  fan_in_fan_out: z.boolean().default(false),
});
export type PeftCommonConfig = z.infer<typeof peftCommonSchema>;

/**
 * Fields of PEFT's own configs for these methods that lorakit's schemas do not
 * have (peft/tuners/{vera,randlora,fourierft}/config.py): accepted at the value
 * lorakit implements, refused (naming the field) otherwise; per-module pattern
 * fields; fields the loader reads itself.
 */
interface PeftMethodFields {
  fixed?: Record<string, unknown>;
  /** PEFT's older name → the field's name now. */
  renamed?: Record<string, string>;
  /** '<x>_pattern' → the config field it overrides per module (keys matched like rank_pattern). */
  patterns?: Record<string, string>;
  /** Read by the loader (save_projection: the file holds the frozen projections). */
  loader?: string[];
}

const PEFT_METHOD_FIELDS: Record<string, PeftMethodFields> = {
  VERA: { fixed: { vera_dropout: 0, regenerate_projection: false }, renamed: { init_vera_weights: 'init_weights' }, loader: ['save_projection'] },
  RANDLORA: { fixed: { randlora_dropout: 0, sparse: false, very_sparse: false }, loader: ['save_projection'] },
  FOURIERFT: { patterns: { n_frequency_pattern: 'n_frequency' } },
};

/** The PEFT `bias` value for "biases of adapted modules" of a method (PEFT spells it per tuner). */
export function onlyBiasName(peftType: string): string {
  return ({ LORA: 'lora_only', VERA: 'vera_only', RANDLORA: 'randlora_only', FOURIERFT: 'fourier_only' } as Record<string, string>)[peftType] ?? 'lora_only';
}

export interface LoadedMethodConfig {
  method: AdapterMethod;
  /** The method's config (its schema's parse of the file's fields). */
  config: unknown;
  common: PeftCommonConfig;
  /** AdapterSet's bias: PEFT's '<method>_only' is 'lora_only'. */
  bias: 'none' | 'all' | 'lora_only';
  /** Per-module overrides: config field → {pattern key → value} (FourierFT's n_frequency_pattern). */
  patterns: Record<string, Record<string, unknown>>;
  /** The pattern fields as the file spelled them, written back on save. */
  patternFields: Record<string, unknown>;
  /** Fields the loader reads (save_projection). */
  loaderFields: Record<string, unknown>;
  unknown: Record<string, unknown>;
  lorakit?: Record<string, any>;
}

/**
 * Which method an adapter_config.json describes: lorakit's own block
 * (`lorakit.method`) when it has one, else `peft_type` (LORA with use_dora → DoRA).
 */
export function methodOfConfig(json: Record<string, any>, source = 'adapter_config.json'): AdapterMethod {
  const pt = String(json.peft_type ?? 'LORA').toUpperCase();
  const named = json.lorakit?.method;
  if (typeof named === 'string' && METHODS[named.toLowerCase()]) {
    const m = METHODS[named.toLowerCase()];
    if (m.peftType !== pt) throw new PeftConfigError(`${source}: peft_type '${json.peft_type}' does not match lorakit.method '${named}' (whose peft_type is ${m.peftType}); fix one of them`);
    return m;
  }
  if (pt === 'LORA') return methodForPeftConfig({ use_dora: json.use_dora === true });
  const m = Object.values(METHODS).find((x) => x.peftType === pt);
  if (!m) {
    const types = [...new Set(Object.values(METHODS).map((x) => x.peftType))];
    throw new PeftConfigError(`${source}: peft_type '${json.peft_type}' is not supported (lorakit reads ${types.join(', ')})`);
  }
  return m;
}

/**
 * Parse the adapter_config.json of a non-LoRA method: the shared fields, the
 * method's own (by its schema), PEFT's spellings. Unknown fields are kept and
 * reported through `warn`, never dropped silently.
 */
export function parseMethodConfig(json: Record<string, any>, opts: { source?: string; warn?: (msg: string) => void } = {}): LoadedMethodConfig {
  const src = opts.source ?? 'adapter_config.json';
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new PeftConfigError(`${src}: expected a JSON object`);
  const method = methodOfConfig(json, src);
  const pt = method.peftType;
  const extra = PEFT_METHOD_FIELDS[pt] ?? {};
  const own = new Set(Object.keys((method.schema as unknown as { shape?: Record<string, unknown> }).shape ?? {}));
  const commonKeys = new Set(Object.keys(peftCommonSchema.shape));
  const common: Record<string, unknown> = {}, fields: Record<string, unknown> = {}, unknown: Record<string, unknown> = {};
  const patterns: Record<string, Record<string, unknown>> = {}, patternFields: Record<string, unknown> = {}, loaderFields: Record<string, unknown> = {};
  let lorakit: Record<string, any> | undefined;
  for (const [k0, v] of Object.entries(json)) {
    const k = extra.renamed?.[k0] ?? k0;
    if (k === 'lorakit') lorakit = v as Record<string, any>;
    else if (own.has(k)) fields[k] = v;
    else if (commonKeys.has(k)) common[k] = v;
    else if (extra.loader?.includes(k)) loaderFields[k] = v;
    else if (extra.patterns?.[k]) {
      patternFields[k] = v;
      if (v !== null && Object.keys(v as object).length) patterns[extra.patterns[k]] = v as Record<string, unknown>;
    } else if (extra.fixed && k in extra.fixed) {
      if (v !== null && JSON.stringify(v) !== JSON.stringify(extra.fixed[k])) {
        throw new PeftConfigError(`${src}: ${k} = ${JSON.stringify(v)} is not supported by lorakit's ${method.name} (it implements ${k} = ${JSON.stringify(extra.fixed[k])})`);
      }
    } else unknown[k] = v;
  }
  if (Object.keys(unknown).length) warn(`${src}: fields lorakit does not know were kept but not used: ${Object.keys(unknown).join(', ')}`);
  const issues = (e: z.ZodError) => e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  const c = peftCommonSchema.safeParse(common);
  if (!c.success) throw new PeftConfigError(`${src}: invalid ${pt} config: ${issues(c.error)}`);
  // A null the method's schema does not take (PEFT writes None for "unset") means its default.
  const parsed = method.schema.safeParse(Object.fromEntries(Object.entries(fields).filter(([k, v]) => v !== null || method.schema.safeParse({ [k]: null }).success)));
  if (!parsed.success) throw new PeftConfigError(`${src}: invalid ${method.name} config: ${issues(parsed.error)}`);
  if (c.data.target_modules === null) throw new PeftConfigError(`${src}: target_modules is missing (it says which modules carry the adapter)`);
  const b = c.data.bias;
  const bias = b === 'none' || b === 'all' ? b : b.endsWith('_only') ? 'lora_only' : null;
  if (!bias) throw new PeftConfigError(`${src}: bias '${b}' is not one of 'none', 'all', '${onlyBiasName(pt)}'`);
  return { method, config: parsed.data, common: c.data, bias, patterns, patternFields, loaderFields, unknown, lorakit };
}

