// Merging adapters into the base weights (`lorakit merge`) and exporting a
// plain ONNX model (`lorakit export-onnx`) that onnxruntime / transformers.js
// load without lorakit: inputs `input_ids` and `attention_mask` (int64, as
// Hugging Face tokenizers give them), one output:
//   decoder LM (GPT-2, Llama, Qwen2, Mistral)   logits [B, T, V]
//   encoder with a classification head          logits [B, C]
//   BERT-family encoder                         last_hidden_state [B, T, H]
//   sentence encoder (USE)                      embeddings [B, H] (pooled)
// An encoder-decoder (T5, BART) exports as transformers.js / optimum lay it
// out (exportSeq2SeqOnnx): onnx/encoder_model.onnx (input_ids, attention_mask
// → last_hidden_state), onnx/decoder_model.onnx (input_ids, encoder_hidden_states,
// encoder_attention_mask → logits) and onnx/decoder_model_merged.onnx (the
// same plus the self-attention cache past_key_values.<i>.decoder.key/value →
// present.<i>.decoder.key/value, which transformers.js's generate needs).
// A merged Hugging Face folder keeps the source folder's tensor names (GPT-2's
// un-prefixed Conv1D names included), config and tokenizer files, so
// transformers and lorakit load it as they load the original.

import fs from 'node:fs';
import path from 'node:path';
import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { hfWeightFiles, type HfFolder } from '../io/hf.ts';
import { readSafetensors, writeSafetensors, type TensorInput } from '../io/safetensors.ts';
import type { BertModel } from '../models/bert.ts';
import type { DecoderModel } from '../models/decoder.ts';
import type { Seq2SeqModel } from '../models/seq2seq.ts';
import type { EncoderModel, LinearFn, LinearSite, WeightMap } from '../models/types.ts';
import { float32Of } from '../quant/quantized_weights.ts';
import { toOnnxBytes } from '../onnx/emit.ts';
import { loadPeftAdapter, PeftAdapter } from './adapter_files.ts';
import { modelKind, seq2seqLogits } from '../models/forward.ts';
import { plainLinear } from '../models/linear.ts';
import { tiedMergeError, tiedTargets } from './tied.ts';

export const MERGED_WEIGHTS = 'model.safetensors';
export const MERGED_CONFIG = 'config.json';

/** What merging needs of a model: every lorakit family (encoder, decoder, seq2seq) has these. */
export interface MergeTarget {
  sites: LinearSite[];
  weights: WeightMap;
  /** Output-head sites ('all-linear' leaves them out). */
  headNames?: string[];
}

export type AnyModel = EncoderModel | DecoderModel | Seq2SeqModel;

function refuseTiedTargets(model: MergeTarget, a: PeftAdapter) {
  const tied = tiedTargets(model, a.set);
  if (tied.length) throw new Error(tiedMergeError(`merge: adapter ${a.dir}`, tied));
}

/**
 * The base weights with adapters merged: one adapter → its own merge (bias,
 * modules_to_save copies and saved copies of non-linear modules included);
 * several → W0 + Σ wᵢ·ΔWᵢ (each ΔW taken against W0; default weights 1).
 */
