import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, Value } from '../src/graph/ir.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { checkGradient } from './helpers/fd.ts';
import { listNetLoss, pairwiseLoss, pointwiseLoss, softmaxCrossEntropy } from '../src/train/ranking.ts';

const G = 2, K = 4;
const LABELS = [2, 0, 1, 0, 0, 3, 3, 1];
const VALID = [1, 1, 1, 0, 1, 1, 1, 1];
const labelInit = (_r: unknown, i: number) => LABELS[i];
const validInit = (_r: unknown, i: number) => VALID[i];
const S = [0.3, -0.2, 0.5, 0.1, -0.7, 0.4, 0.9, -0.1];

// Plain-JS references.
const softplus = (x: number) => Math.log1p(Math.exp(x));
function refPairwise(kind: 'logistic' | 'hinge', gap = false, valid?: number[]) {
  let tot = 0, cnt = 0;
  for (let g = 0; g < G; g++)
    for (let i = 0; i < K; i++)
      for (let j = 0; j < K; j++) {
        const a = g * K + i, b = g * K + j;
        if (!(LABELS[a] > LABELS[b])) continue;
        let w = gap ? LABELS[a] - LABELS[b] : 1;
        if (valid) w *= valid[a] * valid[b];
        const d = S[a] - S[b];
        tot += w * (kind === 'hinge' ? Math.max(0, 1 - d) : softplus(-d));
        cnt += w;
      }
  return tot / cnt;
}
function logSoftmaxRow(x: number[], v?: number[]) {
  const xs = x.map((t, k) => (v && !v[k] ? -1e9 : t));
  const m = Math.max(...xs);
  const lse = m + Math.log(xs.reduce((a, t) => a + Math.exp(t - m), 0));
  return xs.map((t) => t - lse);
}
function refListwise(p: (g: number) => number[], valid?: number[]) {
  let tot = 0;
  for (let g = 0; g < G; g++) {
    const v = valid?.slice(g * K, g * K + K);
    const lp = logSoftmaxRow(S.slice(g * K, g * K + K), v);
    const pg = p(g);
    tot -= lp.reduce((a, t, k) => a + (v && !v[k] ? 0 : pg[k] * t), 0);
  }
  return tot / G;
}
const row = (a: number[], g: number) => a.slice(g * K, g * K + K);

async function evalLoss(build: (s: Value, y: Value, v: Value, idx: Value) => Value): Promise<number> {
  const g = new Graph('rank');
  const s = g.input('s', 'float64', [G, K]);
  const y = g.input('y', 'float64', [G, K]);
  const v = g.input('v', 'float64', [G, K]);
  const idx = g.input('idx', 'int64', [G]);
  g.output('loss', build(s, y, v, idx));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const all = {
    s: { data: Float64Array.from(S), dims: [G, K] },
    y: { data: Float64Array.from(LABELS), dims: [G, K] },
    v: { data: Float64Array.from(VALID), dims: [G, K] },
    idx: { data: BigInt64Array.from([0n, 2n]), dims: [G] },
  };
  const res = await cg.run(all);
  await cg.release();
  return Number(res.loss.data[0]);
}

