// Writes and reads an adapter folder the way PEFT does: adapter_config.json
// (PEFT field names, src/peft/config.ts) + adapter_model.safetensors (keys
// without the adapter name, metadata {"format":"pt"}). An adapter named other
// than 'default' goes to a subfolder with its name. Extra trainable modules
// (a classification head) are stored as modules_to_save:
// base_model.model.<module>.<param>.
//
// The files are made and read as bytes (adapterFiles, and an AdapterFiles map
// wherever a folder is read): a web page downloads and uploads them; in Node
// saveAdapter writes them to a folder.

import { exists, joinPath, makeDirs, readBytes, removeFile, writeAtomic } from '../io/files.ts';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.ts';
import { AdapterSet, moduleMatches, PEFT_PREFIX } from '../adapters/inject.ts';
import { loadHookState, saveHookState } from '../adapters/hooks.ts';
import type { AdapterMethod, StoredTensor } from '../adapters/types.ts';
import type { LinearSite, WeightMap } from '../models/types.ts';
import { FileFormatError } from '../util/errors.ts';
import { tiedTargets } from './tied.ts';
import { keptSharedFields, LoadedPeftConfig, parsePeftConfig, patternSiteConfig, PEFT_TYPES, PEFT_VERSION, peftSiteFilter, serializePeftConfig } from './config.ts';

export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';
/**
 * lorakit's own block (method, seed, task metadata such as labels) for an
 * adapter of one of PEFT's own types, beside adapter_config.json: PEFT warns
 * about (and drops) any key it does not know, so the block is not written
 * there. Files of lorakit's own types keep it under adapter_config.json's
 * `lorakit` key, as every file did before; both are read.
 */
export const LORAKIT_CONFIG_FILE = 'lorakit_config.json';

/** An adapter folder in memory: file name (adapter_config.json, adapter_model.safetensors, lorakit_config.json) → bytes. */
export type AdapterFiles = ReadonlyMap<string, Uint8Array>;

/** Tensors outside any module (PEFT's `base_model.vera_A`): 'base_model.' + name. */
export const SHARED_PREFIX = 'base_model.';

/** What a save keeps of the file an adapter was loaded from (a LoadedPeftConfig, or any part of one). */
export interface KeptPeftConfig {
  /** The file's method; without it the fields are taken as the saved method's. */
  method?: AdapterMethod;
  /** The file's known fields (PEFT's names): its shared ones written back, the method's where its descriptor keeps them (LoRA). */
  config?: Record<string, unknown>;
  /** Fields lorakit does not know: written back as they were. */
  unknown?: Record<string, unknown>;
  lorakit?: Record<string, any>;
}

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
   * (PEFT's path_initial_model_for_weight_conversion; the method's
   * `peft.convertResidual`): A' = [A; A0], B' = [B, −B0], r×2, alpha×2 (×√2 with rsLoRA).
   */
  convertToLora?: boolean;
  /** Fields of the config kept from a loaded file (unknown ones too). */
  peftConfig?: KeptPeftConfig;
  /** Told when part of the config is not PEFT's and the file holds its PEFT equivalent (FourierFT's ifft2_norm); default console.warn. */
  warn?: (message: string) => void;
}

/** lorakit's block (method, seed, what PEFT's fields cannot hold) as LORAKIT_CONFIG_FILE's text, keys sorted. */
export function lorakitConfigText(block: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.keys(block).sort().map((k) => [k, block[k]])), null, 2) + '\n';
}

/** Writes lorakit's block as LORAKIT_CONFIG_FILE beside adapter_config.json (Node). */
export function writeLorakitConfig(dir: string, block: Record<string, unknown>): void {
  writeAtomic(joinPath(dir, LORAKIT_CONFIG_FILE), lorakitConfigText(block));
}

/**
 * The adapter_config.json fields an AdapterSet stands for (before
 * serializePeftConfig): the loaded file's shared fields that are not at their
 * defaults, the method's own (its descriptor), the shared frozen tensors'
 * flag, then the shared PeftConfig fields of the set.
 */