export function mergeAdapters(model: MergeTarget, dirs: string[], weights?: number[], warn: (m: string) => void = (m) => console.warn(m)): WeightMap {
  if (dirs.length === 0) throw new Error('merge: give at least one --adapter');
  const w = weights ?? dirs.map(() => 1);
  if (w.length !== dirs.length) throw new Error(`merge: ${dirs.length} adapters but ${w.length} weights (--weights 0.7,0.3 gives one per --adapter)`);
  // The loader's "not applied" warning is about unmerged use: merge applies those tensors below.
  const loaded = dirs.map((d) => loadPeftAdapter(model, d, { warn: (m) => (m.includes('is not applied by the adapter') ? undefined : warn(m)), headNames: model.headNames }));
  loaded.forEach((a) => refuseTiedTargets(model, a));
  const savedModules = (a: PeftAdapter) => [...a.extraTensors].filter(([k]) => model.weights.has(k));
  if (loaded.length === 1 && w[0] === 1) {
    const out = loaded[0].set.mergeInto(model.weights);
    // PEFT merge_and_unload keeps the trained copy of a modules_to_save module (shapes checked by the loader).
    for (const [k, t] of savedModules(loaded[0])) {
      for (const v of t.data) if (!Number.isFinite(v)) throw new Error(`Refusing to merge: saved module tensor '${k}' in ${dirs[0]} contains NaN/inf`);
      out.set(k, { shape: t.shape, data: t.data });
    }
    return out;
  }
  const out: WeightMap = new Map(model.weights);
  loaded.forEach(({ set }, i) => {
    if (set.baseOverrides.size || set.baseCopyKeys().length || savedModules(loaded[i]).length) {
      throw new Error(`merge: adapter ${dirs[i]} changes base tensors (PiSSA residual, bias or modules_to_save); merge it alone`);
    }
    for (const site of set.targets) {
      const base = model.weights.get(site.weightKey)!;
      const dW = set.deltaFor(site, float32Of(base.data));
      const cur = out.get(site.weightKey)!;
      const merged = Float32Array.from(float32Of(cur.data));
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
  writeSafetensors(path.join(dir, MERGED_WEIGHTS), new Map([...weights].map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: float32Of(v.data) }])), { format: 'pt' });
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

/**
 * Writes a merged Hugging Face folder: model.safetensors under the source
 * folder's own tensor names (float tensors as float32, integer buffers as
 * they were), config.json (torch_dtype float32) and every other non-weight
 * file (tokenizer, generation config) copied.
 *
 * `folder` must be the HfFolder `model` was built from: a tensor's name in the
 * file is found through its data (loaders rename, e.g. GPT-2's `transformer.`
 * prefix, but do not copy).
 */
export function saveMergedHfFolder(out: string, folder: HfFolder, model: MergeTarget, merged: WeightMap, info: { adapters: string[]; weights?: number[] }): { changed: number } {
  if (path.resolve(out) === path.resolve(folder.dir)) throw new Error(`merge: --out ${out} is the model folder itself; write the merged model to a new folder`);
  const modelKeyOf = new Map<Float32Array, string>();
  for (const [k, v] of model.weights) modelKeyOf.set(v.data, k);
  const tensors = new Map<string, TensorInput>();
  const written = new Set<string>();
  for (const [name, t] of folder.weights) {
    const key = modelKeyOf.get(t.data) ?? (model.weights.has(name) ? name : undefined);
    const v = key !== undefined ? merged.get(key)! : t;
    if (key !== undefined) written.add(key);
    tensors.set(name, { dtype: 'F32', shape: v.shape, data: float32Of(v.data) }); // a quantized base: its dequantized weight (as PEFT's merge of a 4-bit model)
  }
  let changed = 0;
  for (const [k, v] of merged) {
    if (v.data === model.weights.get(k)?.data) continue;
    changed++;
    if (!written.has(k)) throw new Error(`merge: merged tensor '${k}' has no name in ${folder.dir}'s safetensors (the loader derived it); cannot write it back`);
  }
  // Integer buffers (position_ids…) are not weights to the loader: copied as they are.
  for (const f of hfWeightFiles(folder.dir)) {
    for (const [name, t] of readSafetensors(f, { upcast: false }).tensors) {
      if (!tensors.has(name) && !['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) tensors.set(name, { dtype: t.dtype, shape: t.shape, data: t.data });
    }
  }
  fs.mkdirSync(out, { recursive: true });
  const provenance = JSON.stringify({ merged_adapters: info.adapters, adapter_weights: info.weights ?? null });
  writeSafetensors(path.join(out, MERGED_WEIGHTS), tensors, { format: 'pt', lorakit: provenance });
  for (const f of fs.readdirSync(folder.dir)) {
    const src = path.join(folder.dir, f);
    if (/\.(safetensors|bin|pt|pth|h5|msgpack|ckpt)$/.test(f) || f.endsWith('.index.json') || fs.statSync(src).isDirectory()) continue;
    fs.copyFileSync(src, path.join(out, f));
  }
  const config = { ...folder.config };
  if ('torch_dtype' in config || 'dtype' in config) config[('dtype' in config ? 'dtype' : 'torch_dtype')] = 'float32';
  fs.writeFileSync(path.join(out, MERGED_CONFIG), JSON.stringify(config, null, 2) + '\n');
  return { changed };
}

/** A trained classification head (nn.Linear layout: weight [C, H], bias [C]). */
export interface ExportHead { weight: Float32Array; bias: Float32Array; numLabels: number }

export type ExportOutput = 'logits' | 'last_hidden_state' | 'embeddings';

function isBert(m: EncoderModel): m is BertModel {
  return typeof (m as Partial<BertModel>).encode === 'function' && Array.isArray((m as Partial<BertModel>).headSites);
}

/** What export writes by default: LM logits for a decoder; logits where there is a head; a BERT's token states; USE's embedding. */
export function defaultExportOutput(model: AnyModel, head?: ExportHead): ExportOutput {
  if (modelKind(model) !== 'encoder' || head) return 'logits';
  const m = model as EncoderModel;
  if (!isBert(m)) return 'embeddings';
  return m.headSites.length ? 'logits' : 'last_hidden_state';
}

/**
 * The export graph (inputs int64 `input_ids` / `attention_mask`) with a given
 * LinearFn: plainLinear for export, an AdapterSet's for the unmerged check.
 * With a lorakit head the first output is `logits` [B, C] and the pooled
 * `embeddings` follow (USE's layout since the first export).
 */
export function buildExportGraph(model: AnyModel, linear: LinearFn, opts: { output?: ExportOutput; head?: ExportHead } = {}): { graph: Graph; outputs: string[] } {
  const kind = modelKind(model);
  const output = opts.output ?? defaultExportOutput(model, opts.head);
  const g = new Graph(`${model.name}-export`);
  const inputIds = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'sequence_length']);
  const attentionMask = op.cast(mask, 'float32');
  const outputs: string[] = [];
  const emit = (name: string, v: Value) => {
    g.output(name, v);
    outputs.push(name);
  };
  if (kind === 'seq2seq') {
    // Teacher-forced logits in one graph (the unmerged check); exportOnnx writes the encoder/decoder pair.
    if (output !== 'logits') throw new Error(`export-onnx: an encoder-decoder (${model.name}) exports an encoder (last_hidden_state) and a decoder (logits); --output ${output} does not apply`);
    const decoderInputIds = g.input('decoder_input_ids', 'int64', ['batch_size', 'decoder_sequence_length']);
    emit('logits', seq2seqLogits(model as Seq2SeqModel, g, inputIds, attentionMask, decoderInputIds, linear));
    return { graph: g, outputs };
  }
  if (kind === 'decoder') {
    if (output !== 'logits') throw new Error(`export-onnx: a decoder LM (${model.name}) exports 'logits' [B, T, vocab]; --output ${output} is for encoders`);
    emit('logits', (model as DecoderModel).build(g, { inputIds, attentionMask }, linear).logits);
    return { graph: g, outputs };
  }
  const enc = model as EncoderModel;
  if (opts.head) {
    const { weight, bias, numLabels } = opts.head;
    const pooled = enc.build(g, { inputIds, attentionMask }, linear);
    const W = g.weight('classifier.weight', weight, [numLabels, enc.hiddenSize]);
    const b = g.weight('classifier.bias', bias, [numLabels]);
    emit('logits', op.gemm(pooled, W, { transB: true }, b));
    if (output === 'logits' || output === 'embeddings') emit('embeddings', pooled);
    else emit(output, lastHiddenState(enc, g, inputIds, attentionMask, linear));
    return { graph: g, outputs };
  }
  if (output === 'embeddings') emit('embeddings', enc.build(g, { inputIds, attentionMask }, linear));
  else if (output === 'last_hidden_state') emit('last_hidden_state', lastHiddenState(enc, g, inputIds, attentionMask, linear));
  else {
    if (!isBert(enc) || !enc.headSites.length) throw new Error(`export-onnx: --output logits needs a classification head: ${enc.name} has none (give an adapter trained with 'lorakit train', or use --output ${isBert(enc) ? 'last_hidden_state' : 'embeddings'})`);
    emit('logits', enc.buildLogits(g, { inputIds, attentionMask }, linear));
  }
  return { graph: g, outputs };
}

function lastHiddenState(enc: EncoderModel, g: Graph, inputIds: Value, attentionMask: Value, linear: LinearFn): Value {
  if (!isBert(enc)) throw new Error(`export-onnx: --output last_hidden_state needs a token-level encoder (BERT, RoBERTa, DistilBERT); ${enc.name} gives a pooled sentence embedding only (--output embeddings)`);
  const { hidden, bt } = enc.encode(g, { inputIds, attentionMask }, linear);
  const shape = op.concat([bt, g.ints([enc.hiddenSize])], 0);
  return op.reshapeTo(hidden, shape, [inputIds.shape[0], inputIds.shape[1], enc.hiddenSize]);
}

/**
 * Plain ONNX of the model (weights as initializers, no lorakit ops or inputs
 * beyond the two). `file` ending in .onnx is written as is; any other path is
 * a folder in transformers.js's layout: onnx/model.onnx beside the config and
 * tokenizer files of `copyFrom` (the Hugging Face folder the model came from).
 */
export interface ExportResult {
  inputs: string[];
  outputs: string[];
  bytes: number;
  file: string;
  /** Encoder-decoder: each file written (encoder, decoder, merged decoder). */
  parts?: { file: string; inputs: string[]; outputs: string[]; bytes: number }[];
}

export function exportOnnx(model: AnyModel, file: string, opts: { output?: ExportOutput; head?: ExportHead; copyFrom?: string } = {}): ExportResult {
  if (modelKind(model) === 'seq2seq') {
    if (opts.output && opts.output !== 'logits') throw new Error(`export-onnx: an encoder-decoder (${model.name}) exports an encoder (last_hidden_state) and a decoder (logits); --output ${opts.output} does not apply`);
    return exportSeq2SeqOnnx(model as Seq2SeqModel, file, opts.copyFrom);
  }
  const { graph, outputs } = buildExportGraph(model, plainLinear, opts);
  const bytes = toOnnxBytes(graph);
  let target = file;
  if (!file.endsWith('.onnx')) {
    target = path.join(file, 'onnx', 'model.onnx');
    copyModelFiles(file, opts.copyFrom);
  }
  fs.mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
  fs.writeFileSync(target, bytes);
  return { inputs: ['input_ids', 'attention_mask'], outputs, bytes: bytes.length, file: target };
}

/** The config and tokenizer files transformers.js reads beside onnx/. */
function copyModelFiles(dir: string, from?: string) {
  if (!from) return;
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  }
}

