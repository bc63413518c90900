// The tiny Hugging Face-named model of tools/reference/peft_reference.py as a
// lorakit EncoderModel (its `build` returns the classifier logits), the
// reference's input batch and a PeftModel runner. Weights come from
// test/fixtures/peft_ref/model.safetensors, inputs from peft_ref/inputs.json.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Graph, Value } from '../../src/graph/ir.ts';
import * as op from '../../src/graph/ops.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import type { EncoderModel, LinearFn, LinearSite, WeightMap } from '../../src/models/types.ts';
import { CompiledGraph } from '../../src/runtime/session.ts';
import { PeftModel, TokenBatch } from '../../src/serve/peft_model.ts';
import type { AdapterSet } from '../../src/adapters/inject.ts';

export const PEFT_REF = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'peft_ref');
const V = 20, H = 8, I = 12, C = 3, LAYERS = 2;

export function tinySites(): LinearSite[] {
  const sites: LinearSite[] = [];
  const add = (name: string, i: number, o: number) => sites.push({ name, inFeatures: i, outFeatures: o, weightKey: `${name}.weight`, layout: 'out_in' });
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.self_attn.q_proj`, H, H);
    add(`${p}.self_attn.v_proj`, H, H);
    add(`${p}.mlp.up_proj`, H, I);
    add(`${p}.mlp.down_proj`, I, H);
  }
  add('classifier', H, C);
  return sites;
}

export function tinyModel(weights?: WeightMap): EncoderModel {
  const w: WeightMap = weights ?? new Map();
  if (!weights) {
    for (const [k, t] of readSafetensors(path.join(PEFT_REF, 'model.safetensors')).tensors) w.set(k, { shape: t.shape, data: t.data as Float32Array });
  }
  const sites = tinySites();
  const byName = new Map(sites.map((s) => [s.name, s]));
  return {
    name: 'tiny-ref',
    weights: w,
    sites,
    hiddenSize: C,
    build(g: Graph, { inputIds, attentionMask }, linear: LinearFn): Value {
      const wt = (k: string) => g.leaf(k) ?? linear.tensor?.(g, k) ?? g.weight(k, w.get(k)!.data, w.get(k)!.shape);
      const lin = (name: string, x: Value) => linear(byName.get(name)!, x, wt(`${name}.weight`), wt(`${name}.bias`));
      let h = op.reshape(op.gather(wt('model.embed_tokens.weight'), inputIds), [-1, H]);
      for (let l = 0; l < LAYERS; l++) {
        const p = `model.layers.${l}`;
        h = op.add(h, lin(`${p}.self_attn.v_proj`, op.tanh(lin(`${p}.self_attn.q_proj`, h))));
        h = op.add(h, lin(`${p}.mlp.down_proj`, op.relu(lin(`${p}.mlp.up_proj`, h))));
      }
      const h3 = op.reshapeLike(h, op.expandLike(op.unsqueeze(attentionMask, [2]), g.const(new Float32Array(H), [1, 1, H], 'float32')));
      const m = op.unsqueeze(attentionMask, [2]);
      const pooled = op.div(op.reduceSum(op.mul(h3, m), [1], false), op.reduceSum(attentionMask, [1], true));
      return lin('classifier', pooled);
    },
    withWeights(nw: WeightMap) {
      return tinyModel(nw);
    },
  };
}

export const plainLinear: LinearFn = (site, x, W, b) => (site.layout === 'in_out' ? op.linear(x, W, b) : op.linearT(x, W, b));

/** The reference's inputs (token ids, mask) and its base-model logits. */
export const refInputs: { input_ids: number[][]; attention_mask: number[][]; base_logits: number[] } = JSON.parse(
  fs.readFileSync(path.join(PEFT_REF, 'inputs.json'), 'utf8'),
);
export const refBatch: TokenBatch = {
  ids: BigInt64Array.from(refInputs.input_ids.flat(), (x: number) => BigInt(x)),
  mask: Float32Array.from(refInputs.attention_mask.flat()),
  B: refInputs.input_ids.length,
  T: refInputs.input_ids[0].length,
};

/** Logits of `model` (with `set` as the active adapter, if given) on refBatch. */
export async function refLogits(model: EncoderModel, set?: AdapterSet): Promise<Float32Array> {
  const pm = new PeftModel(model, { threads: 1 });
  if (set) pm.addAdapter('default', set);
  const out = (await pm.run(refBatch)).data as Float32Array;
  await pm.release();
  return out;
}
