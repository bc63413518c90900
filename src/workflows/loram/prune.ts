// `lorakit loram prune`: structured pruning of a Llama-family model (Llama,
// Qwen2, Mistral) for LoRAM's "train small, infer large". Per pruned layer,
// the least important FFN neurons and KV-head groups are removed (importance:
// src/workflows/loram/importance.ts; LLM-Pruner's Taylor importance on a
// calibration set, its magnitude importance, or a seeded random choice as
// LoRAM's randomly structured variant), and the smaller weights are written
// as a model folder that every lorakit command loads:
//
//   <out>/config.json         the pruned widths (a plain Hugging Face config when
//                             every layer is pruned alike; per-layer widths in
//                             `lorakit_layers` otherwise), head_dim explicit
//   <out>/model.safetensors   the pruned weights (float32)
//   <out>/loram.json          the plan: the original model, its widths, the
//                             removed neurons and heads (what recovery reads)
//   tokenizer and other files copied from the original
//
// The pruning itself is the official code's (LoRAM's
// modeling_llama3_70b_structured_pruning.py: LlamaMLP.prune keeps the rows of
// gate/up and the columns of down at the kept neurons; the attention prune
// keeps the k/v rows of the kept KV heads and the q rows / o columns of their
// query heads); biases of the pruned rows (Qwen2's q/k/v, mlp_bias) go with them.

import fs from 'node:fs';
import path from 'node:path';
import { readCausalLmJsonl } from '../../data/records.ts';
import { writeFileAtomic } from '../../io/atomic.ts';
import { loadHfFolder } from '../../io/hf.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { createLlama, LLAMA_FAMILY, llamaConfigFromHf, type LlamaConfig } from '../../models/llama.ts';
import type { WeightMap } from '../../models/types.ts';
import { Trainer } from '../../train/loop.ts';
import { CausalLmTask, encodeCausalLm, type CausalLmExample } from '../../train/tasks/causal_lm.ts';
import { Rng } from '../../util/rng.ts';
import { silentUi, type JobUi } from '../../tasks/train.ts';
import { layerImportance, PROJECTIONS, type LayerImportance, type Projection } from './importance.ts';
import { keptLayer, lowest, PLAN_FORMAT, prunedCount, writePlan, type Importance, type LayerPlan, type LoramPlan, type LoramShape } from './plan.ts';

/** The widths LoRAM's plan needs from a Llama config (refusing a model already pruned unevenly). */
export function loramShape(c: LlamaConfig, where: string): LoramShape {
  if (c.layerShapes) throw new Error(`${where}: this model is already pruned with per-layer widths (lorakit_layers); prune the original model`);
  return { numLayers: c.numLayers, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim };
}

/** Group importances of the listed layers, from the weights and (taylor) their loss gradients. */
export function importances(
  shape: LoramShape,
  weights: WeightMap,
  kind: 'taylor' | 'magnitude',
  layers: number[],
  grads?: Map<string, Float64Array>,
): Map<number, LayerImportance> {
  const out = new Map<number, LayerImportance>();
  for (const i of layers) {
    const key = (p: Projection) => `model.layers.${i}.${p}`;
    out.set(i, layerImportance(shape, kind, (p) => weights.get(`${key(p)}.weight`)!.data, grads ? (p) => grads.get(key(p))! : undefined));
  }
  return out;
}

export interface PlanOptions {
  importance: Importance;
  ffnRatio: number;
  attnRatio: number;
  layers: number[];
  seed: number;
}

/** The removed groups per layer: the lowest importances, or a seeded random choice. */
export function planLayers(shape: LoramShape, o: PlanOptions, imp?: Map<number, LayerImportance>): LayerPlan[] {
  const nf = prunedCount(shape.intermediateSize, o.ffnRatio), nh = prunedCount(shape.numKvHeads, o.attnRatio);
  return o.layers.map((layer) => {
    if (o.importance === 'random') {
      const rng = new Rng(o.seed).fork(`loram-layer-${layer}`);
      return { layer, ffn_pruned: rng.fork('ffn').permutation(shape.intermediateSize).slice(0, nf).sort((a, b) => a - b), kv_heads_pruned: rng.fork('heads').permutation(shape.numKvHeads).slice(0, nh).sort((a, b) => a - b) };
    }
    const li = imp?.get(layer);
    if (!li) throw new Error(`loram: no importance for layer ${layer}`);
    return { layer, ffn_pruned: lowest(li.ffn, nf), kv_heads_pruned: lowest(li.heads, nh) };
  });
}

function pickRows(t: { shape: number[]; data: Float32Array }, rows: number[]): { shape: number[]; data: Float32Array } {
  const cols = t.shape.length === 2 ? t.shape[1] : 1;
  const out = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => out.set(t.data.subarray(r * cols, (r + 1) * cols), i * cols));
  return { shape: t.shape.length === 2 ? [rows.length, cols] : [rows.length], data: out };
}

