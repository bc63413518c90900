// adapter_config.json as PEFT writes and reads it (peft/config.py and each
// tuner's config.py), for every method: the shared PeftConfig fields here,
// each method's own fields through its descriptor (AdapterMethod.peft, in
// src/adapters/<method>/). Sets are written as lists, `inference_mode: true`
// on save. Unknown fields are kept (in `unknown`, written back on save) and
// reported through `warn`, never dropped silently.

import { z } from 'zod';
import type { LinearSite } from '../models/types.ts';
import { matchesTarget, patternMatches, patternValue } from '../adapters/targets.ts';
import { DEFAULT_PEFT_TYPE, METHODS, methodForPeftType, peftTypes } from '../adapters/registry.ts';
import type { AdapterMethod } from '../adapters/types.ts';
import { FileFormatError } from '../util/errors.ts';

// PEFT's pattern-key rule lives with the other matching rules; re-exported for config users.
export { patternMatches, patternValue };

const stringsOrRegex = z.union([z.string(), z.array(z.string())]);

/** The PEFT release whose files lorakit reads and writes (written as `peft_version` in files of PEFT's own types). */
export const PEFT_VERSION = '0.20.0';

/**
 * PEFT 0.20's peft_type values (utils/peft_types.py PeftType). A file of one of
 * these types is one PEFT loads itself, so lorakit writes nothing into its
 * adapter_config.json that PEFT does not know (lorakit's own block goes to
 * LORAKIT_CONFIG_FILE beside it); lorakit's own methods (NOLA, LoRA-XS...) keep
 * it in adapter_config.json, which PEFT cannot load anyway.
 */
export const PEFT_TYPES: ReadonlySet<string> = new Set(
  ('PROMPT_TUNING MULTITASK_PROMPT_TUNING P_TUNING PREFIX_TUNING LORA ADALORA ADAMSS BOFT ADAPTION_PROMPT IA3 BEFT LILY LOHA LOKR OFT POLY ' +
    'LN_TUNING VERA FROD PVERA FOURIERFT GLORA XLORA HRA VBLORA UNILORA CPT MISS RANDLORA ROAD TRAINABLE_TOKENS HIRA SHIRA C3A WAVEFT OSF ' +
    'DELORA GRALORA CARTRIDGE TINYLORA PSOFT PEANUT DEFT').split(' '),
);

/** Fields PEFT drops when it reads any adapter_config.json (PeftConfigMixin.from_json_file): lorakit ignores them too. */
const DROPPED_ON_READ = new Set(['runtime_config']);

/** What every tuner config holds beside its method's fields (PeftConfig + the shared tuner fields). */
export const peftCommonSchema = z.object({
  peft_type: z.string(),
  /** The PEFT version that wrote the file (PeftConfigMixin, since 0.18). */
  peft_version: z.string().nullable().default(null),
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
  /** 'none' | 'all' | the method's "biases of adapted modules" (PEFT: lora_only, vera_only, randlora_only, fourier_only). */
  bias: z.string().default('none'),
  fan_in_fan_out: z.boolean().default(false),
});
export type PeftCommonConfig = z.infer<typeof peftCommonSchema>;

const COMMON = new Set(Object.keys(peftCommonSchema.shape));

/** adapter_config.json's fields lorakit knows, parsed: the shared ones and the method's own (PEFT's names). */
export type PeftFields = PeftCommonConfig & Record<string, any>;

/** A parsed adapter_config.json. */
export interface LoadedPeftConfig {
  method: AdapterMethod;
  /** The shared fields and the method's, with defaults (LoRA: every LoraConfig field), PEFT's names. */
  config: PeftFields;
  /** The method's own config (its schema), what the AdapterSet runs with. */
  methodConfig: unknown;
  /** AdapterSet's bias: PEFT's '<method>_only' is 'lora_only'. */
  bias: 'none' | 'all' | 'lora_only';
  /** Fields lorakit does not know (kept, written back on save). */
  unknown: Record<string, unknown>;
  /** lorakit's own block (method, seed, labels...), if the file has one. */
  lorakit?: Record<string, any>;
}

export class PeftConfigError extends FileFormatError {
  constructor(message: string) {
    super('', message);
    this.name = 'PeftConfigError';
  }
}

/**
 * Which method an adapter_config.json describes: lorakit's own block
 * (`lorakit.method`) when it has one, else `peft_type` and the fields that
 * select a variant (LORA with use_dora → DoRA).
 */
export function methodOfConfig(json: Record<string, any>, source = 'adapter_config.json'): AdapterMethod {
  const pt = String(json.peft_type ?? DEFAULT_PEFT_TYPE).toUpperCase();
  const named = json.lorakit?.method;
  if (typeof named === 'string' && METHODS[named.toLowerCase()]) {
    const m = METHODS[named.toLowerCase()];
    if (m.peft.peftType !== pt) throw new PeftConfigError(`${source}: peft_type '${json.peft_type}' does not match lorakit.method '${named}' (whose peft_type is ${m.peft.peftType}); fix one of them`);
    return m;
  }
  const m = methodForPeftType(pt, json);
  if (!m) throw new PeftConfigError(`${source}: peft_type '${json.peft_type}' is not supported (lorakit reads ${peftTypes().join(', ')})`);
  return m;
}

const issuesOf = (e: z.ZodError) => e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');

/**
 * Parse adapter_config.json contents, for any registered method: the shared
 * fields, the method's own (its descriptor's schema, PEFT's spellings:
 * renamed fields, fields accepted at one value, the loader's flag). The
 * minimum is {peft_type, target_modules}.
 */