export function peftConfigOf(
  set: Pick<AdapterSet, 'method' | 'config' | 'options'>,
  info: Pick<SavedAdapterInfo, 'baseModel' | 'taskType' | 'peftConfig'> & { modulesToSave?: string[]; sharedConfig?: Record<string, unknown> },
): Record<string, any> {
  const d = set.method.peft;
  const file = info.peftConfig;
  const kept = file?.config && (!file.method || file.method.peft.peftType === d.peftType) ? file.config : undefined;
  const own = d.fieldsOf ? d.fieldsOf(set.config, kept) : { ...(set.config as Record<string, unknown>) };
  const fields: Record<string, any> = { ...(kept && keptSharedFields(kept)), ...own };
  const target = set.options.targetModules;
  const bias = set.options.bias ?? 'none';
  const saved = new Set([...(set.options.modulesToSave ?? []), ...(info.modulesToSave ?? [])]);
  return {
    ...fields,
    ...info.sharedConfig,
    bias: bias === 'lora_only' ? d.onlyBias : bias,
    peft_type: d.peftType,
    ...(PEFT_TYPES.has(d.peftType) && { peft_version: PEFT_VERSION }),
    task_type: info.taskType ?? fields.task_type ?? null,
    base_model_name_or_path: info.baseModel,
    target_modules: typeof target === 'string' ? target : [...target],
    modules_to_save: saved.size ? [...saved] : null,
  };
}

function adapterDir(dir: string, name?: string): string {
  return name && name !== 'default' ? joinPath(dir, name) : dir;
}

/**
 * Writes the adapter folder of any method (the files of adapterFiles): its
 * parameters, modules_to_save, hook state (SMoRA's β) and shared frozen
 * tensors (VeRA's projections) under PEFT's keys, and adapter_config.json with
 * the method's peft_type and fields. Node; in a browser, adapterFiles.
 */
export function saveAdapter(dir: string, set: AdapterSet, info: SavedAdapterInfo): string {
  const out = adapterDir(dir, info.adapterName);
  makeDirs(out);
  const files = adapterFiles(set, info);
  // Weights first, adapter_config.json last: a folder with a config always has its weights.
  for (const name of [WEIGHTS_FILE, LORAKIT_CONFIG_FILE, CONFIG_FILE]) {
    const bytes = files.get(name);
    if (bytes) writeAtomic(joinPath(out, name), bytes);
    else removeFile(joinPath(out, name)); // an earlier save's sidecar would describe another adapter
  }
  return out;
}

