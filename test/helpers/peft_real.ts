// Runs lorakit on the fixtures real PEFT 0.20 made (tools/reference/peft_real.py,
// test/fixtures/peft_real/): the tiny Hugging Face model of a case, its golden
// batch, and lorakit's logits (BERT: also the last hidden state) with an
// adapter set, or with merged weights, to compare with PEFT's.
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import type { AdapterSet } from '../../src/adapters/inject.ts';
import { Graph } from '../../src/graph/ir.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { BertModel } from '../../src/models/bert.ts';
import type { DecoderModel } from '../../src/models/decoder.ts';
import { loadModel } from '../../src/models/hf_registry.ts';
import { plainLinear } from '../../src/models/linear.ts';
import type { Seq2SeqModel } from '../../src/models/seq2seq.ts';
import type { LinearFn, WeightMap } from '../../src/models/types.ts';
import { adapterFeeds } from '../../src/adapters/feeds.ts';
import { CompiledGraph, HostTensor } from '../../src/runtime/session.ts';
import { maskedMaxAbsDiff, maxAbsDiff } from './arrays.ts';

export const FIX = new URL('../fixtures/', import.meta.url).pathname;
export const REAL = path.join(FIX, 'peft_real');

export type RealModel = BertModel | DecoderModel | Seq2SeqModel;

export interface RealCase {
  dir: string;
  info: any;
  modelName: string;
  model: RealModel;
  gold: any;
  /** PEFT's outputs (expected.safetensors / peft.safetensors), by name. */
  expected: Map<string, { shape: number[]; data: Float32Array }>;
}

const models = new Map<string, Promise<RealModel>>();

/** The case's fixture model (loaded once per name). */
export function fixtureModel(name: string): Promise<RealModel> {
  if (!models.has(name)) models.set(name, loadModel(path.join(FIX, 'hf', name)).then((m) => m.model as RealModel));
  return models.get(name)!;
}

export function readExpected(file: string): RealCase['expected'] {
  const t = readSafetensors(file).tensors;
  const out: RealCase['expected'] = new Map();
  for (const [k, v] of t) out.set(k, { shape: v.shape, data: v.data instanceof Float32Array ? v.data : Float32Array.from(v.data as ArrayLike<number>) });
  return out;
}

/** A case folder of peft_real/: case.json, adapter/, and PEFT's outputs in `outputs`. */
export async function loadRealCase(dir: string, outputs = 'expected.safetensors'): Promise<RealCase> {
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
  const modelName: string = info.model;
  return {
    dir,
    info,
    modelName,
    model: await fixtureModel(modelName),
    gold: JSON.parse(fs.readFileSync(path.join(FIX, 'hf', modelName, 'golden.json'), 'utf8')),
    expected: readExpected(path.join(dir, outputs)),
  };
}

/** The case folders under peft_real/<sub> (one level, or two for combine/). */
export function caseDirs(sub: string): string[] {
  const root = path.join(REAL, sub);
  return fs.readdirSync(root).filter((d) => fs.existsSync(path.join(root, d, 'case.json'))).sort().map((d) => path.join(root, d));
}

/** lorakit's logits (and BERT's last hidden state [B·T, H]) for the case's golden batch. */
export async function runCase(c: RealCase, set: AdapterSet | null, weights?: WeightMap): Promise<{ logits: Float32Array; hidden?: Float32Array }> {
  const logits = await runGraph(c, set, weights, 'logits');
  return c.model instanceof BertModel ? { logits, hidden: await runGraph(c, set, weights, 'hidden') } : { logits };
}

async function runGraph(c: RealCase, set: AdapterSet | null, weights: WeightMap | undefined, what: 'logits' | 'hidden'): Promise<Float32Array> {
  const g = new Graph(`peft-real-${c.modelName}-${what}`);
  const B = c.gold.input_ids.length, T = c.gold.input_ids[0].length;
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  const linear: LinearFn = set ? set.linear({ training: false }) : plainLinear;
  const feeds: Record<string, HostTensor> = {
    input_ids: { data: BigInt64Array.from(c.gold.input_ids.flat(), BigInt), dims: [B, T] },
    attention_mask: { data: Float32Array.from(c.gold.attention_mask.flat()), dims: [B, T] },
  };
  const m0 = c.model;
  if (m0 instanceof BertModel) {
    const model = weights ? m0.withWeights(weights) : m0;
    const tokenTypeIds = g.input('token_type_ids', 'int64', ['B', 'T']);
    feeds.token_type_ids = { data: BigInt64Array.from(c.gold.token_type_ids.flat(), BigInt), dims: [B, T] };
    const inputs = { inputIds, attentionMask, tokenTypeIds };
    g.output('out', what === 'logits' ? model.buildLogits(g, inputs, linear) : model.encode(g, inputs, linear).hidden);
  } else if ('decode' in m0) {
    const model = (weights ? m0.withWeights(weights) : m0) as Seq2SeqModel;
    const dec = c.gold.decoder_input_ids as number[][];
    const decoderInputIds = g.input('decoder_input_ids', 'int64', ['B', 'T_dec']);
    feeds.decoder_input_ids = { data: BigInt64Array.from(dec.flat(), BigInt), dims: [dec.length, dec[0].length] };
    const cross = model.crossKv(g, model.encode(g, { inputIds, attentionMask }, linear), linear);
    g.output('out', model.decode(g, { decoderInputIds, encoderAttentionMask: attentionMask, cross }, linear).logits);
  } else {
    const model = (weights ? m0.withWeights(weights) : m0) as DecoderModel;
    g.output('out', model.build(g, { inputIds, attentionMask }, linear).logits);
  }
  if (set) Object.assign(feeds, adapterFeeds(set, { training: false }));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const out = await cg.run(feeds);
  await cg.release();
  return out.out.data as Float32Array;
}

/** max |lorakit − PEFT| of logits: decoder LMs over real tokens only (PEFT's logits at padding are not compared). */
export function logitsDiff(c: RealCase, got: ArrayLike<number>, key = 'logits'): number {
  const ref = c.expected.get(key);
  assert.ok(ref, `${c.dir}: PEFT's '${key}' is missing`);
  const decoderLm = !(c.model instanceof BertModel) && !('decode' in c.model);
  return decoderLm ? maskedMaxAbsDiff(got, ref.data, c.gold.attention_mask.flat()) : maxAbsDiff(got, ref.data);
}

/** The merged weights PEFT's merge_and_unload changed ('merged.<name>'), by weight name. */
export function mergedWeights(c: RealCase): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of c.expected) if (k.startsWith('merged.')) out.set(k.slice('merged.'.length), v.data);
  return out;
}