test('ranking losses match plain-JS references', async () => {
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} vs ${b}`);
  close(await evalLoss((s, y) => pairwiseLoss(s, y)), refPairwise('logistic'));
  close(await evalLoss((s, y) => pairwiseLoss(s, y, { kind: 'hinge' })), refPairwise('hinge'));
  close(await evalLoss((s, y) => pairwiseLoss(s, y, { weightByGap: true })), refPairwise('logistic', true));
  close(await evalLoss((s, y, v) => pairwiseLoss(s, y, { valid: v })), refPairwise('logistic', false, VALID));
  const norm = (g: number) => { const r = row(LABELS, g); const t = r.reduce((a, b) => a + b, 0); return r.map((x) => x / t); };
  close(await evalLoss((s, y) => softmaxCrossEntropy(s, y)), refListwise(norm));
  close(await evalLoss((s, _y, _v, idx) => softmaxCrossEntropy(s, idx)), refListwise((g) => (g === 0 ? [1, 0, 0, 0] : [0, 0, 1, 0])));
  close(await evalLoss((s, y) => listNetLoss(s, y)), refListwise((g) => logSoftmaxRow(row(LABELS, g)).map(Math.exp)));
  const vn = (g: number) => { const r = row(LABELS, g).map((x, k) => x * VALID[g * K + k]); const t = r.reduce((a, b) => a + b, 0); return r.map((x) => x / t); };
  close(await evalLoss((s, y, v) => softmaxCrossEntropy(s, y, { valid: v })), refListwise(vn, VALID));
  close(
    await evalLoss((s, y, v) => listNetLoss(s, y, { valid: v, temperature: 0.5 })),
    refListwise((g) => logSoftmaxRow(row(LABELS, g).map((x) => x / 0.5), row(VALID, g)).map(Math.exp), VALID),
  );
});

test('pairwise loss with no ordered pairs is 0', async () => {
  const g = new Graph('rank0');
  const s = g.input('s', 'float64', [1, 3]);
  const y = g.input('y', 'float64', [1, 3]);
  g.output('loss', pairwiseLoss(s, y));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const res = await cg.run({ s: { data: Float64Array.from([1, 2, 3]), dims: [1, 3] }, y: { data: Float64Array.from([1, 1, 1]), dims: [1, 3] } });
  await cg.release();
  assert.equal(Number(res.loss.data[0]), 0);
});

const scoresIn = { shape: [G, K] };
const labelsIn = { shape: [G, K], init: labelInit, diff: false };
const validIn = { shape: [G, K], init: validInit, diff: false };

for (const [name, build] of [
  ['RankNet (logistic)', (_g: Graph, [s, y]: Value[]) => pairwiseLoss(s, y)],
  ['RankNet sigma=2, gap-weighted', (_g: Graph, [s, y]: Value[]) => pairwiseLoss(s, y, { sigma: 2, weightByGap: true })],
  ['margin hinge', (_g: Graph, [s, y]: Value[]) => pairwiseLoss(s, y, { kind: 'hinge', margin: 0.5 })],
  ['softmax CE (labels)', (_g: Graph, [s, y]: Value[]) => softmaxCrossEntropy(s, y)],
  ['ListNet', (_g: Graph, [s, y]: Value[]) => listNetLoss(s, y, { temperature: 0.7 })],
] as const) {
  test(`finite differences: ${name}`, async () => {
    await checkGradient(build, [scoresIn, labelsIn]);
  });
}

test('finite differences: masked pairwise + listwise', async () => {
  await checkGradient((_g, [s, y, v]) => pairwiseLoss(s, y, { valid: v }), [scoresIn, labelsIn, validIn]);
  await checkGradient((_g, [s, y, v]) => listNetLoss(s, y, { valid: v }), [scoresIn, labelsIn, validIn]);
  await checkGradient((_g, [s, y, v]) => softmaxCrossEntropy(s, y, { valid: v }), [scoresIn, labelsIn, validIn]);
});

test('finite differences: softmax CE with index targets', async () => {
  await checkGradient((_g, [s, idx]) => softmaxCrossEntropy(s, idx), [scoresIn, { shape: [G], int: [1, 3] }]);
});

test('pointwise BCE: −[y·log σ(s) + (1 − y)·log(1 − σ(s))], y = label > 0, mean over valid candidates', async () => {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const bce = (i: number) => (LABELS[i] > 0 ? -Math.log(sig(S[i])) : -Math.log(1 - sig(S[i])));
  const all = S.reduce((a, _s, i) => a + bce(i), 0) / S.length;
  const valid = S.reduce((a, _s, i) => a + VALID[i] * bce(i), 0) / VALID.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs((await evalLoss((s, y) => pointwiseLoss(s, y))) - all) < 1e-12);
  assert.ok(Math.abs((await evalLoss((s, y, v) => pointwiseLoss(s, y, { valid: v }))) - valid) < 1e-12);
  await checkGradient((_g, [s, y, v]) => pointwiseLoss(s, y, { valid: v }), [scoresIn, labelsIn, validIn]);
});