/** The files of an adapter folder as bytes (what saveAdapter writes; `info.adapterName` is not used: no subfolder). */
export function adapterFiles(set: AdapterSet, info: SavedAdapterInfo): Map<string, Uint8Array> {
  const d = set.method.peft;
  const tensors: Record<string, StoredTensor> = {};
  for (const [k, v] of set.params) tensors[k] = { shape: set.shapes.get(k)!, data: v };
  const modules = new Set<string>();
  for (const [k, t] of info.modulesToSave ?? []) {
    tensors[PEFT_PREFIX + k] = { shape: t.shape, data: t.data };
    modules.add(k.split('.').slice(0, -1).join('.'));
  }
  for (const [module, st] of saveHookState(set)) {
    for (const [suffix, t] of Object.entries(st)) tensors[`${PEFT_PREFIX}${module}.${suffix}`] = { shape: t.shape, data: t.data };
  }
  const shared = d.shared?.save(set.state, set.config);
  for (const [name, t] of Object.entries(shared?.tensors ?? {})) {
    tensors[`${SHARED_PREFIX}${name}`] = { shape: t.shape, data: t.data };
    if (d.shared?.perModule) for (const site of set.targets) tensors[`${PEFT_PREFIX}${site.name}.${name}`] = { shape: t.shape, data: t.data };
  }
  const fields = peftConfigOf(set, { ...info, modulesToSave: [...modules], sharedConfig: shared?.config });
  d.finalizeSave?.({ state: set.state, config: set.config, sites: set.targets, tensors, fields });
  if (info.convertToLora && set.initialParams.size) {
    if (!d.convertResidual) throw new Error(`saveAdapter: convertToLora, but method '${set.method.name}' has no conversion of an init that changed the base weight`);
    d.convertResidual({ sites: set.targets, params: set.params, initial: set.initialParams, shapes: set.shapes, tensors, fields });
  }
  // Config PEFT cannot hold: the file gets PEFT's equivalent, lorakit's block what restores it.
  const restore = d.peftForm?.save({ sites: set.targets, configFor: (s) => set.configFor(s), tensors, fields });
  const kept = Object.entries(restore ?? {}).filter(([, v]) => v !== undefined);
  if (kept.length) {
    (info.warn ?? ((m: string) => console.warn(m)))(
      `${set.method.name}: ${kept.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')} is not a PEFT field: ${WEIGHTS_FILE} holds the same adapter in PEFT's terms ` +
        `(PEFT loads the same ΔW) and ${LORAKIT_CONFIG_FILE} keeps ${kept.map(([k]) => k).join(', ')} so lorakit restores it`,
    );
  }
  const files = new Map<string, Uint8Array>();
  const text = (s: string) => new TextEncoder().encode(s);
  files.set(WEIGHTS_FILE, serializeSafetensors(Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data }])), { format: 'pt' }));
  const lorakit = { method: set.method.name, seed: set.options.seed ?? 0, ...info.peftConfig?.lorakit, ...info.extra, ...restore };
  if (PEFT_TYPES.has(d.peftType)) {
    files.set(LORAKIT_CONFIG_FILE, text(lorakitConfigText(lorakit)));
    files.set(CONFIG_FILE, text(serializePeftConfig(fields, { unknown: info.peftConfig?.unknown })));
  } else {
    files.set(CONFIG_FILE, text(serializePeftConfig(fields, { unknown: info.peftConfig?.unknown, lorakit })));
  }
  return files;
}

export interface LoadedAdapter {
  /** The folder the files were read from (a named adapter's subfolder), or ADAPTER_FILES_LABEL. */
  dir: string;
  config: Record<string, any>;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** Size of adapter_model.safetensors in bytes. */
  weightsBytes: number;
  /** Where lorakit's block came from: LORAKIT_CONFIG_FILE, adapter_config.json's `lorakit` key, or nowhere (a folder PEFT saved). */
  lorakitBlock: 'file' | 'inline' | 'none';
}

/** How messages name an adapter given as AdapterFiles. */
export const ADAPTER_FILES_LABEL = '<adapter files>';

/** Where an adapter's files come from: a folder (Node) or bytes in memory. */
interface FileSource {
  where: string;
  path(name: string): string;
  read(name: string): Uint8Array | undefined;
}

function fileSource(dir: string | AdapterFiles, name?: string): FileSource {
  if (typeof dir !== 'string') return { where: ADAPTER_FILES_LABEL, path: (f) => `${ADAPTER_FILES_LABEL}/${f}`, read: (f) => dir.get(f) };
  const d = name && name !== 'default' && exists(joinPath(dir, name, CONFIG_FILE)) ? joinPath(dir, name) : dir;
  return { where: d, path: (f) => joinPath(d, f), read: (f) => (exists(joinPath(d, f)) ? readBytes(joinPath(d, f)) : undefined) };
}

const utf8 = new TextDecoder();

