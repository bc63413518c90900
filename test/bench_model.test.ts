// bench/bert_like.ts (the training benchmark's model) against the PyTorch
// peer's own model: logits, loss and every LoRA / head gradient of a tiny
// config, from the committed fixture written by
// tools/reference/bert_like_golden.py (float64 torch, weights seeded in Python).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loraConfigSchema } from '../src/adapters/lora/config.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { buildClassifierGraph } from '../src/train/classifier.ts';
import type { WeightMap } from '../src/models/types.ts';
import { BertLike, bertLikeConfig, bertLikeSites, randomBertLikeWeights } from '../bench/bert_like.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

interface Tensor { shape: number[]; data: number[] }
interface Case {
  name: string; batch: number; T: number;
  input_ids: number[]; attention_mask: number[]; labels: number[];
  logits: number[]; loss: number; grads: Record<string, number[]>;
}
interface Golden {
  config: { layers: number; hidden: number; heads: number; ffn: number; seq: number; vocab: number; rank: number; alpha: number; classes: number };
  weights: Record<string, Tensor>;
  params: Record<string, Tensor>;
  cases: Case[];
}

const golden: Golden = JSON.parse(readFileSync(new URL('./fixtures/bert_like_golden.json', import.meta.url), 'utf8'));
const C = golden.config;

function setup() {
  const weights: WeightMap = new Map(Object.entries(golden.weights).map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data) }]));
  const model = new BertLike(bertLikeConfig({ layers: C.layers, hidden: C.hidden, heads: C.heads, ffn: C.ffn, maxPositions: C.seq, vocab: C.vocab }), weights);
  const adapters = new AdapterSet(lora, loraConfigSchema.parse({ r: C.rank, lora_alpha: C.alpha }), model.sites, model.weights, { targetModules: ['query', 'value'] });
  assert.deepEqual(adapters.targets.map((s) => s.name), Array.from({ length: C.layers }, (_, i) => [`encoder.layer.${i}.attention.self.query`, `encoder.layer.${i}.attention.self.value`]).flat());
  for (const [k, v] of adapters.params) {
    const t = golden.params[k];
    assert.ok(t, `fixture has no value for '${k}'`);
    assert.deepEqual(adapters.shapes.get(k), t.shape, k);
    v.set(t.data);
  }
  const head = new Map(['classifier.weight', 'classifier.bias'].map((k) => [k, Float32Array.from(golden.params[k].data)]));
  return { model, adapters, head };
}

test('bert_like logits, loss and LoRA/head gradients match the PyTorch peer model', async () => {
  const { model, adapters, head } = setup();
  const { graph, trainable } = buildClassifierGraph(model, adapters, head, C.classes, 'train');
  assert.deepEqual([...trainable].sort(), Object.keys(golden.params).sort());
  const compiled = await CompiledGraph.compile(graph, { threads: 1 });
  try {
    for (const c of golden.cases) {
      const feeds: Record<string, { data: any; dims: number[] }> = {
        input_ids: { data: BigInt64Array.from(c.input_ids.map(BigInt)), dims: [c.batch, c.T] },
        attention_mask: { data: Float32Array.from(c.attention_mask), dims: [c.batch, c.T] },
        labels: { data: BigInt64Array.from(c.labels.map(BigInt)), dims: [c.batch] },
      };
      for (const k of trainable) feeds[k] = { data: adapters.params.get(k) ?? head.get(k)!, dims: golden.params[k].shape };
      const out = await compiled.run(feeds);
      assert.deepEqual(out.logits.dims, [c.batch, C.classes]);
      const dl = maxAbsDiff(out.logits.data as Float32Array, c.logits);
      assert.ok(dl <= 1e-4, `${c.name}: logits differ by ${dl}`);
      const loss = (out.loss.data as Float32Array)[0];
      assert.ok(Math.abs(loss - c.loss) <= 1e-4, `${c.name}: loss ${loss} vs ${c.loss}`);
      for (const k of trainable) {
        const ref = c.grads[k];
        const scale = Math.max(...ref.map(Math.abs));
        assert.ok(scale > 1e-6, `${c.name}: reference gradient of '${k}' is ~0, the check would be vacuous`);
        const d = maxAbsDiff(out[`grad.${k}`].data as Float32Array, ref);
        assert.ok(d <= 1e-3 * scale, `${c.name}: grad of '${k}' differs by ${d} (max |ref| ${scale})`);
      }
    }
  } finally {
    await compiled.release();
  }
});

test('bert_like: HF BERT module names, nn.Linear [out, in] layout, seeded weights', () => {
  const cfg = bertLikeConfig({ layers: 2, hidden: 8, heads: 2, ffn: 16, maxPositions: 4, vocab: 10 });
  const sites = bertLikeSites(cfg);
  assert.deepEqual(sites.slice(0, 6).map((s) => s.name), [
    'encoder.layer.0.attention.self.query', 'encoder.layer.0.attention.self.key', 'encoder.layer.0.attention.self.value',
    'encoder.layer.0.attention.output.dense', 'encoder.layer.0.intermediate.dense', 'encoder.layer.0.output.dense',
  ]);
  const w = randomBertLikeWeights(cfg, 3);
  assert.deepEqual(w.get('encoder.layer.1.intermediate.dense.weight')!.shape, [16, 8]);
  assert.deepEqual(w.get('encoder.layer.1.output.dense.weight')!.shape, [8, 16]);
  const bound = 1 / Math.sqrt(16);
  assert.ok(w.get('encoder.layer.1.output.dense.weight')!.data.every((x) => Math.abs(x) <= bound && x !== 0));
  assert.deepEqual(randomBertLikeWeights(cfg, 3).get('embeddings.word_embeddings.weight')!.data, w.get('embeddings.word_embeddings.weight')!.data);
  assert.notDeepEqual(randomBertLikeWeights(cfg, 4).get('embeddings.word_embeddings.weight')!.data, w.get('embeddings.word_embeddings.weight')!.data);
  assert.throws(() => new BertLike(cfg, new Map()), /missing/);
});