function pickCols(t: { shape: number[]; data: Float32Array }, cols: number[]): { shape: number[]; data: Float32Array } {
  const [m, n] = t.shape;
  const out = new Float32Array(m * cols.length);
  for (let i = 0; i < m; i++) cols.forEach((c, j) => (out[i * cols.length + j] = t.data[i * n + c]));
  return { shape: [m, cols.length], data: out };
}

/** The pruned weights: a new map (untouched tensors shared with `weights`). */
export function pruneWeights(weights: WeightMap, plan: Pick<LoramPlan, 'original' | 'layers'>): WeightMap {
  const out: WeightMap = new Map(weights);
  const get = (k: string) => {
    const t = weights.get(k);
    if (!t) throw new Error(`loram prune: the model has no '${k}'`);
    return t;
  };
  for (const lp of plan.layers) {
    const p = `model.layers.${lp.layer}`;
    const k = keptLayer(plan, lp);
    const rows: [string, number[]][] = [['mlp.gate_proj', k.ffn], ['mlp.up_proj', k.ffn], ['self_attn.q_proj', k.qFeatures], ['self_attn.k_proj', k.kvFeatures], ['self_attn.v_proj', k.kvFeatures]];
    for (const [m, keep] of rows) {
      out.set(`${p}.${m}.weight`, pickRows(get(`${p}.${m}.weight`), keep));
      if (weights.has(`${p}.${m}.bias`)) out.set(`${p}.${m}.bias`, pickRows(get(`${p}.${m}.bias`), keep));
    }
    out.set(`${p}.mlp.down_proj.weight`, pickCols(get(`${p}.mlp.down_proj.weight`), k.ffn));
    out.set(`${p}.self_attn.o_proj.weight`, pickCols(get(`${p}.self_attn.o_proj.weight`), k.qFeatures));
  }
  return out;
}

/** config.json of the pruned model: one width for all layers where they agree, else `lorakit_layers`. */
export function prunedConfig(config: Record<string, any>, plan: Pick<LoramPlan, 'original' | 'layers'>): Record<string, any> {
  const s = plan.original.shape;
  const g = s.numHeads / s.numKvHeads;
  const byLayer = new Map(plan.layers.map((l) => [l.layer, l]));
  const shapes = Array.from({ length: s.numLayers }, (_, i) => {
    const lp = byLayer.get(i);
    const kv = s.numKvHeads - (lp?.kv_heads_pruned.length ?? 0);
    return { intermediate_size: s.intermediateSize - (lp?.ffn_pruned.length ?? 0), num_attention_heads: kv * g, num_key_value_heads: kv };
  });
  const uniform = shapes.every((x) => JSON.stringify(x) === JSON.stringify(shapes[0]));
  const out: Record<string, any> = { ...config, head_dim: s.headDim };
  delete out.lorakit_layers;
  if (uniform) Object.assign(out, shapes[0]);
  else out.lorakit_layers = shapes;
  if ('torch_dtype' in out || 'dtype' in out) out['dtype' in out ? 'dtype' : 'torch_dtype'] = 'float32';
  return out;
}

export interface LoramPruneOptions {
  /** The original Hugging Face folder (Llama, Qwen2, Mistral). */
  model: string;
  out: string;
  /** Fraction of the FFN neurons removed in each pruned layer (default 0.5). */
  ffnRatio?: number;
  /** Fraction of the KV-head groups removed in each pruned layer (default 0.5). */
  attnRatio?: number;
  /** Layers to prune (default: all). */
  layers?: number[];
  importance: Importance;
  /** Calibration data for 'taylor' (causal-LM JSONL: {"text"} / {"prompt","completion"} / {"messages"}). */
  data?: string;
  /** Or calibration token ids directly (library use). */
  examples?: CausalLmExample[];
  /** Calibration examples (default 10, LLM-Pruner's). */
  calibrationSize?: number;
  /** Tokens per calibration example (default 64, LLM-Pruner's). */
  maxLen?: number;
  seed?: number;
  threads?: number;
}

export interface LoramPruneResult {
  plan: LoramPlan;
  out: string;
  parameters: { original: number; pruned: number };
}

function paramCount(w: WeightMap): number {
  let n = 0;
  for (const t of w.values()) n += t.data.length;
  return n;
}