/** Reads an adapter folder (or its files as bytes): the config with lorakit's block, and the float32 tensors. */
export function readAdapter(dir: string | AdapterFiles, name?: string): LoadedAdapter {
  const src = fileSource(dir, name);
  const cfgPath = src.path(CONFIG_FILE);
  const cfgBytes = src.read(CONFIG_FILE);
  if (!cfgBytes) throw new AdapterLoadError(`not found: an adapter folder holds ${CONFIG_FILE} and ${WEIGHTS_FILE}`, cfgPath);
  let config: Record<string, any>;
  try {
    config = JSON.parse(utf8.decode(cfgBytes));
  } catch (e) {
    throw new AdapterLoadError(`not valid JSON: ${(e as Error).message}`, cfgPath);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new AdapterLoadError(`must be a JSON object of PEFT config fields, got ${Array.isArray(config) ? 'an array' : JSON.stringify(config)}`, cfgPath);
  const sidecar = src.path(LORAKIT_CONFIG_FILE);
  const sidecarBytes = src.read(LORAKIT_CONFIG_FILE);
  const lorakitBlock = sidecarBytes ? 'file' : config.lorakit && typeof config.lorakit === 'object' ? 'inline' : 'none';
  if (sidecarBytes) {
    let block: unknown;
    try {
      block = JSON.parse(utf8.decode(sidecarBytes));
    } catch (e) {
      throw new AdapterLoadError(`not valid JSON: ${(e as Error).message}`, sidecar);
    }
    if (typeof block !== 'object' || block === null || Array.isArray(block)) throw new AdapterLoadError("must be a JSON object (lorakit's method, seed and task metadata)", sidecar);
    // In memory the block is the config's `lorakit` key, wherever it was stored.
    config.lorakit = { ...config.lorakit, ...block };
  }
  const weightsPath = src.path(WEIGHTS_FILE);
  const weights = src.read(WEIGHTS_FILE);
  if (!weights) throw new AdapterLoadError(`not found: the adapter's tensors (${CONFIG_FILE} is there)`, weightsPath);
  const file = parseSafetensors(weights, weightsPath);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of file.tensors) {
    let data = t.data;
    if (data instanceof Float64Array) data = Float32Array.from(data);
    if (!(data instanceof Float32Array)) throw new AdapterLoadError(`tensor '${k}' has dtype ${t.dtype}; lorakit reads float32 adapters`, weightsPath);
    tensors.set(k, { shape: t.shape, data });
  }
  return { dir: src.where, config, tensors, weightsBytes: weights.length, lorakitBlock };
}

/**
 * What a reader falls back to when a folder has no lorakit block: PEFT's
 * save_pretrained writes adapter_config.json and the weights only, so a lorakit
 * adapter trained further and saved by PEFT loses lorakit_config.json (the ΔW and
 * PEFT's fields are all there). `used`: the block's fields this reader needs, with
 * the value it takes instead. Undefined when the block is there or nothing is used.
 */
export function lorakitBlockLost(saved: Pick<LoadedAdapter, 'dir' | 'lorakitBlock'>, used: { field: string; fallback: string }[]): string | undefined {
  if (saved.lorakitBlock !== 'none' || !used.length) return undefined;
  return `${saved.dir}: no ${LORAKIT_CONFIG_FILE} beside ${CONFIG_FILE} (PEFT's save_pretrained keeps only its own files), so lorakit's run metadata is missing: ` +
    `${used.map((u) => `${u.field} → ${u.fallback}`).join(', ')}. Copy ${LORAKIT_CONFIG_FILE} from the folder the adapter came from (a recipe's adapter0/ or out/adapter/) to keep them`;
}

/** Copies saved values into a freshly built AdapterSet, checking names and shapes. */
export function loadAdapterWeights(set: AdapterSet, loaded: LoadedAdapter): void {
  for (const [k, v] of set.params) {
    const t = loaded.tensors.get(k);
    const module = () => set.keyOwner(k)?.module ?? k;
    if (!t) throw new Error(`Adapter file is missing '${k}' (module '${module()}'); it has: ${[...loaded.tensors.keys()].slice(0, 8).join(', ')}…`);
    const want = set.shapes.get(k)!;
    if (t.shape.join(',') !== want.join(',')) {
      throw new Error(`Adapter tensor '${k}' of module '${module()}' has shape [${t.shape}] but the model needs [${want}] for this module`);
    }
    v.set(t.data);
  }
}

export class AdapterLoadError extends FileFormatError {
  constructor(message: string, file = '', options?: { cause?: unknown }) {
    super(file, message, options);
    this.name = 'AdapterLoadError';
  }
}