/**
 * The encoder-decoder graphs, named as optimum exports them (so transformers.js
 * feeds them): encoder input_ids / attention_mask (int64) → last_hidden_state
 * [B, S, H]; decoder input_ids [B, T] (decoder tokens), encoder_hidden_states
 * [B, S, H], encoder_attention_mask [B, S] (int64) → logits [B, T, V]. With
 * `past`, the decoder also reads past_key_values.<i>.decoder.key/value
 * [B, heads, P, headDim] (P may be 0: the first step) and returns
 * present.<i>.decoder.key/value [B, heads, P + T, headDim]; cross-attention
 * keys/values are recomputed from encoder_hidden_states at every step (no
 * encoder cache entries, which transformers.js then does not feed).
 */
export function buildSeq2SeqExportGraphs(model: Seq2SeqModel, linear: LinearFn): { encoder: Graph; decoder: Graph; decoderWithPast: Graph } {
  const c = model.config, H = c.hiddenSize;
  const encoder = new Graph(`${model.name}-encoder`);
  {
    const inputIds = encoder.input('input_ids', 'int64', ['batch_size', 'encoder_sequence_length']);
    const mask = encoder.input('attention_mask', 'int64', ['batch_size', 'encoder_sequence_length']);
    encoder.output('last_hidden_state', model.encode(encoder, { inputIds, attentionMask: op.cast(mask, 'float32') }, linear));
  }
  const decoderGraph = (past: boolean) => {
    const g = new Graph(`${model.name}-decoder${past ? '-with-past' : ''}`);
    const decoderInputIds = g.input('input_ids', 'int64', ['batch_size', 'decoder_sequence_length']);
    const hidden = g.input('encoder_hidden_states', 'float32', ['batch_size', 'encoder_sequence_length', H]);
    const mask = g.input('encoder_attention_mask', 'int64', ['batch_size', 'encoder_sequence_length']);
    const pastKv = past
      ? Array.from({ length: c.numDecoderLayers }, (_, i) => ({
        key: g.input(`past_key_values.${i}.decoder.key`, 'float32', ['batch_size', c.numHeads, 'past_decoder_sequence_length', c.headDim]),
        value: g.input(`past_key_values.${i}.decoder.value`, 'float32', ['batch_size', c.numHeads, 'past_decoder_sequence_length', c.headDim]),
      }))
      : undefined;
    const cross = model.crossKv(g, hidden, linear);
    const out = model.decode(g, { decoderInputIds, encoderAttentionMask: op.cast(mask, 'float32'), cross, past: pastKv }, linear);
    g.output('logits', out.logits);
    if (past) out.present.forEach((kv, i) => { g.output(`present.${i}.decoder.key`, kv.key); g.output(`present.${i}.decoder.value`, kv.value); });
    return g;
  };
  return { encoder, decoder: decoderGraph(false), decoderWithPast: decoderGraph(true) };
}

