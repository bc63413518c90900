// Writes and reads an adapter folder the way PEFT does: adapter_config.json
// (PEFT field names, src/peft/config.ts) + adapter_model.safetensors (keys
// without the adapter name, metadata {"format":"pt"}). An adapter named other
// than 'default' goes to a subfolder with its name. Extra trainable modules
// (a classification head) are stored as modules_to_save:
// base_model.model.<module>.<param>.

import fs from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { AdapterSet, PEFT_PREFIX } from '../adapters/inject.ts';
import { loadHookState, saveHookState } from '../adapters/hooks.ts';
import { methodForPeftConfig } from '../adapters/registry.ts';
import type { StoredTensor } from '../adapters/types.ts';
import type { LinearSite, WeightMap } from '../models/types.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import {
  LoadedMethodConfig, LoadedPeftConfig, makePeftConfig, methodOfConfig, onlyBiasName, parseMethodConfig, parsePeftConfig,
  patternValue, PeftLoraConfig, peftSiteFilter, rankAlphaFor, serializePeftConfig,
} from './config.ts';

export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';

export interface SavedAdapterInfo {
  baseModel: string;
  taskType?: string;
  /** Extra trainable tensors by module path (e.g. 'classifier.weight'). */
  modulesToSave?: Map<string, { shape: number[]; data: Float32Array }>;
  extra?: Record<string, unknown>;
  /** PEFT adapter name: anything but 'default' is saved in a subfolder of that name. */
  adapterName?: string;
  /**
   * PiSSA/OLoRA: save as a plain LoRA relative to the *original* base weight
   * (PEFT's path_initial_model_for_weight_conversion): A' = [A; A0],
   * B' = [B, −B0], r×2, alpha×2 (×√2 with rsLoRA).
   */
  convertToLora?: boolean;
  /** Fields of the config kept from a loaded file (unknown ones too). */
  peftConfig?: LoadedPeftConfig | LoadedMethodConfig;
}

const loraConfigOf = (p?: LoadedPeftConfig | LoadedMethodConfig) => (p && !('method' in p) ? p.config : undefined);

/** The adapter_config.json fields an AdapterSet stands for. */
export function peftConfigOf(set: AdapterSet, info: Pick<SavedAdapterInfo, 'baseModel' | 'taskType' | 'peftConfig'> & { modulesToSave?: string[] }): PeftLoraConfig {
  const target = set.options.targetModules;
  const fromFile = loraConfigOf(info.peftConfig);
  const saved = new Set([...(set.options.modulesToSave ?? []), ...(info.modulesToSave ?? [])]);
  return makePeftConfig({
    ...fromFile,
    ...(set.method.toPeftConfig(set.config) as Partial<PeftLoraConfig>),
    rank_pattern: fromFile?.rank_pattern ?? {},
    alpha_pattern: fromFile?.alpha_pattern ?? {},
    exclude_modules: fromFile?.exclude_modules ?? null,
    layers_to_transform: fromFile?.layers_to_transform ?? null,
    layers_pattern: fromFile?.layers_pattern ?? null,
    task_type: info.taskType ?? fromFile?.task_type ?? null,
    base_model_name_or_path: info.baseModel,
    target_modules: typeof target === 'string' ? target : [...target],
    modules_to_save: saved.size ? [...saved] : null,
    bias: set.options.bias ?? 'none',
    peft_type: 'LORA',
  });
}

function adapterDir(dir: string, name?: string): string {
  return name && name !== 'default' ? path.join(dir, name) : dir;
}

export function saveAdapter(dir: string, set: AdapterSet, info: SavedAdapterInfo): string {
  const out = adapterDir(dir, info.adapterName);
  fs.mkdirSync(out, { recursive: true });
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of set.params) tensors[k] = { dtype: 'F32', shape: set.shapes.get(k)!, data: v };
  const modules = new Set<string>();
  for (const [k, t] of info.modulesToSave ?? []) {
    tensors[PEFT_PREFIX + k] = { dtype: 'F32', shape: t.shape, data: t.data };
    modules.add(k.split('.').slice(0, -1).join('.'));
  }
  const lorakit = { method: set.method.name, seed: set.options.seed ?? 0, ...info.peftConfig?.lorakit, ...info.extra };
  if (set.method.peftType !== 'LORA') {
    // Not a LoraConfig: the method's own peft_type and every field of its config, so the file says what it holds and reloads exactly.
    for (const [module, st] of saveHookState(set)) {
      for (const [suffix, t] of Object.entries(st)) tensors[`${PEFT_PREFIX}${module}.${suffix}`] = { dtype: 'F32', shape: t.shape, data: t.data };
    }
    const shared = set.method.shared?.save(set.state, set.config);
    for (const [name, t] of Object.entries(shared?.tensors ?? {})) tensors[`${SHARED_PREFIX}${name}`] = { dtype: 'F32', shape: t.shape, data: t.data };
    writeSafetensors(path.join(out, WEIGHTS_FILE), tensors, { format: 'pt' });
    writeFileAtomic(path.join(out, CONFIG_FILE), methodConfigJson(set, info, [...modules], lorakit, shared?.config));
    return out;
  }
  const config = peftConfigOf(set, { ...info, modulesToSave: [...modules] });
  if (info.convertToLora && set.initialParams.size) convertResidualInit(set, tensors, config);
  writeSafetensors(path.join(out, WEIGHTS_FILE), tensors, { format: 'pt' });
  writeFileAtomic(path.join(out, CONFIG_FILE), serializePeftConfig(config, { unknown: info.peftConfig?.unknown, lorakit }));
  return out;
}