export interface PeftAdapter {
  set: AdapterSet;
  /** The parsed config: the method, its config, the shared fields, unknown ones. */
  peft: LoadedPeftConfig;
  /** modules_to_save tensors that are not linear sites of the model (e.g. a task head outside it), by module path. */
  extraTensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** The folder it was read from, or ADAPTER_FILES_LABEL. */
  dir: string;
}

/** The AdapterSet a parsed config describes on a model (fresh values: the method's init). */
function adapterSetOf(model: { sites: LinearSite[]; weights: WeightMap }, peft: LoadedPeftConfig, headNames?: string[], seed?: number, maxParams?: number): AdapterSet {
  const c = peft.config;
  const set = new AdapterSet(peft.method, peft.methodConfig, model.sites, model.weights, {
    maxParams,
    targetModules: c.target_modules!,
    seed: seed ?? peft.lorakit?.seed ?? 0,
    headNames,
    filter: peftSiteFilter(c),
    siteConfig: patternSiteConfig(peft.method, c),
    bias: peft.bias,
    // Modules of this model (a site, or weights the model reads, e.g. a BERT classifier); others (a head lorakit's
    // tasks keep outside the model) come back in extraTensors.
    modulesToSave: (c.modules_to_save ?? []).filter((mm) => model.sites.some((s) => s.name === mm || s.name.endsWith(`.${mm}`)) || [...model.weights.keys()].some((k) => moduleMatches(k, mm))),
  });
  // PEFT 0.20's ensure_weight_tying gives a tied head an adapter sharing the embedding's factors; where nothing tied
  // is adapted PEFT ignores it (with a warning), and so does lorakit.
  // (A modules_to_save copy of a tied table counts too: PEFT ties the head to it.)
  const copied = model.sites.filter((s) => set.baseCopyKeys().includes(`${PEFT_PREFIX}${s.name}.weight`));
  const tied = c.ensure_weight_tying === true ? tiedTargets({ sites: model.sites, headNames }, { targets: [...set.targets, ...copied] }) : [];
  if (tied.length) {
    throw new AdapterLoadError(
      `ensure_weight_tying is true and the adapter adapts '${tied[0].site.name}', whose weight is tied to ${tied[0].tiedTo}: lorakit does not implement PEFT's tied adapters ` +
        `(the head sharing the embedding's LoRA factors), so it would not compute what PEFT computes with this file`,
    );
  }
  return set;
}

/**
 * PEFT's get_peft_model: a fresh adapter on `model` from adapter_config.json
 * contents (any registered method; PEFT's names and defaults; rank/alpha
 * patterns, exclude_modules, layers_to_transform, bias, modules_to_save),
 * initialized by the method with `seed`. Saving it with `peftConfig: peft`
 * writes those fields back.
 */
export function createPeftAdapter(
  model: { sites: LinearSite[]; weights: WeightMap },
  json: Record<string, unknown>,
  opts: { seed?: number; headNames?: string[]; warn?: (m: string) => void } = {},
): { set: AdapterSet; peft: LoadedPeftConfig } {
  const peft = parsePeftConfig(json, { warn: opts.warn });
  if (peft.method.peft.peftForm && peft.lorakit) peft.methodConfig = peft.method.peft.peftForm.restore(peft.methodConfig, peft.lorakit);
  return { set: adapterSetOf(model, peft, opts.headNames, opts.seed), peft };
}

/**
 * Loads a PEFT adapter folder of any registered method onto a model: config →
 * AdapterSet (the method's config, per-module pattern fields, exclude/layers
 * filters, bias, modules_to_save; seeded frozen bases regenerate from the
 * config, factorizations of W0 from the model), then every tensor of the file
 * is checked against it: parameters (names and shapes), hook state (SMoRA's
 * β), shared frozen tensors (PEFT's `base_model.vera_A` with save_projection),
 * modules_to_save. A tensor for a module the model lacks or the config does
 * not adapt, or with a shape that does not fit, fails naming the module and
 * both shapes.
 */
