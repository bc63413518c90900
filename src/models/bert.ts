// BERT, RoBERTa and DistilBERT encoders (post-LN transformers) built from a
// Hugging Face folder's weights under Hugging Face's own names, so that the
// module paths adapters target are PEFT's, as PEFT sees them inside the model
// with its task head:
//
//   BertForSequenceClassification        bert.encoder.layer.0.attention.self.query …, bert.pooler.dense, classifier
//   RobertaForSequenceClassification     roberta.encoder.layer.0.attention.self.query …, classifier.dense, classifier.out_proj
//   DistilBertForSequenceClassification  distilbert.transformer.layer.0.attention.q_lin …, pre_classifier, classifier
//
// Per layer (2-D activations [B·T, H]; 4-D only inside attention; weights in
// nn.Linear [out, in] layout, applied with Gemm transB):
//   x = LN(E_word[ids] + E_pos[pos] (+ E_type[token_type_ids]))
//   a = softmax(q·kᵀ/√d + (1 − mask)·(−1e9)) · v
//   x = LN(x + o(a));  x = LN(x + f2(act(f1(x))))
// RoBERTa positions count non-padding tokens from padding_idx + 1 (HF's
// create_position_ids_from_input_ids; here from the attention mask, which
// equals ids ≠ pad for right-padded batches and ignores the id used to pad).
//
// `build` returns a pooled [B, H] representation ('pooler': BERT's
// tanh(dense(h[CLS])); 'cls': h[CLS]; 'mean': mask-weighted mean), the
// EncoderModel contract the trainer puts its own `classifier` head on.
// `buildLogits` runs the folder's own sequence-classification head (also for
// cross-encoders: pairs encoded with token_type_ids).