/** Tensors outside any module (PEFT's `base_model.vera_A`): 'base_model.' + name. */
export const SHARED_PREFIX = 'base_model.';

function methodConfigJson(set: AdapterSet, info: SavedAdapterInfo, modulesToSave: string[], lorakit: Record<string, unknown>, sharedConfig?: Record<string, unknown>): string {
  const target = set.options.targetModules;
  const bias = set.options.bias ?? 'none';
  const saved = new Set([...(set.options.modulesToSave ?? []), ...modulesToSave]);
  const out: Record<string, unknown> = {
    ...info.peftConfig?.unknown,
    ...(info.peftConfig && 'method' in info.peftConfig ? info.peftConfig.patternFields : {}),
    ...(set.config as Record<string, unknown>),
    ...set.method.toPeftConfig(set.config),
    ...sharedConfig,
    bias: bias === 'lora_only' ? onlyBiasName(set.method.peftType) : bias,
    peft_type: set.method.peftType,
    task_type: info.taskType ?? null,
    base_model_name_or_path: info.baseModel,
    target_modules: typeof target === 'string' ? target : [...new Set(target)],
    modules_to_save: saved.size ? [...saved] : null,
    inference_mode: true,
    lorakit,
  };
  return JSON.stringify(Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]])), null, 2) + '\n';
}

function convertResidualInit(set: AdapterSet, tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>, config: PeftLoraConfig) {
  for (const site of set.targets) {
    const keyA = `${PEFT_PREFIX}${site.name}.lora_A.weight`, keyB = `${PEFT_PREFIX}${site.name}.lora_B.weight`;
    const A0 = set.initialParams.get(keyA), B0 = set.initialParams.get(keyB);
    if (!A0 || !B0) continue;
    const A = set.params.get(keyA)!, B = set.params.get(keyB)!;
    const [r, n] = set.shapes.get(keyA)!, m = site.outFeatures;
    const A2 = new Float32Array(2 * r * n);
    A2.set(A, 0);
    A2.set(A0, r * n);
    const B2 = new Float32Array(m * 2 * r);
    for (let i = 0; i < m; i++) for (let k = 0; k < r; k++) {
      B2[i * 2 * r + k] = B[i * r + k];
      B2[i * 2 * r + r + k] = -B0[i * r + k];
    }
    tensors[keyA] = { dtype: 'F32', shape: [2 * r, n], data: A2 };
    tensors[keyB] = { dtype: 'F32', shape: [m, 2 * r], data: B2 };
  }
  const f = config.use_rslora ? Math.SQRT2 : 2;
  config.r *= 2;
  config.lora_alpha *= f;
  config.rank_pattern = Object.fromEntries(Object.entries(config.rank_pattern ?? {}).map(([k, v]) => [k, 2 * v]));
  config.alpha_pattern = Object.fromEntries(Object.entries(config.alpha_pattern ?? {}).map(([k, v]) => [k, f * v]));
  config.init_lora_weights = true;
}

export interface LoadedAdapter {
  config: Record<string, any>;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export function readAdapter(dir: string, name?: string): LoadedAdapter {
  const d = name && name !== 'default' && fs.existsSync(path.join(dir, name, CONFIG_FILE)) ? path.join(dir, name) : dir;
  const cfgPath = path.join(d, CONFIG_FILE);
  if (!fs.existsSync(cfgPath)) throw new Error(`${cfgPath} not found: an adapter folder holds ${CONFIG_FILE} and ${WEIGHTS_FILE}`);
  let config: Record<string, any>;
  try {
    config = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    throw new Error(`${cfgPath} is not valid JSON: ${(e as Error).message}`);
  }
  const file = readSafetensors(path.join(d, WEIGHTS_FILE));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of file.tensors) {
    let data = t.data;
    if (data instanceof Float64Array) data = Float32Array.from(data);
    if (!(data instanceof Float32Array)) throw new Error(`${WEIGHTS_FILE}: tensor '${k}' has dtype ${t.dtype}; lorakit reads float32 adapters`);
    tensors.set(k, { shape: t.shape, data });
  }
  return { config, tensors };
}