export function loadPeftAdapter(
  model: { sites: LinearSite[]; weights: WeightMap },
  dir: string | AdapterFiles,
  opts: { name?: string; warn?: (m: string) => void; headNames?: string[] } = {},
): PeftAdapter {
  try {
    return loadPeftAdapterUnchecked(model, dir, opts);
  } catch (e) {
    // Every problem names the adapter folder; anything that is not a known problem (a bug) keeps its cause.
    const where = typeof dir === 'string' ? dir : ADAPTER_FILES_LABEL;
    if (e instanceof FileFormatError) throw e.inFile(where);
    throw new AdapterLoadError(`cannot be loaded: ${(e as Error)?.message ?? String(e)}`, where, { cause: e });
  }
}

function loadPeftAdapterUnchecked(
  model: { sites: LinearSite[]; weights: WeightMap },
  from: string | AdapterFiles,
  opts: { name?: string; warn?: (m: string) => void; headNames?: string[] } = {},
): PeftAdapter {
  const loaded = readAdapter(from, opts.name);
  const dir = typeof from === 'string' ? from : ADAPTER_FILES_LABEL;
  const source = typeof from === 'string' ? joinPath(from, CONFIG_FILE) : `${ADAPTER_FILES_LABEL}/${CONFIG_FILE}`;
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  const peft = parsePeftConfig(loaded.config, { source, warn });
  // Config values kept in lorakit's block because PEFT's files cannot hold them (FourierFT's ifft2_norm).
  if (peft.method.peft.peftForm && peft.lorakit) peft.methodConfig = peft.method.peft.peftForm.restore(peft.methodConfig, peft.lorakit);
  const { method, config: c } = peft;
  const d = method.peft;
  const siteByName = new Map(model.sites.map((s) => [s.name, s]));
  // Key suffixes a module may carry: the method's tensors and its hook state.
  const suffixes = [...d.moduleKeys, ...(method.hooks?.stateKeys ?? [])];
  const moduleOf = (rest: string): [string, string] | null => {
    for (const sfx of suffixes) if (rest.endsWith(`.${sfx}`)) return [rest.slice(0, -sfx.length - 1), sfx];
    return null;
  };
  // Before anything is built from the config: every module tensor belongs to a module this model has.
  for (const [k, t] of loaded.tensors) {
    const hit = k.startsWith(PEFT_PREFIX) ? moduleOf(k.slice(PEFT_PREFIX.length)) : null;
    if (hit && !siteByName.has(hit[0])) {
      throw new AdapterLoadError(
        `The adapter has '${hit[1]}' [${t.shape}] for module '${hit[0]}', which this model does not have.\n` +
          `Modules of this model: ${model.sites.map((s) => s.name).join(', ')}`,
      );
    }
  }
  // Stored tensors take ≥ 2 bytes a value (F16 / BF16, lorakit writes F32).
  const set = adapterSetOf(model, peft, opts.headNames, undefined, Math.floor(loaded.weightsBytes / 2));
  const extraTensors = new Map<string, StoredTensor>();
  const shared: Record<string, StoredTensor> = {};
  // PEFT's RandLoRA file also holds the shared projections under every module (its layers hold the shared dict).
  const sharedCopies: Record<string, { key: string; t: StoredTensor }[]> = {};
  const state = new Map<string, Record<string, StoredTensor>>();
  for (const [k, t] of loaded.tensors) {
    if (set.params.has(k)) {
      checkShape(set, k, t, siteByName);
      continue;
    }
    if (!k.startsWith(PEFT_PREFIX)) {
      const name = k.startsWith(SHARED_PREFIX) ? k.slice(SHARED_PREFIX.length) : null;
      if (name !== null && d.shared?.names.includes(name)) {
        shared[name] = t;
        continue;
      }
      const names = d.shared?.names.map((n) => SHARED_PREFIX + n).join(', ');
      throw new AdapterLoadError(`${WEIGHTS_FILE}: key '${k}' does not start with '${PEFT_PREFIX}'${names ? ` and is not a shared tensor of ${method.name} (${names})` : ''}: not a PEFT adapter file?`);
    }
    const rest = k.slice(PEFT_PREFIX.length);
    const copyOf = d.shared?.names.find((n) => rest.endsWith(`.${n}`) && siteByName.has(rest.slice(0, -n.length - 1)));
    if (copyOf) {
      (sharedCopies[copyOf] ??= []).push({ key: k, t });
      continue;
    }
    const hit = moduleOf(rest);
    const baseCopy = rest.endsWith('.base_layer.weight') ? siteByName.get(rest.slice(0, -'.base_layer.weight'.length)) : undefined;
    if (baseCopy) {
      // PEFT's save_embedding_layers (on when an embedding is targeted): the layer's own weight, unchanged in the
      // usual case; a changed one (new tokens, a trained table) is what PEFT would load, so it is handed back.
      const w = model.weights.get(baseCopy.weightKey);
      const same = w !== undefined && w.shape.join(',') === t.shape.join(',') && w.data.every((x, i) => x === t.data[i]);
      if (!same) {
        extraTensors.set(baseCopy.weightKey, t);
        warn(`${source}: '${k}' (PEFT's save_embedding_layers) differs from this model's '${baseCopy.weightKey}' [${w?.shape ?? 'missing'}]: PEFT would load the stored one; apply it with model.withWeights(...) (PeftAdapter.extraTensors)`);
      }
      continue;
    }
    if (!hit) {
      extraTensors.set(rest, t);
      continue;
    }
    const [module, sfx] = hit;
    const site = siteByName.get(module)!;
    if (!set.isTarget(module)) {
      throw new AdapterLoadError(`The adapter has '${sfx}' [${t.shape}] for module '${module}', which its config does not adapt (target_modules ${JSON.stringify(c.target_modules)}, exclude_modules ${JSON.stringify(c.exclude_modules)}, layers_to_transform ${JSON.stringify(c.layers_to_transform)})`);
    }
    if (method.hooks?.stateKeys?.includes(sfx)) {
      if (!state.has(module)) state.set(module, {});
      state.get(module)![sfx] = t;
      continue;
    }
    // One of the method's keys that this kind of module does not take (lora_A.weight on an embedding).
    const own = set.siteKeys(module).map((key) => key.slice(PEFT_PREFIX.length + module.length + 1));
    throw new AdapterLoadError(`Module '${module}': '${sfx}' does not fit ${site.kind === 'embedding' ? 'an embedding' : 'a linear'} module (${method.name} stores ${own.join(', ')} there)`);
  }
  // A file may lack the biases where PEFT does not save them (bias='lora_only' in PEFT 0.20, whose saver looks for
  // '<module>.bias' beside lora_A; non-LoRA tuners save their own prefix's tensors only): the base model's are used.
  const withBases = new Map(loaded.tensors);
  d.peftForm?.load({ sites: set.targets, configFor: (s) => set.configFor(s), tensors: withBases });
  if (peft.bias !== 'none') {
    const saved = set.options.modulesToSave ?? [];
    const ofSavedModule = (k: string) => {
      const mod = k.slice(PEFT_PREFIX.length).replace(/\.(weight|bias)$/, '');
      return saved.some((m) => mod === m || mod.endsWith(`.${m}`));
    };
    const kept = set.baseCopyKeys().filter((k) => !withBases.has(k) && k.endsWith('.bias') && !ofSavedModule(k));
    for (const k of kept) withBases.set(k, { shape: set.shapes.get(k)!, data: set.params.get(k)! });
    const why = d.savesBiases ? `PEFT ${PEFT_VERSION} saves none for bias='${d.onlyBias}'` : `PEFT does not save them for ${d.peftType}`;
    if (kept.length) warn(`${source}: bias '${c.bias}' but ${WEIGHTS_FILE} holds no ${kept.length > 1 ? `biases (${kept.length})` : 'bias'}; the base model's biases are used (${why})`);
  }
  loadAdapterWeights(set, { ...loaded, tensors: withBases });
  loadHookState(set, state);
  for (const [name, copies] of Object.entries(sharedCopies)) {
    const ref = shared[name] ?? copies[0].t;
    const same = (t: StoredTensor) => t.shape.join(',') === ref.shape.join(',') && t.data.every((x, i) => x === ref.data[i]);
    const odd = copies.find((x) => !same(x.t));
    if (odd) throw new AdapterLoadError(`${WEIGHTS_FILE}: '${odd.key}' [${odd.t.shape}] is not the shared ${SHARED_PREFIX}${name} [${ref.shape}] it stands for: one adapter has one pair of ${method.name} projections`);
    shared[name] = ref;
  }
  const flag = d.shared?.flag;
  const flagged = flag !== undefined && c[flag] === true;
  if (Object.keys(shared).length || flagged) {
    const missing = d.shared!.names.filter((n) => !shared[n]);
    if (missing.length) {
      const why = flagged ? `${flag} is true` : `it holds ${Object.keys(shared).map((n) => SHARED_PREFIX + n).join(', ')}`;
      throw new AdapterLoadError(`${source}: ${why} but ${WEIGHTS_FILE} lacks ${missing.map((n) => SHARED_PREFIX + n).join(', ')}`);
    }
    d.shared!.load(set.state, set.config, shared, set.targets);
  }
  checkExtraTensors(model, dir, extraTensors, warn, c.modules_to_save ?? []);
  return { set, peft, extraTensors, dir };
}