import { Dim, Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { HfFolder } from '../io/hf.ts';
import type { EncoderModel, LinearFn, LinearSite, WeightMap } from './types.ts';
import { float32Of } from '../quant/quantized_weights.ts';
import { embedTokens, embeddingSite } from './embedding_site.ts';

export type BertFamily = 'bert' | 'roberta' | 'distilbert';
export type Pooling = 'pooler' | 'cls' | 'mean';

export interface BertConfig {
  family: BertFamily;
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
  vocab: number;
  maxPositions: number;
  /** 0 for DistilBERT (no token-type embeddings). */
  typeVocab: number;
  eps: number;
  padTokenId: number;
  act: string;
  numLabels: number;
}

export interface BertInputs {
  inputIds: Value;
  attentionMask: Value;
  /** int64 [B, T]; all 0 when absent (BERT sentence pairs use 1 for the second segment). */
  tokenTypeIds?: Value;
}

export interface BertOptions {
  pooling?: Pooling;
  /** Where the config came from, for error messages. */
  source?: string;
}

const PREFIX: Record<BertFamily, string> = { bert: 'bert', roberta: 'roberta', distilbert: 'distilbert' };
export const PEFT_PREFIX = 'base_model.model.';

export function bertConfigFromHf(c: any, source = 'config.json'): BertConfig {
  const family = c.model_type as BertFamily;
  if (!(family in PREFIX)) throw new Error(`${source}: model_type '${c.model_type}' is not one of ${Object.keys(PREFIX).join(', ')}`);
  const num = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${source}: '${key}' must be a number (got ${JSON.stringify(c[key])})`);
    return v;
  };
  const numLabels = c.num_labels ?? (c.id2label ? Object.keys(c.id2label).length : 2);
  let cfg: BertConfig;
  if (family === 'distilbert') {
    if (c.sinusoidal_pos_embds) throw new Error(`${source}: sinusoidal_pos_embds = true is not supported (learned positions only)`);
    cfg = {
      family, layers: num('n_layers'), hidden: num('dim'), heads: num('n_heads'), ffn: num('hidden_dim'), vocab: num('vocab_size'),
      maxPositions: num('max_position_embeddings'), typeVocab: 0, eps: 1e-12, padTokenId: num('pad_token_id', 0),
      act: c.activation ?? 'gelu', numLabels,
    };
  } else {
    if (c.position_embedding_type && c.position_embedding_type !== 'absolute') {
      throw new Error(`${source}: position_embedding_type '${c.position_embedding_type}' is not supported (absolute only)`);
    }
    cfg = {
      family, layers: num('num_hidden_layers'), hidden: num('hidden_size'), heads: num('num_attention_heads'), ffn: num('intermediate_size'),
      vocab: num('vocab_size'), maxPositions: num('max_position_embeddings'), typeVocab: num('type_vocab_size', 2),
      eps: num('layer_norm_eps', 1e-12), padTokenId: num('pad_token_id', family === 'roberta' ? 1 : 0), act: c.hidden_act ?? 'gelu', numLabels,
    };
  }
  if (cfg.hidden % cfg.heads !== 0) throw new Error(`${source}: hidden size ${cfg.hidden} is not a multiple of the ${cfg.heads} attention heads`);
  activation(cfg.act, source); // validate early
  return cfg;
}

function activation(name: string, source: string): (x: Value) => Value {
  switch (name) {
    case 'gelu':
      return op.gelu;
    case 'relu':
      return op.relu;
    case 'gelu_new':
    case 'gelu_fast':
    case 'gelu_pytorch_tanh':
      return (x) => {
        const inner = op.mul(op.add(x, op.mul(op.mul(op.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
        return op.mul(op.mul(x, 0.5), op.add(op.tanh(inner), 1));
      };
    case 'silu':
    case 'swish':
      return (x) => op.mul(x, op.sigmoid(x));
    default:
      throw new Error(`${source}: activation '${name}' is not supported (gelu, relu, gelu_new, gelu_pytorch_tanh, silu)`);
  }
}

/** Checkpoints of the bare encoder (BertModel.save_pretrained) have no 'bert.' prefix: add it so names are those of the model with a head. */
export function canonicalBertWeights(family: BertFamily, weights: WeightMap): WeightMap {
  const p = PREFIX[family];
  const bare = !weights.has(`${p}.embeddings.word_embeddings.weight`) && weights.has('embeddings.word_embeddings.weight');
  const out: WeightMap = new Map();
  for (const [k0, v] of weights) {
    let k = bare && /^(embeddings|encoder|pooler|transformer)\./.test(k0) ? `${p}.${k0}` : k0;
    // TF-era names (LayerNorm.gamma / beta)
    k = k.replace(/(LayerNorm|layer_norm)\.gamma$/, '$1.weight').replace(/(LayerNorm|layer_norm)\.beta$/, '$1.bias');
    out.set(k, v);
  }
  return out;
}

interface HeadLayer {
  site: LinearSite;
  /** Applied to the output: tanh (RoBERTa dense, BERT pooler), relu (DistilBERT pre_classifier) or none. */
  act?: 'tanh' | 'relu';
}

export class BertModel implements EncoderModel {
  readonly name: string;
  readonly sites: LinearSite[];
  /** Linear sites of the sequence-classification head (PEFT's modules_to_save), in order; empty when the folder has none. */
  readonly headSites: LinearSite[];
  /** BertForMaskedLM's head (cls.predictions.*) is in the folder: buildMlmLogits works. */
  readonly hasMlmHead: boolean;
  readonly hiddenSize: number;
  readonly pooling: Pooling;
  readonly prefix: string;
  private head: HeadLayer[];

  constructor(readonly config: BertConfig, weights: WeightMap, readonly options: BertOptions = {}) {
    const c = config;
    this.weights = canonicalBertWeights(c.family, weights);
    this.prefix = PREFIX[c.family];
    this.hiddenSize = c.hidden;
    this.name = `${c.family}-${c.layers}x${c.hidden}`;
    const src = options.source ?? c.family;
    const need = (key: string, shape: number[]) => {
      const w = this.weights.get(key);
      if (!w) throw new Error(`${src}: weight '${key}' is missing from the model's safetensors`);
      if (w.shape.join(',') !== shape.join(',')) throw new Error(`${src}: weight '${key}' has shape [${w.shape}], expected [${shape}] from config.json`);
    };
    const mk = (name: string, inF: number, outF: number, bias = true): LinearSite => {
      need(`${name}.weight`, [outF, inF]);
      if (bias) need(`${name}.bias`, [outF]);
      return { name, inFeatures: inF, outFeatures: outF, weightKey: `${name}.weight`, layout: 'out_in' };
    };
    const H = c.hidden, p = this.prefix;
    need(`${p}.embeddings.word_embeddings.weight`, [c.vocab, H]);
    need(`${p}.embeddings.position_embeddings.weight`, [c.maxPositions, H]);
    if (c.typeVocab > 0) need(`${p}.embeddings.token_type_embeddings.weight`, [c.typeVocab, H]);
    // HF's word_embeddings is nn.Embedding(vocab, H, padding_idx=pad_token_id): an adaptable site (PEFT lora.Embedding).
    this.sites = [embeddingSite(`${p}.embeddings.word_embeddings`, c.vocab, H, undefined, c.padTokenId)];
    for (let i = 0; i < c.layers; i++) {
      const l = this.layerNames(i);
      for (const n of [l.q, l.k, l.v, l.o]) this.sites.push(mk(n, H, H));
      this.sites.push(mk(l.f1, H, c.ffn), mk(l.f2, c.ffn, H));
      for (const n of [l.ln1, l.ln2]) {
        need(`${n}.weight`, [H]);
        need(`${n}.bias`, [H]);
      }
    }
    const has = (n: string) => this.weights.has(`${n}.weight`);
    const poolerName = `${p}.pooler.dense`;
    this.pooling = options.pooling ?? (c.family === 'bert' && has(poolerName) ? 'pooler' : 'cls');
    if (this.pooling === 'pooler') {
      if (c.family !== 'bert' || !has(poolerName)) throw new Error(`${src}: pooling 'pooler' needs BERT's '${poolerName}' weights (use 'cls' or 'mean')`);
      this.sites.push(mk(poolerName, H, H));
    }
    // The folder's classification head, where it has one.
    this.head = [];
    const C = c.numLabels;
    if (c.family === 'bert' && has('classifier') && has(poolerName)) {
      this.head = [{ site: mk(poolerName, H, H), act: 'tanh' }, { site: mk('classifier', H, C) }];
    } else if (c.family === 'roberta' && has('classifier.dense') && has('classifier.out_proj')) {
      this.head = [{ site: mk('classifier.dense', H, H), act: 'tanh' }, { site: mk('classifier.out_proj', H, C) }];
    } else if (c.family === 'distilbert' && has('pre_classifier') && has('classifier')) {
      this.head = [{ site: mk('pre_classifier', H, H), act: 'relu' }, { site: mk('classifier', H, C) }];
    }
    this.headSites = this.head.map((h) => h.site).filter((s) => s.name !== poolerName);
    this.hasMlmHead = c.family === 'bert' && MLM_KEYS.every((k) => this.weights.has(k));
    if (this.hasMlmHead) {
      need('cls.predictions.transform.dense.weight', [H, H]);
      need('cls.predictions.bias', [c.vocab]);
      if (this.weights.has('cls.predictions.decoder.weight')) need('cls.predictions.decoder.weight', [c.vocab, H]);
    }
  }

  readonly weights: WeightMap;

  static fromHf(folder: HfFolder, options: BertOptions = {}): BertModel {
    const source = options.source ?? `${folder.dir}/config.json`;
    return new BertModel(bertConfigFromHf(folder.config, source), folder.weights, { ...options, source });
  }

  withWeights(weights: WeightMap): BertModel {
    return new BertModel(this.config, weights, this.options);
  }

  /** Sentence pairs carry segment ids (BERT, not RoBERTa's single-row table nor DistilBERT). */
  get usesTokenTypes(): boolean {
    return this.config.typeVocab > 1;
  }

  /** Longest sequence the position table covers (RoBERTa's positions start at padding_idx + 1). */
  get maxSequenceLength(): number {
    return this.config.family === 'roberta' ? this.config.maxPositions - this.config.padTokenId - 1 : this.config.maxPositions;
  }

  /** The same weights pooled another way. */
  withPooling(pooling: Pooling): BertModel {
    return new BertModel(this.config, this.weights, { ...this.options, pooling });
  }

  private layerNames(i: number) {
    const p = this.prefix;
    if (this.config.family === 'distilbert') {
      const l = `${p}.transformer.layer.${i}`;
      return {
        q: `${l}.attention.q_lin`, k: `${l}.attention.k_lin`, v: `${l}.attention.v_lin`, o: `${l}.attention.out_lin`,
        ln1: `${l}.sa_layer_norm`, f1: `${l}.ffn.lin1`, f2: `${l}.ffn.lin2`, ln2: `${l}.output_layer_norm`,
      };
    }
    const l = `${p}.encoder.layer.${i}`;
    return {
      q: `${l}.attention.self.query`, k: `${l}.attention.self.key`, v: `${l}.attention.self.value`, o: `${l}.attention.output.dense`,
      ln1: `${l}.attention.output.LayerNorm`, f1: `${l}.intermediate.dense`, f2: `${l}.output.dense`, ln2: `${l}.output.LayerNorm`,
    };
  }

  /** A frozen weight as a graph leaf (shared when used twice), unless `linear.tensor` stands in for it. */
  private w(g: Graph, name: string, linear?: LinearFn): Value {
    const hit = g.leaf(name) ?? linear?.tensor?.(g, name);
    if (hit) return hit;
    const t = this.weights.get(name);
    if (!t) throw new Error(`${this.name}: weight '${name}' is missing`);
    return g.weight(name, t.data, t.shape);
  }

  /** Last hidden state as [B·T, H] (2-D), plus the runtime [B, T] shape. */
  encode(g: Graph, inputs: BertInputs, linear: LinearFn): { hidden: Value; bt: Value } {
    const c = this.config, p = this.prefix;
    const H = c.hidden, nh = c.heads, d = H / nh;
    const w = (n: string) => this.w(g, n, linear);
    const siteByName = new Map(this.sites.map((s) => [s.name, s]));
    const proj = (name: string, x2d: Value) => linear(siteByName.get(name)!, x2d, w(`${name}.weight`), w(`${name}.bias`));
    const ln = (x: Value, name: string) => op.layerNorm(x, w(`${name}.weight`), w(`${name}.bias`), { eps: c.eps });
    const act = activation(c.act, this.options.source ?? this.name);

    const ids = inputs.inputIds;
    const [B, T] = ids.shape;
    const bt = op.shapeOf(ids);
    const shape4 = op.concat([bt, g.ints([nh, d])], 0);
    const reshapeTo = op.reshapeTo;

    // Embeddings.
    const words = siteByName.get(`${p}.embeddings.word_embeddings`)!;
    let emb = embedTokens(linear, words, ids, w(words.weightKey)); // [B,T,H]
    const posTable = w(`${p}.embeddings.position_embeddings.weight`);
    if (c.family === 'roberta') {
      const m = op.cast(inputs.attentionMask, 'int64');
      const cum = op.cumSum(m, 1);
      const pos = op.add(op.mul(cum, m), g.scalar(c.padTokenId, 'int64'));
      emb = op.add(emb, op.gather(posTable, pos));
    } else {
      const lenT = op.slice(bt, [1], [2], [0]);
      const pos = op.sliceDynamic(posTable, g.ints([0]), lenT, [0], [T, H]);
      emb = op.add(emb, pos);
    }
    if (c.typeVocab > 0) {
      const table = w(`${p}.embeddings.token_type_embeddings.weight`);
      emb = op.add(emb, inputs.tokenTypeIds ? op.gather(table, inputs.tokenTypeIds) : op.slice(table, [0], [1], [0]));
    }
    let x = ln(op.reshape(emb, [-1, H]), `${p}.embeddings.LayerNorm`); // [B·T,H]

    const maskBias = op.unsqueeze(op.mul(op.sub(g.scalar(1), inputs.attentionMask), -1e9), [1, 2]); // [B,1,1,T]
    const heads = (t: Value, perm: number[]) => op.transpose(reshapeTo(t, shape4, [B, T, nh, d]), perm);
    for (let i = 0; i < c.layers; i++) {
      const l = this.layerNames(i);
      const q = heads(proj(l.q, x), [0, 2, 1, 3]);
      const kt = heads(proj(l.k, x), [0, 2, 3, 1]);
      const v = heads(proj(l.v, x), [0, 2, 1, 3]);
      const scores = op.add(op.mul(op.matmul(q, kt), 1 / Math.sqrt(d)), maskBias);
      const ctx = op.matmul(op.softmax(scores, -1), v);
      const ctx2d = op.reshape(op.transpose(ctx, [0, 2, 1, 3]), [-1, H]);
      x = ln(op.add(x, proj(l.o, ctx2d)), l.ln1);
      x = ln(op.add(x, proj(l.f2, act(proj(l.f1, x)))), l.ln2);
    }
    return { hidden: x, bt };
  }

  /** Rows 0, T, 2T, … of [B·T, H]: the first token of each sequence. */
  private firstToken(g: Graph, hidden: Value, bt: Value, B: Dim): Value {
    const tScalar = op.gather(bt, g.scalar(1, 'int64'), 0);
    const rows = op.range(0, op.reduceProdAll(bt), tScalar, B);
    return op.gather(hidden, rows, 0);
  }

  private meanPool(g: Graph, hidden: Value, bt: Value, mask: Value): Value {
    const [B, T] = mask.shape;
    const H = this.config.hidden;
    const shape3 = op.concat([bt, g.ints([H])], 0);
    const h3 = op.reshapeTo(hidden, shape3, [B, T, H]);
    const summed = op.reduceSum(op.mul(h3, op.unsqueeze(mask, [2])), [1], false); // [B,H]
    return op.div(summed, op.max2(op.reduceSum(mask, [1], true), 1e-9)); // / [B,1]
  }

  build(g: Graph, inputs: BertInputs, linear: LinearFn): Value {
    const { hidden, bt } = this.encode(g, inputs, linear);
    const B = inputs.inputIds.shape[0];
    if (this.pooling === 'mean') return this.meanPool(g, hidden, bt, inputs.attentionMask);
    const cls = this.firstToken(g, hidden, bt, B);
    if (this.pooling === 'cls') return cls;
    const name = `${this.prefix}.pooler.dense`;
    const site = this.sites.find((s) => s.name === name)!;
    return op.tanh(linear(site, cls, this.w(g, `${name}.weight`, linear), this.w(g, `${name}.bias`, linear)));
  }

  /**
   * Logits [B, numLabels] of the folder's sequence-classification head
   * (BertForSequenceClassification & co.). With `trainableHead` the head's
   * tensors are graph params named as PEFT saves modules_to_save
   * ('base_model.model.classifier.weight', …) instead of frozen weights.
   */
  buildLogits(g: Graph, inputs: BertInputs, linear: LinearFn, opts: { trainableHead?: boolean } = {}): Value {
    if (this.head.length === 0) {
      throw new Error(`${this.options.source ?? this.name}: the model has no sequence-classification head weights (${this.config.family === 'roberta' ? 'classifier.dense / classifier.out_proj' : this.config.family === 'distilbert' ? 'pre_classifier / classifier' : 'bert.pooler.dense / classifier'})`);
    }
    const { hidden, bt } = this.encode(g, inputs, linear);
    let x = this.firstToken(g, hidden, bt, inputs.inputIds.shape[0]);
    const tensor = (name: string): Value => {
      const isHead = this.headSites.some((s) => name.startsWith(`${s.name}.`));
      if (!opts.trainableHead || !isHead) return this.w(g, name, linear);
      const t = this.weights.get(name)!;
      return g.leaf(PEFT_PREFIX + name) ?? g.param(PEFT_PREFIX + name, t.shape, Float32Array.from(float32Of(t.data)));
    };
    for (const h of this.head) {
      x = linear(h.site, x, tensor(`${h.site.name}.weight`), tensor(`${h.site.name}.bias`));
      if (h.act === 'tanh') x = op.tanh(x);
      else if (h.act === 'relu') x = op.relu(x);
    }
    return x;
  }

  /**
   * Masked-LM logits [B·T, vocab] of BertForMaskedLM's head: LayerNorm(act(dense(h))) · Eᵀ + bias,
   * E = cls.predictions.decoder.weight, or the word embeddings it is tied to when the folder
   * stores it once (save_pretrained). The head is frozen (not adapter sites).
   */
  buildMlmLogits(g: Graph, inputs: BertInputs, linear: LinearFn): Value {
    if (!this.hasMlmHead) {
      throw new Error(`${this.options.source ?? this.name}: no masked-LM head (BertForMaskedLM's ${MLM_KEYS.join(', ')}); ${this.config.family === 'bert' ? 'save the model with its MLM head' : `the ${this.config.family} MLM head is not supported yet (BERT's is)`}`);
    }
    const { hidden } = this.encode(g, inputs, linear);
    const w = (n: string) => this.w(g, n);
    const act = activation(this.config.act, this.options.source ?? this.name);
    const t = op.gemm(hidden, w('cls.predictions.transform.dense.weight'), { transB: true }, w('cls.predictions.transform.dense.bias'));
    const x = op.layerNorm(act(t), w('cls.predictions.transform.LayerNorm.weight'), w('cls.predictions.transform.LayerNorm.bias'), { eps: this.config.eps });
    const E = this.weights.has('cls.predictions.decoder.weight') ? w('cls.predictions.decoder.weight') : w(`${this.prefix}.embeddings.word_embeddings.weight`);
    return op.gemm(x, E, { transB: true }, w('cls.predictions.bias'));
  }

  /** PEFT names of the head tensors `buildLogits({trainableHead})` makes params, with their initial values. */
  headParams(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const s of this.headSites) {
      for (const k of ['weight', 'bias']) {
        const t = this.weights.get(`${s.name}.${k}`)!;
        out.set(`${PEFT_PREFIX}${s.name}.${k}`, { shape: t.shape, data: Float32Array.from(float32Of(t.data)) });
      }
    }
    return out;
  }
}

/** BertForMaskedLM's head tensors (the decoder weight may be tied to the word embeddings and absent). */
const MLM_KEYS = ['cls.predictions.transform.dense.weight', 'cls.predictions.transform.dense.bias', 'cls.predictions.transform.LayerNorm.weight', 'cls.predictions.transform.LayerNorm.bias', 'cls.predictions.bias'];

export function bertFromHf(folder: HfFolder, options: BertOptions = {}): BertModel {
  return BertModel.fromHf(folder, options);
}