/** Copies saved values into a freshly built AdapterSet, checking names and shapes. */
export function loadAdapterWeights(set: AdapterSet, loaded: LoadedAdapter): void {
  for (const [k, v] of set.params) {
    const t = loaded.tensors.get(k);
    const module = k.slice(PEFT_PREFIX.length).replace(/\.(lora_A\.weight|lora_B\.weight|lora_embedding_[AB]|lora_magnitude_vector|base_layer\.bias|weight|bias)$/, '');
    if (!t) throw new Error(`Adapter file is missing '${k}' (module '${module}'); it has: ${[...loaded.tensors.keys()].slice(0, 8).join(', ')}…`);
    const want = set.shapes.get(k)!;
    if (t.shape.join(',') !== want.join(',')) {
      throw new Error(`Adapter tensor '${k}' of module '${module}' has shape [${t.shape}] but the model needs [${want}] for this module`);
    }
    v.set(t.data);
  }
}

export class AdapterLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterLoadError';
  }
}

export interface PeftAdapter {
  set: AdapterSet;
  /** The parsed config: a LoraConfig, or (any other method) its own config with the shared fields. */
  peft: LoadedPeftConfig | LoadedMethodConfig;
  /** modules_to_save tensors that are not linear sites of the model (e.g. a task head outside it), by module path. */
  extraTensors: Map<string, { shape: number[]; data: Float32Array }>;
  dir: string;
}

/**
 * Loads a PEFT adapter folder onto a model: config → AdapterSet (per-module
 * r/alpha, exclude/layers filters, bias, modules_to_save), then weights. An
 * adapter for modules the model lacks, or with shapes that do not fit, fails
 * naming the module and both shapes.
 */
export function loadPeftAdapter(
  model: { sites: LinearSite[]; weights: WeightMap },
  dir: string,
  opts: { name?: string; warn?: (m: string) => void; headNames?: string[] } = {},
): PeftAdapter {
  const loaded = readAdapter(dir, opts.name);
  if (methodOfConfig(loaded.config, path.join(dir, CONFIG_FILE)).peftType !== 'LORA') return loadMethodAdapter(model, dir, loaded, opts);
  const peft = parsePeftConfig(loaded.config, { source: path.join(dir, CONFIG_FILE), warn: opts.warn });
  const c = peft.config;
  const method = methodForPeftConfig(c);
  const siteByName = new Map(model.sites.map((s) => [s.name, s]));
  // Every tensor must belong to a module the model has, with a shape that fits.
  const adapterRe = /^(.*)\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector|lora_embedding_A|lora_embedding_B)$/;
  const extraTensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of loaded.tensors) {
    if (!k.startsWith(PEFT_PREFIX)) throw new AdapterLoadError(`${WEIGHTS_FILE}: key '${k}' does not start with '${PEFT_PREFIX}' (not a PEFT adapter file?)`);
    const rest = k.slice(PEFT_PREFIX.length);
    const m = rest.match(adapterRe);
    if (!m) {
      extraTensors.set(rest, t);
      continue;
    }
    const site = siteByName.get(m[1]);
    if (!site) {
      throw new AdapterLoadError(
        `The adapter has '${m[2]}' [${t.shape}] for module '${m[1]}', which this model does not have.\n` +
          `Modules of this model: ${model.sites.map((s) => s.name).join(', ')}`,
      );
    }
    const { r } = rankAlphaFor(c, site.name);
    const emb = site.kind === 'embedding';
    const want = emb
      ? (m[2] === 'lora_embedding_A' ? [r, site.inFeatures] : m[2] === 'lora_embedding_B' ? [site.outFeatures, r] : null)
      : (m[2] === 'lora_A.weight' ? [r, site.inFeatures] : m[2] === 'lora_B.weight' ? [site.outFeatures, r] : m[2] === 'lora_magnitude_vector' ? [site.outFeatures] : null);
    if (!want) throw new AdapterLoadError(`Module '${site.name}': '${m[2]}' does not fit ${emb ? 'an embedding (it takes lora_embedding_A / lora_embedding_B)' : 'a linear module (lora_embedding_A / B are for embeddings)'}`);
    if (t.shape.join(',') !== want.join(',')) {
      throw new AdapterLoadError(
        `Module '${site.name}': adapter tensor '${m[2]}' has shape [${t.shape}] but this model needs [${want}] ` +
          (emb ? `(num_embeddings ${site.inFeatures}, embedding_dim ${site.outFeatures}, r ${r}). Was the vocabulary resized, or the adapter trained on another base model?`
            : `(in_features ${site.inFeatures}, out_features ${site.outFeatures}, r ${r}). Was the adapter trained on another base model?`),
      );
    }
  }
  const targets = c.target_modules!;
  const config = method.schema.parse({ ...c, init_lora_weights: c.init_lora_weights });
  const set = new AdapterSet(method, config, model.sites, model.weights, {
    targetModules: Array.isArray(targets) ? targets : targets,
    seed: peft.lorakit?.seed ?? 0,
    headNames: opts.headNames,
    filter: peftSiteFilter(c),
    siteConfig: (site, base) => ({ ...(base as object), ...rankAlphaFor(c, site.name) }) as typeof base,
    bias: c.bias,
    modulesToSave: (c.modules_to_save ?? []).filter((mm) => model.sites.some((s) => s.name === mm || s.name.endsWith(`.${mm}`))),
  });
  loadAdapterWeights(set, loaded);
  for (const k of set.params.keys()) extraTensors.delete(k.slice(PEFT_PREFIX.length));
  checkExtraTensors(model, dir, extraTensors, opts.warn ?? ((m: string) => console.warn(m)));
  return { set, peft, extraTensors, dir };
}