/** A saved tensor of one of the set's own parameters must have its shape: else the error names the module and both shapes. */
function checkShape(set: AdapterSet, key: string, t: StoredTensor, siteByName: Map<string, LinearSite>) {
  const want = set.shapes.get(key)!;
  if (t.shape.join(',') === want.join(',')) return;
  const owner = set.keyOwner(key);
  const site = owner && set.isTarget(owner.module) ? siteByName.get(owner.module) : undefined;
  if (!owner || !site) return; // a bias / modules_to_save copy: loadAdapterWeights reports it
  const d = set.method.peft, config = set.configFor(site);
  const emb = site.kind === 'embedding';
  const dims = emb ? `num_embeddings ${site.inFeatures}, embedding_dim ${site.outFeatures}` : `in_features ${site.inFeatures}, out_features ${site.outFeatures}`;
  const about = d.describe ? d.describe(config) : `${set.method.name} config ${JSON.stringify(config)}`;
  throw new AdapterLoadError(
    `Module '${site.name}': adapter tensor '${owner.suffix}' has shape [${t.shape}] but this model needs [${want}] (${dims}, ${about}). ` +
      (emb ? 'Was the vocabulary resized, or the adapter trained on another base model?' : 'Was the adapter trained on another base model, or with another config?'),
  );
}

