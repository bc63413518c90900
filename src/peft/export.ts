// Merging adapters into the base weights (`lorakit merge`) and exporting a
// plain ONNX model (`lorakit export-onnx`) that onnxruntime / transformers.js
// load without lorakit: inputs `input_ids` and `attention_mask` (int64, as
// Hugging Face tokenizers give them), one output (`embeddings` for a sentence
// encoder, `logits` for a model whose output is logits).

import fs from 'node:fs';
import path from 'node:path';
import { Graph } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import type { EncoderModel, WeightMap } from '../models/types.ts';
import { toOnnxBytes } from '../onnx/emit.ts';
import { loadPeftAdapter } from './adapter_files.ts';
import { plainLinear } from './multi.ts';

export const MERGED_WEIGHTS = 'model.safetensors';
export const MERGED_CONFIG = 'config.json';

/**
 * The base weights with adapters merged: one adapter → its own merge (bias
 * and modules_to_save copies included); several → W0 + Σ wᵢ·ΔWᵢ (each ΔW taken
 * against W0; default weights 1).
 */
export function mergeAdapters(model: EncoderModel, dirs: string[], weights?: number[], warn: (m: string) => void = (m) => console.warn(m)): WeightMap {
  if (dirs.length === 0) throw new Error('merge: give at least one --adapter');
  const w = weights ?? dirs.map(() => 1);
  if (w.length !== dirs.length) throw new Error(`merge: ${dirs.length} adapters but ${w.length} weights (--weights 0.7,0.3 gives one per --adapter)`);
  const sets = dirs.map((d) => loadPeftAdapter(model, d, { warn }).set);
  if (sets.length === 1 && w[0] === 1) return sets[0].mergeInto(model.weights);
  const out: WeightMap = new Map(model.weights);
  sets.forEach((set, i) => {
    if (set.baseOverrides.size || set.baseCopyKeys().length) throw new Error(`merge: adapter ${dirs[i]} changes base tensors (PiSSA residual, bias or modules_to_save); merge it alone`);
    for (const site of set.targets) {
      const base = model.weights.get(site.weightKey)!;
      const dW = set.deltaFor(site, base.data);
      const cur = out.get(site.weightKey)!;
      const merged = Float32Array.from(cur.data);
      const m = site.outFeatures, n = site.inFeatures;
      for (let a = 0; a < m; a++) for (let b = 0; b < n; b++) {
        const v = w[i] * dW[a * n + b];
        if (!Number.isFinite(v)) throw new Error(`Refusing to merge: ΔW of '${site.name}' in ${dirs[i]} contains NaN/inf`);
        merged[site.layout === 'out_in' ? a * n + b : b * m + a] += v;
      }
      out.set(site.weightKey, { shape: cur.shape, data: merged });
    }
  });
  return out;
}

/** Writes a merged model folder: model.safetensors (the model's own tensor names) + config.json. */
export function saveMergedModel(dir: string, weights: WeightMap, info: { base: string; adapters: string[]; weights?: number[] }): void {
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, MERGED_WEIGHTS), new Map([...weights].map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }])), { format: 'pt' });
  const cfg = { lorakit: { base_model: info.base, merged_adapters: info.adapters, adapter_weights: info.weights ?? null } };
  fs.writeFileSync(path.join(dir, MERGED_CONFIG), JSON.stringify(cfg, null, 2) + '\n');
}

/** Reads a folder written by saveMergedModel back onto its base architecture. */
export function loadMergedWeights(dir: string): { base: string; weights: WeightMap } {
  const cfgPath = path.join(dir, MERGED_CONFIG);
  if (!fs.existsSync(cfgPath)) throw new Error(`${dir}: no ${MERGED_CONFIG} (is it a folder written by 'lorakit merge'?)`);
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  const weights: WeightMap = new Map();
  for (const [k, t] of readSafetensors(path.join(dir, MERGED_WEIGHTS)).tensors) weights.set(k, { shape: t.shape, data: t.data as Float32Array });
  return { base: cfg.lorakit?.base_model ?? 'use', weights };
}

/** A trained classification head (nn.Linear layout: weight [C, H], bias [C]). */
export interface ExportHead { weight: Float32Array; bias: Float32Array; numLabels: number }

/**
 * Plain ONNX of the model (weights as initializers, no lorakit ops or inputs
 * beyond the two). With a head, the first output is `logits` [B, C] and the
 * pooled `embeddings` follow.
 */
export function exportOnnx(model: EncoderModel, file: string, opts: { outputName?: string; head?: ExportHead } = {}): { inputs: string[]; outputs: string[]; bytes: number } {
  const g = new Graph(`${model.name}-export`);
  const inputIds = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'sequence_length']);
  const out = model.build(g, { inputIds, attentionMask: op.cast(mask, 'float32') }, plainLinear);
  const name = opts.outputName ?? 'embeddings';
  const outputs: string[] = [];
  if (opts.head) {
    const { weight, bias, numLabels } = opts.head;
    const W = g.weight('classifier.weight', weight, [numLabels, model.hiddenSize]);
    const b = g.weight('classifier.bias', bias, [numLabels]);
    g.output('logits', op.gemm(out, W, { transB: true }, b));
    outputs.push('logits');
  }
  g.output(name, out);
  outputs.push(name);
  const bytes = toOnnxBytes(g);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, bytes);
  return { inputs: ['input_ids', 'attention_mask'], outputs, bytes: bytes.length };
}