/** The modules_to_save tensors that are base weights of the model: shapes checked, then reported (not applied here). */
function checkExtraTensors(model: { weights: WeightMap }, dir: string, extraTensors: Map<string, StoredTensor>, warn: (m: string) => void) {
  for (const [k, t] of extraTensors) {
    const base = model.weights.get(k);
    if (!base) continue; // e.g. a task head outside the model: returned to the caller
    if (base.shape.join(',') !== t.shape.join(',')) {
      throw new AdapterLoadError(`Module '${k.replace(/\.[^.]+$/, '')}': saved tensor '${k}' has shape [${t.shape}] but this model's is [${base.shape}] (resized embeddings or another head size?)`);
    }
    warn(`${dir}: '${k}' (modules_to_save of a module that is not a linear layer) is not applied by the adapter; apply it with model.withWeights(...) (PeftAdapter.extraTensors)`);
  }
}

/**
 * Any method but LoRA/DoRA (VeRA, RandLoRA, FourierFT as PEFT writes them;
 * lorakit's own methods): the config is parsed with the method's schema, the
 * AdapterSet is built from it (seeded frozen bases regenerate from the seeds
 * in the config; factorizations of W0 from the model), then every tensor of
 * the file is checked against it: parameters (names and shapes), hook state
 * (SMoRA's β), shared frozen tensors (PEFT's `base_model.vera_A` with
 * save_projection), modules_to_save.
 */
