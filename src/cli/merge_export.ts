// `lorakit merge` and `lorakit export-onnx` (kept out of main.ts so the
// command file stays a list of commands).
import fs from 'node:fs';
import path from 'node:path';
import { loadUseEncoder, USE_MODEL_NAME } from '../models/use_encoder.ts';
import { loadEncoderModel } from '../models/hf_registry.ts';
import type { EncoderModel } from '../models/types.ts';
import { exportOnnx, ExportHead, loadMergedWeights, MERGED_CONFIG, MERGED_WEIGHTS, mergeAdapters, saveMergedModel } from '../peft/export.ts';
import { loadPeftAdapter } from '../peft/adapter_files.ts';
import { HEAD_B, HEAD_W } from '../train/classifier.ts';

interface Base { model: EncoderModel; name: string; hfDir?: string }

async function loadBase(spec: string): Promise<Base> {
  if (spec === 'use' || spec === 'default') return { model: await loadUseEncoder(), name: USE_MODEL_NAME };
  if (fs.existsSync(spec) && fs.statSync(spec).isDirectory()) {
    const cfg = JSON.parse(fs.readFileSync(path.join(spec, MERGED_CONFIG), 'utf8'));
    if (cfg.model_type) return { model: (await loadEncoderModel(spec)).model, name: spec, hfDir: spec };
    const { base, weights } = loadMergedWeights(spec);
    if (base !== USE_MODEL_NAME && base !== 'use') throw new Error(`--model ${spec}: base '${base}' is not supported`);
    return { model: (await loadUseEncoder()).withWeights(weights), name: USE_MODEL_NAME };
  }
  throw new Error(`--model '${spec}': use 'use' (bundled), a Hugging Face encoder folder, or a folder written by 'lorakit merge'`);
}

export interface MergeOptions { model: string; adapters: string[]; weights?: number[]; out: string }

export async function runMerge(o: MergeOptions): Promise<{ modules: number }> {
  const base = await loadBase(o.model);
  const merged = mergeAdapters(base.model, o.adapters, o.weights);
  let changed = 0;
  for (const [k, v] of merged) if (v.data !== base.model.weights.get(k)?.data) changed++;
  saveMergedModel(o.out, merged, { base: base.name, adapters: o.adapters, weights: o.weights });
  if (base.hfDir) {
    // A Hugging Face folder stays one: its config, tokenizer and other files are copied; weights become model.safetensors.
    for (const f of fs.readdirSync(base.hfDir)) {
      if (f.endsWith('.safetensors') || f.endsWith('.bin') || f.endsWith('.index.json') || fs.statSync(path.join(base.hfDir, f)).isDirectory()) continue;
      fs.copyFileSync(path.join(base.hfDir, f), path.join(o.out, f));
    }
    if (!fs.existsSync(path.join(o.out, MERGED_WEIGHTS))) throw new Error(`merge: ${MERGED_WEIGHTS} was not written`);
  }
  return { modules: changed };
}

export async function runExportOnnx(o: MergeOptions) {
  let { model } = await loadBase(o.model);
  // One adapter trained by `lorakit train` carries its classification head (modules_to_save 'classifier'): export it as `logits`.
  const head = o.adapters.length === 1 ? headOf(loadPeftAdapter(model, o.adapters[0], { warn: () => {} }).extraTensors) : undefined;
  if (o.adapters.length) model = model.withWeights(mergeAdapters(model, o.adapters, o.weights));
  return exportOnnx(model, o.out, { outputName: 'embeddings', head });
}

function headOf(extra: Map<string, { shape: number[]; data: Float32Array }>): ExportHead | undefined {
  const w = extra.get(HEAD_W), b = extra.get(HEAD_B);
  return w && b ? { weight: w.data, bias: b.data, numLabels: w.shape[0] } : undefined;
}
