// SG-LoRA's expert library (Li et al., "SG-LoRA: Semantic-Guided LoRA
// Parameter Generation", arXiv 2509.10535): LoRA adapters of known tasks,
// each with a one-sentence description of its task. An expert is a folder
// with the adapter (the folder itself, or its `adapter/` subfolder as
// `lorakit train` writes it) and `description.txt`; several folders may share
// a description (seeds of one task: more samples for the generator).
//
// All experts must be plain LoRAs of one shape (same base model, modules,
// rank, tensors): their tensors (LoRA factors and any modules_to_save, such
// as a classification head) are flattened in key order into one vector θ,
// and a generated vector is written back as a normal PEFT LoRA folder.

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../io/atomic.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import type { StoredTensor } from '../../adapters/types.ts';
import { CONFIG_FILE, LORAKIT_CONFIG_FILE, readAdapter, WEIGHTS_FILE } from '../../peft/adapter_files.ts';

export const DESCRIPTION_FILE = 'description.txt';

export interface Expert {
  /** The folder given. */
  dir: string;
  /** The adapter folder inside it. */
  adapterDir: string;
  description: string;
  config: Record<string, any>;
  tensors: Map<string, StoredTensor>;
}

/** The layout of θ: each tensor's key, shape and offset. */
export interface FlatLayout {
  keys: string[];
  shapes: number[][];
  offsets: number[];
  size: number;
}

export function readExpert(dir: string): Expert {
  const adapterDir = fs.existsSync(path.join(dir, 'adapter', CONFIG_FILE)) ? path.join(dir, 'adapter') : dir;
  const descFile = [path.join(dir, DESCRIPTION_FILE), path.join(adapterDir, DESCRIPTION_FILE)].find((f) => fs.existsSync(f));
  if (!descFile) throw new Error(`${dir}: no ${DESCRIPTION_FILE}: an SG-LoRA expert is an adapter folder with a one-sentence description of its task in ${DESCRIPTION_FILE}`);
  const description = fs.readFileSync(descFile, 'utf8').trim();
  if (!description) throw new Error(`${descFile}: empty; write one sentence that describes the expert's task`);
  const a = readAdapter(adapterDir);
  if (a.config.peft_type !== 'LORA' || a.config.use_dora === true) throw new Error(`${adapterDir}: SG-LoRA generates plain LoRA adapters; this expert is ${a.config.use_dora ? 'a DoRA' : `a ${a.config.peft_type}`} adapter`);
  for (const k of ['rank_pattern', 'alpha_pattern'] as const) {
    if (a.config[k] && Object.keys(a.config[k]).length) throw new Error(`${adapterDir}: ${k} is set; SG-LoRA's experts share one rank and alpha`);
  }
  return { dir, adapterDir, description, config: a.config, tensors: a.tensors };
}

/** Checks the experts agree (base model, r, alpha, tensors and shapes) and returns θ's layout. */
export function layoutOf(experts: Expert[]): FlatLayout {
  if (!experts.length) throw new Error('SG-LoRA: the library has no expert');
  const first = experts[0];
  const keys = [...first.tensors.keys()].sort();
  for (const e of experts.slice(1)) {
    for (const f of ['r', 'lora_alpha', 'use_rslora', 'base_model_name_or_path'] as const) {
      if (JSON.stringify(e.config[f]) !== JSON.stringify(first.config[f])) throw new Error(`SG-LoRA: expert ${e.dir} has ${f} ${JSON.stringify(e.config[f])}, ${first.dir} has ${JSON.stringify(first.config[f])}: the experts must be LoRAs of one shape on one base model`);
    }
    const k2 = [...e.tensors.keys()].sort();
    if (k2.join('\n') !== keys.join('\n')) throw new Error(`SG-LoRA: expert ${e.dir} adapts other modules than ${first.dir} (tensors differ: ${k2.find((k) => !first.tensors.has(k)) ?? keys.find((k) => !e.tensors.has(k))})`);
    for (const k of keys) if (e.tensors.get(k)!.shape.join(',') !== first.tensors.get(k)!.shape.join(',')) throw new Error(`SG-LoRA: '${k}' has shape [${e.tensors.get(k)!.shape}] in ${e.dir} but [${first.tensors.get(k)!.shape}] in ${first.dir}`);
  }
  const shapes = keys.map((k) => first.tensors.get(k)!.shape);
  const offsets: number[] = [];
  let size = 0;
  for (const s of shapes) {
    offsets.push(size);
    size += s.reduce((a, b) => a * b, 1);
  }
  return { keys, shapes, offsets, size };
}

export function flatten(e: { tensors: Map<string, StoredTensor> }, L: FlatLayout): Float64Array {
  const out = new Float64Array(L.size);
  L.keys.forEach((k, i) => out.set(e.tensors.get(k)!.data, L.offsets[i]));
  return out;
}

export function unflatten(theta: ArrayLike<number>, L: FlatLayout): Map<string, StoredTensor> {
  const out = new Map<string, StoredTensor>();
  L.keys.forEach((k, i) => {
    const n = L.shapes[i].reduce((a, b) => a * b, 1);
    out.set(k, { shape: L.shapes[i], data: Float32Array.from({ length: n }, (_, j) => theta[L.offsets[i] + j]) });
  });
  return out;
}

/**
 * Writes a generated adapter as PEFT files: the template expert's
 * adapter_config.json (with `config` fields overriding it) and lorakit block
 * (plus `sg_lora`: how it was generated), the tensors.
 */
export function writeAdapterFolder(out: string, template: Expert, tensors: Map<string, StoredTensor>, info: { config?: Record<string, unknown>; sgLora: Record<string, unknown> }): void {
  fs.mkdirSync(out, { recursive: true });
  writeSafetensors(path.join(out, WEIGHTS_FILE), new Map([...tensors].map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data }])), { format: 'pt' });
  const raw = JSON.parse(fs.readFileSync(path.join(template.adapterDir, CONFIG_FILE), 'utf8'));
  const { lorakit: _drop, ...config } = { ...raw, ...info.config };
  const block = { ...(template.config.lorakit ?? {}), sg_lora: info.sgLora };
  writeFileAtomic(path.join(out, LORAKIT_CONFIG_FILE), JSON.stringify(block, null, 2) + '\n');
  writeFileAtomic(path.join(out, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
  writeFileAtomic(path.join(out, DESCRIPTION_FILE), String(info.sgLora.description ?? '') + '\n');
}