function loadMethodAdapter(
  model: { sites: LinearSite[]; weights: WeightMap },
  dir: string,
  loaded: LoadedAdapter,
  opts: { warn?: (m: string) => void; headNames?: string[] },
): PeftAdapter {
  const source = path.join(dir, CONFIG_FILE);
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  const peft = parseMethodConfig(loaded.config, { source, warn });
  const { method, common } = peft;
  const siteByName = new Map(model.sites.map((s) => [s.name, s]));
  const targets = common.target_modules!;
  const patternFields = Object.entries(peft.patterns);
  const set = new AdapterSet(method, peft.config, model.sites, model.weights, {
    targetModules: targets,
    seed: peft.lorakit?.seed ?? 0,
    headNames: opts.headNames,
    filter: peftSiteFilter(common),
    siteConfig: patternFields.length
      ? (site, base) => {
          const over = Object.fromEntries(patternFields.map(([f, pat]) => [f, patternValue(pat, site.name, (base as Record<string, unknown>)[f])]));
          return method.schema.parse({ ...(base as object), ...over });
        }
      : undefined,
    bias: peft.bias,
    modulesToSave: (common.modules_to_save ?? []).filter((mm) => model.sites.some((s) => s.name === mm || s.name.endsWith(`.${mm}`))),
  });
  // Suffix of every parameter / state tensor this method keeps per module.
  const suffixes = new Set<string>(method.hooks?.stateKeys ?? []);
  for (const site of set.targets) for (const k of set.siteKeys(site.name)) suffixes.add(k.slice(PEFT_PREFIX.length + site.name.length + 1));
  const moduleOf = (rest: string): [string, string] | null => {
    for (const sfx of suffixes) if (rest.endsWith(`.${sfx}`)) return [rest.slice(0, -sfx.length - 1), sfx];
    return null;
  };
  const extraTensors = new Map<string, StoredTensor>();
  const shared: Record<string, StoredTensor> = {};
  const state = new Map<string, Record<string, StoredTensor>>();
  for (const [k, t] of loaded.tensors) {
    if (set.params.has(k)) {
      const want = set.shapes.get(k)!;
      if (t.shape.join(',') !== want.join(',')) {
        const rest = k.slice(PEFT_PREFIX.length);
        const [module, sfx] = moduleOf(rest) ?? [rest.replace(/\.[^.]+$/, ''), rest.split('.').pop()!];
        const site = siteByName.get(module);
        throw new AdapterLoadError(
          `Module '${module}': adapter tensor '${sfx}' has shape [${t.shape}] but this model needs [${want}]` +
            (site ? ` (in_features ${site.inFeatures}, out_features ${site.outFeatures}, ${method.name} config ${JSON.stringify(set.configFor(site))})` : '') +
            '. Was the adapter trained on another base model, or with another config?',
        );
      }
      continue;
    }
    if (!k.startsWith(PEFT_PREFIX)) {
      const name = k.startsWith(SHARED_PREFIX) ? k.slice(SHARED_PREFIX.length) : null;
      if (name !== null && method.shared?.names.includes(name)) {
        shared[name] = t;
        continue;
      }
      throw new AdapterLoadError(`${WEIGHTS_FILE}: key '${k}' does not start with '${PEFT_PREFIX}' and is not a shared tensor of ${method.name} (${method.shared?.names.map((n) => SHARED_PREFIX + n).join(', ') || 'it has none'})`);
    }
    const rest = k.slice(PEFT_PREFIX.length);
    const hit = moduleOf(rest);
    if (!hit) {
      extraTensors.set(rest, t);
      continue;
    }
    const [module, sfx] = hit;
    const site = siteByName.get(module);
    if (!site) {
      throw new AdapterLoadError(
        `The adapter has '${sfx}' [${t.shape}] for module '${module}', which this model does not have.\n` +
          `Modules of this model: ${model.sites.map((s) => s.name).join(', ')}`,
      );
    }
    if (!set.isTarget(module)) {
      throw new AdapterLoadError(`The adapter has '${sfx}' [${t.shape}] for module '${module}', which its config does not adapt (target_modules ${JSON.stringify(targets)}, exclude_modules ${JSON.stringify(common.exclude_modules)}, layers_to_transform ${JSON.stringify(common.layers_to_transform)})`);
    }
    if (!state.has(module)) state.set(module, {});
    state.get(module)![sfx] = t;
  }
  // PEFT saves only its prefix's tensors for these tuners (save_and_load.py), so a bias='<method>_only' / 'all'
  // file has no biases: those copies keep the base model's values.
  const withBases = new Map(loaded.tensors);
  const saved = set.options.modulesToSave ?? [];
  const ofSavedModule = (k: string) => {
    const mod = k.slice(PEFT_PREFIX.length).replace(/\.(weight|bias)$/, '');
    return saved.some((m) => mod === m || mod.endsWith(`.${m}`));
  };
  const kept = peft.bias === 'none' ? [] : set.baseCopyKeys().filter((k) => !withBases.has(k) && k.endsWith('.bias') && !ofSavedModule(k));
  for (const k of kept) withBases.set(k, { shape: set.shapes.get(k)!, data: set.params.get(k)! });
  if (kept.length) warn(`${source}: bias '${common.bias}' but ${WEIGHTS_FILE} holds no ${kept.length > 1 ? `biases (${kept.length})` : 'bias'}; the base model's biases are used (PEFT does not save them for ${method.peftType})`);
  loadAdapterWeights(set, { ...loaded, tensors: withBases });
  loadHookState(set, state);
  const saveProjection = peft.loaderFields.save_projection === true;
  if (Object.keys(shared).length || saveProjection) {
    const missing = method.shared!.names.filter((n) => !shared[n]);
    if (missing.length) throw new AdapterLoadError(`${source}: save_projection is true but ${WEIGHTS_FILE} lacks ${missing.map((n) => SHARED_PREFIX + n).join(', ')}`);
    method.shared!.load(set.state, set.config, shared, set.targets);
  }
  for (const k of set.params.keys()) extraTensors.delete(k.slice(PEFT_PREFIX.length));
  checkExtraTensors(model, dir, extraTensors, warn);
  return { set, peft, extraTensors, dir };
}