export async function runLoramPrune(o: LoramPruneOptions, ui: JobUi = silentUi): Promise<LoramPruneResult> {
  const folder = await loadHfFolder(o.model, { supportedModelTypes: LLAMA_FAMILY });
  const c = llamaConfigFromHf(folder.config);
  const shape = loramShape(c, path.join(o.model, 'config.json'));
  if (path.resolve(o.out) === path.resolve(o.model)) throw new Error(`loram prune: --out ${o.out} is the model folder itself; write the pruned model to a new folder`);
  const layers = o.layers ?? Array.from({ length: shape.numLayers }, (_, i) => i);
  for (const l of layers) if (!(Number.isInteger(l) && l >= 0 && l < shape.numLayers)) throw new Error(`loram prune: layer ${l} does not exist (the model has ${shape.numLayers} layers, 0..${shape.numLayers - 1})`);
  const seed = o.seed ?? 0;
  const po: PlanOptions = { importance: o.importance, ffnRatio: o.ffnRatio ?? 0.5, attnRatio: o.attnRatio ?? 0.5, layers: [...new Set(layers)].sort((a, b) => a - b), seed };
  if (o.data && o.examples) throw new Error('loram prune: give calibration data as a file (data) or as token ids (examples), not both');
  if (o.importance === 'taylor' && !o.data && !o.examples) throw new Error("loram prune: --importance taylor (LLM-Pruner's first-order Taylor importance) needs calibration text: --data <file.jsonl>; or use --importance magnitude or random");
  if (o.importance !== 'taylor' && (o.data || o.examples)) throw new Error(`loram prune: --data is calibration text for --importance taylor; ${o.importance} importance does not read data`);
  let calibration: Record<string, unknown> | undefined;
  let imp: Map<number, LayerImportance> | undefined;
  if (o.importance === 'taylor') {
    const maxLen = o.maxLen ?? 64, n = o.calibrationSize ?? 10;
    let all: CausalLmExample[];
    if (o.data) {
      if (!folder.tokenizer) throw new Error(`${path.join(o.model, 'tokenizer.json')}: not found; the calibration text is encoded with the model's own tokenizer`);
      all = encodeCausalLm(readCausalLmJsonl(o.data), folder.tokenizer, maxLen);
    } else all = o.examples!.map((e) => ({ ids: e.ids.slice(0, maxLen) })).filter((e) => e.ids.length >= 2);
    if (!all.length) throw new Error(`${o.data ?? 'calibration examples'}: no calibration example with at least 2 tokens`);
    // Every token is a label (LLM-Pruner: labels = inputs).
    const pick = new Rng(seed).fork('loram-calibration').permutation(all.length).slice(0, n).map((i) => ({ ids: all[i].ids }));
    ui.info(`calibration: ${pick.length} examples${o.data ? ` of ${o.data}` : ''} (at most ${maxLen} tokens each)`);
    const model = createLlama(c, folder.weights);
    const task = new CausalLmTask(model, { padId: folder.tokenizer?.padTokenId ?? folder.tokenizer?.eosTokenId ?? 0 });
    const trainer = new Trainer(task, null, { epochs: 1, lr: 1, batchSize: pick.length, seed, threads: o.threads });
    const sites = model.sites.filter((s) => po.layers.some((l) => PROJECTIONS.some((p) => s.name === `model.layers.${l}.${p}`)));
    ui.startPhase('loss gradients', 1);
    const grads = await trainer.weightGradients(pick, sites, { batches: 1, batchSize: pick.length });
    ui.advance?.(1);
    ui.endPhase();
    await trainer.release();
    imp = importances(shape, folder.weights, 'taylor', po.layers, grads);
    calibration = { data: o.data ? path.resolve(o.data) : null, examples: pick.length, max_length: maxLen, tokens: pick.reduce((s, e) => s + e.ids.length, 0) };
  } else if (o.importance === 'magnitude') imp = importances(shape, folder.weights, 'magnitude', po.layers);
  const plan: LoramPlan = {
    format: PLAN_FORMAT, original: { model: path.resolve(o.model), shape }, importance: o.importance,
    ffnRatio: po.ffnRatio, attnRatio: po.attnRatio, seed, layers: planLayers(shape, po, imp), ...(calibration && { calibration }),
  };
  const pruned = pruneWeights(folder.weights, plan);
  const config = prunedConfig(folder.config, plan);
  // Checked before anything is written: the config and the weights build a model.
  const check = llamaConfigFromHf(config);
  for (const s of createLlama(check, pruned).sites) {
    const w = pruned.get(s.weightKey);
    if (s.kind !== 'embedding' && (!w || w.data.length !== s.inFeatures * s.outFeatures)) throw new Error(`loram prune: internal error: '${s.weightKey}' does not fit the pruned config`);
  }
  fs.mkdirSync(o.out, { recursive: true });
  fs.rmSync(path.join(o.out, 'loram.json'), { force: true }); // written last: a folder without it is not a finished prune
  writeSafetensors(path.join(o.out, 'model.safetensors'), new Map([...pruned].map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }])), { format: 'pt', lorakit: JSON.stringify({ loram: 'pruned', original: plan.original.model }) });
  for (const f of fs.readdirSync(o.model)) {
    const src = path.join(o.model, f);
    if (/\.(safetensors|bin|pt|pth|h5|msgpack|ckpt)$/.test(f) || f.endsWith('.index.json') || f === 'config.json' || f === 'loram.json' || fs.statSync(src).isDirectory()) continue;
    fs.copyFileSync(src, path.join(o.out, f));
  }
  writeFileAtomic(path.join(o.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writePlan(o.out, plan);
  const parameters = { original: paramCount(folder.weights), pruned: paramCount(pruned) };
  ui.info(`pruned ${plan.layers.length} of ${shape.numLayers} layers (${o.importance} importance): ${parameters.original.toLocaleString('en-US')} → ${parameters.pruned.toLocaleString('en-US')} parameters (${(100 * parameters.pruned / parameters.original).toFixed(1)}%)`);
  return { plan, out: o.out, parameters };
}
