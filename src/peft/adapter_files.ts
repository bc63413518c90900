// Writes and reads an adapter folder the way PEFT does: adapter_config.json
// (PEFT field names) + adapter_model.safetensors (keys without the adapter
// name, metadata {"format":"pt"}). Extra trainable modules (a classification
// head) are stored as modules_to_save: base_model.model.<module>.<param>.

import fs from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { AdapterSet, PEFT_PREFIX } from '../adapters/inject.ts';
import { writeFileAtomic } from '../train/checkpoint.ts';

export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';

export interface SavedAdapterInfo {
  baseModel: string;
  taskType?: string;
  /** Extra trainable tensors by module path (e.g. 'classifier.weight'). */
  modulesToSave?: Map<string, { shape: number[]; data: Float32Array }>;
  extra?: Record<string, unknown>;
}

export function saveAdapter(dir: string, set: AdapterSet, info: SavedAdapterInfo): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of set.params) tensors[k] = { dtype: 'F32', shape: set.shapes.get(k)!, data: v };
  const modules = new Set<string>();
  for (const [k, t] of info.modulesToSave ?? []) {
    tensors[PEFT_PREFIX + k] = { dtype: 'F32', shape: t.shape, data: t.data };
    modules.add(k.split('.').slice(0, -1).join('.'));
  }
  const target = set.options.targetModules;
  const config = {
    peft_type: set.method.peftType,
    task_type: info.taskType ?? null,
    base_model_name_or_path: info.baseModel,
    revision: null,
    inference_mode: true,
    target_modules: typeof target === 'string' ? target : [...target],
    modules_to_save: modules.size ? [...modules] : null,
    ...set.method.toPeftConfig(set.config),
    lorakit: { method: set.method.name, seed: set.options.seed ?? 0, ...info.extra },
  };
  writeSafetensors(path.join(dir, WEIGHTS_FILE), tensors, { format: 'pt' });
  writeFileAtomic(path.join(dir, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
}

export interface LoadedAdapter {
  config: Record<string, any>;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export function readAdapter(dir: string): LoadedAdapter {
  const cfgPath = path.join(dir, CONFIG_FILE);
  if (!fs.existsSync(cfgPath)) throw new Error(`${cfgPath} not found: an adapter folder holds ${CONFIG_FILE} and ${WEIGHTS_FILE}`);
  let config: Record<string, any>;
  try {
    config = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    throw new Error(`${cfgPath} is not valid JSON: ${(e as Error).message}`);
  }
  const file = readSafetensors(path.join(dir, WEIGHTS_FILE));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of file.tensors) {
    if (!(t.data instanceof Float32Array)) throw new Error(`${WEIGHTS_FILE}: tensor '${k}' has dtype ${t.dtype}; lorakit adapters are float32`);
    tensors.set(k, { shape: t.shape, data: t.data });
  }
  return { config, tensors };
}

/** Copies saved values into a freshly built AdapterSet, checking names and shapes. */
export function loadAdapterWeights(set: AdapterSet, loaded: LoadedAdapter): void {
  for (const [k, v] of set.params) {
    const t = loaded.tensors.get(k);
    if (!t) throw new Error(`Adapter file is missing '${k}' (module '${k.slice(PEFT_PREFIX.length)}'); it has: ${[...loaded.tensors.keys()].slice(0, 8).join(', ')}…`);
    const want = set.shapes.get(k)!;
    if (t.shape.join(',') !== want.join(',')) {
      throw new Error(`Adapter tensor '${k}' has shape [${t.shape}] but the model needs [${want}] for this module`);
    }
    v.set(t.data);
  }
}