/** Writes onnx/encoder_model.onnx, onnx/decoder_model.onnx and onnx/decoder_model_merged.onnx under `dir` (+ config/tokenizer files of `copyFrom`). */
export function exportSeq2SeqOnnx(model: Seq2SeqModel, dir: string, copyFrom?: string): ExportResult {
  if (dir.endsWith('.onnx')) throw new Error(`export-onnx: ${model.name} is an encoder-decoder (T5/BART) model, exported as an encoder and a decoder file: give --out a folder (it gets onnx/encoder_model.onnx and onnx/decoder_model.onnx), not ${dir}`);
  const gs = buildSeq2SeqExportGraphs(model, plainLinear);
  copyModelFiles(dir, copyFrom);
  fs.mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  const parts = ([['encoder_model', gs.encoder], ['decoder_model', gs.decoder], ['decoder_model_merged', gs.decoderWithPast]] as const).map(([name, g]) => {
    const bytes = toOnnxBytes(g);
    const file = path.join(dir, 'onnx', `${name}.onnx`);
    fs.writeFileSync(file, bytes);
    return { file, inputs: g.leaves.filter((v) => v.leaf!.kind === 'input').map((v) => v.leaf!.name), outputs: g.outputs.map((o) => o.name), bytes: bytes.length };
  });
  return { inputs: parts[0].inputs, outputs: parts[0].outputs, bytes: parts.reduce((a, p) => a + p.bytes, 0), file: dir, parts };
}