export function parsePeftConfig(json: Record<string, unknown>, opts: { source?: string; warn?: (msg: string) => void } = {}): LoadedPeftConfig {
  const src = opts.source ?? 'adapter_config.json';
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new PeftConfigError(`${src}: expected a JSON object`);
  const method = methodOfConfig(json, src);
  const d = method.peft;
  // Without PEFT's own types for the fields, the method's schema reads them, and a null there means "unset".
  const schema = d.fields ?? (method.schema as unknown as z.ZodObject<any>);
  const own = new Set(Object.keys(schema.shape ?? {}));
  const common: Record<string, unknown> = {}, fields: Record<string, unknown> = {}, flags: Record<string, unknown> = {}, unknown: Record<string, unknown> = {};
  let lorakit: Record<string, any> | undefined;
  for (const [k0, v] of Object.entries(json)) {
    const k = d.renamed?.[k0] ?? k0;
    if (k === 'lorakit') lorakit = v as Record<string, any>;
    else if (DROPPED_ON_READ.has(k)) continue;
    else if (own.has(k) || COMMON.has(k)) {
      if (own.has(k)) fields[k] = v;
      if (COMMON.has(k)) common[k] = v;
    } else if (k === d.shared?.flag) flags[k] = v;
    else if (d.fixed && k in d.fixed) {
      if (v !== null && JSON.stringify(v) !== JSON.stringify(d.fixed[k])) {
        throw new PeftConfigError(`${src}: ${k} = ${JSON.stringify(v)} is not supported by lorakit's ${method.name} (it implements ${k} = ${JSON.stringify(d.fixed[k])})`);
      }
    } else unknown[k] = v;
  }
  if (Object.keys(unknown).length) warn(`${src}: fields lorakit does not know were kept but not used: ${Object.keys(unknown).join(', ')}`);
  const c = peftCommonSchema.safeParse({ ...common, peft_type: d.peftType });
  if (!c.success) throw new PeftConfigError(`${src}: invalid ${d.peftType} config: ${issuesOf(c.error)}`);
  const b = c.data.bias;
  // The method's own spelling, or lorakit's (what it writes for methods PEFT has not got).
  const bias = b === 'none' || b === 'all' ? b : b === d.onlyBias || b === 'lora_only' ? 'lora_only' : null;
  if (!bias) throw new PeftConfigError(`${src}: bias '${b}' is not one of 'none', 'all', '${d.onlyBias}'`);
  const given = d.fields ? fields : Object.fromEntries(Object.entries(fields).filter(([k, v]) => v !== null || schema.safeParse({ [k]: null }).success));
  const parsed = schema.safeParse(given);
  if (!parsed.success) throw new PeftConfigError(`${src}: invalid ${method.name} config: ${issuesOf(parsed.error)}`);
  let methodConfig: unknown;
  try {
    methodConfig = d.configOf ? d.configOf(parsed.data) : parsed.data;
  } catch (e) {
    throw new PeftConfigError(`${src}: invalid ${method.name} config: ${e instanceof z.ZodError ? issuesOf(e) : (e as Error).message}`);
  }
  const config: PeftFields = { ...c.data, ...parsed.data, ...flags, peft_type: d.peftType };
  if (config.target_modules === null) throw new PeftConfigError(`${src}: target_modules is missing (PEFT needs it to know which modules carry the adapter)`);
  return { method, config, methodConfig, bias, unknown, lorakit };
}

const COMMON_DEFAULTS: Record<string, unknown> = peftCommonSchema.parse({ peft_type: '' });

/**
 * The shared fields of a loaded file that are not at their defaults
 * (exclude_modules, layers_to_transform, task_type...): a save writes them back
 * for every method, so a re-saved adapter adapts the same modules.
 */
export function keptSharedFields(file: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(file).filter(([k, v]) => COMMON.has(k) && v !== undefined && JSON.stringify(v) !== JSON.stringify(COMMON_DEFAULTS[k])));
}

/** The JSON PEFT writes: sets as lists, inference_mode true, unknown fields kept, keys sorted. */
export function serializePeftConfig(c: Record<string, unknown>, extra: { unknown?: Record<string, unknown>; lorakit?: Record<string, unknown> } = {}): string {
  const asList = (x: unknown) => (Array.isArray(x) ? [...new Set(x)] : x);
  const out: Record<string, unknown> = { ...extra.unknown, ...c, inference_mode: true };
  for (const k of ['target_modules', 'exclude_modules']) if (k in out) out[k] = asList(out[k]);
  out.modules_to_save = Array.isArray(c.modules_to_save) ? [...c.modules_to_save] : null;
  if (extra.lorakit) out.lorakit = extra.lorakit;
  return JSON.stringify(Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]])), null, 2) + '\n';
}

/**
 * The per-module config of a loaded adapter: each of its method's pattern
 * fields (LoRA's rank_pattern → r, alpha_pattern → lora_alpha) sets its
 * config field for the modules its keys match; undefined when there are none.
 */
export function patternSiteConfig<C>(method: AdapterMethod<C>, fields: Record<string, any>): ((site: LinearSite, base: C) => C) | undefined {
  const pats = Object.entries(method.peft.patterns ?? {}).filter(([f]) => fields[f] && Object.keys(fields[f]).length);
  if (!pats.length) return undefined;
  return (site, base) => {
    const b = base as Record<string, unknown>;
    return { ...b, ...Object.fromEntries(pats.map(([f, target]) => [target, patternValue(fields[f], site.name, b[target])])) } as C;
  };
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
export type PeftTargeting = Pick<PeftCommonConfig, 'target_modules' | 'exclude_modules' | 'layers_to_transform' | 'layers_pattern'>;

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