/** The modules_to_save tensors that are base weights of the model: shapes checked, then reported (not applied here). */
function checkExtraTensors(model: { weights: WeightMap }, dir: string, extraTensors: Map<string, StoredTensor>, warn: (m: string) => void, modulesToSave: string[]) {
  for (const [k, t] of extraTensors) {
    const base = model.weights.get(k);
    if (!base) {
      // A modules_to_save module the model does not have (a task head lorakit's classification keeps outside it):
      // returned to the caller. Anything else would be dropped without a word: say so.
      if (!modulesToSave.some((m) => moduleMatches(k, m))) warn(`${dir}: '${PEFT_PREFIX}${k}' [${t.shape}] is neither a tensor of this adapter's method nor a weight of this model: ignored (returned in PeftAdapter.extraTensors)`);
      continue;
    }
    if (base.shape.join(',') !== t.shape.join(',')) {
      throw new AdapterLoadError(`Module '${k.replace(/\.[^.]+$/, '')}': saved tensor '${k}' has shape [${t.shape}] but this model's is [${base.shape}] (resized embeddings or another head size?)`);
    }
    warn(`${dir}: '${k}' (a tensor of a module outside the adapter's modules) is not applied by the adapter; apply it with model.withWeights(...) (PeftAdapter.extraTensors)`);
  }
}
