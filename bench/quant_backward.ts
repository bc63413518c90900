// How to get dX = (dY·diag(s))·Qᵀ from the int8 codes Q [K, N] the forward
// product uses (src/graph/quantized.ts): the kernel time of each way, one
// BERT-base FFN shape, against the fp32 products, with the error vs the exact
// product of the dequantized weight. Ways (all with the rows of dY·diag(s)
// normalized by their absmax first, except 'no row norm'):
//   transpose:  DynamicQuantizeMatMul(G, Transpose(Q)) — Qᵀ made at run time
//   stored Qᵀ:  DynamicQuantizeMatMul(G, Qᵀ)           — a second int8 copy
//   QGemm transB: DynamicQuantizeLinear(G) then QGemm(·, Q, transB=1) — lorakit's choice
//
//   npx tsx bench/quant_backward.ts [--m 1024] [--k 768] [--n 3072] [--reps 10] [--threads 2] [--smoke]
// --smoke: 64×64×128, 2 repetitions: checks the bench runs.

import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { dynamicQuantizeMatMul, MS_DOMAIN, quantizedInputGrad } from '../src/graph/quantized.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { quantizeInt8, dequantizeInt8 } from '../src/quant/int8.ts';
import { Rng } from '../src/util/rng.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const SMOKE = process.argv.includes('--smoke');
const M = arg('m', SMOKE ? 64 : 1024), K = arg('k', SMOKE ? 64 : 768), N = arg('n', SMOKE ? 128 : 3072), REPS = arg('reps', SMOKE ? 2 : 10), THREADS = arg('threads', 2);
const rng = new Rng(0);
const gauss = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
const q = quantizeInt8(gauss(K * N, 0.02), K, N, 'in_out');
const W = dequantizeInt8(q);
const codesT = new Int8Array(K * N);
for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) codesT[n * K + k] = q.codes[k * N + n];
// Gradient rows of different sizes, as in training (a few tokens carry most of the loss).
const gy = gauss(M * N, 1);
for (let i = 0; i < M; i++) {
  const f = Math.exp(rng.normal() * 2);
  for (let n = 0; n < N; n++) gy[i * N + n] *= f;
}
const x = gauss(M * K, 1);

async function time(name: string, build: (g: Graph) => void, feeds: Record<string, { data: Float32Array; dims: number[] }>) {
  const g = new Graph(name);
  build(g);
  const c = await CompiledGraph.compile(g, { threads: THREADS });
  let out = await c.run(feeds);
  const ts: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t = performance.now();
    out = await c.run(feeds);
    ts.push(performance.now() - t);
  }
  await c.release();
  return { name, ms: [...ts].sort((a, b) => a - b)[REPS >> 1], y: out.y.data as Float32Array };
}

const G = (g: Graph) => g.input('g', 'float32', ['M', N]);
const rowNormalized = (g: Graph) => {
  const gs = op.mul(G(g), g.weight('s', q.scales, [N]));
  const r = op.max2(op.reduceMax(op.abs(gs), [-1], true), 1e-30);
  return { gn: op.div(gs, r), r };
};
const dqmm = (a: ReturnType<typeof G>, b: ReturnType<typeof G>) => a.graph.addNode('DynamicQuantizeMatMul', [a, b, a.graph.scalar(1), null, null], [{ dtype: 'float32', shape: ['M', K] }], {}, MS_DOMAIN)[0];
const fx = { x: { data: x, dims: [M, K] } }, fg = { g: { data: gy, dims: [M, N] } };

const rows = [
  await time('fp32 forward x·W', (g) => g.output('y', op.matmul(g.input('x', 'float32', ['M', K]), g.weight('W', W, [K, N]))), fx),
  await time('int8 forward DynamicQuantizeMatMul', (g) => g.output('y', dynamicQuantizeMatMul(g.input('x', 'float32', ['M', K]), g.weight('Q', q.codes, [K, N], 'int8'), g.weight('s', q.scales, [N]))), fx),
  await time('fp32 backward dY·Wᵀ', (g) => g.output('y', op.gemm(G(g), g.weight('W', W, [K, N]), { transB: true })), fg),
  await time('int8 backward: transpose', (g) => {
    const { gn, r } = rowNormalized(g);
    g.output('y', op.mul(dqmm(gn, op.transpose(g.weight('Q', q.codes, [K, N], 'int8'), [1, 0])), r));
  }, fg),
  await time('int8 backward: stored Qᵀ (2nd copy)', (g) => {
    const { gn, r } = rowNormalized(g);
    g.output('y', op.mul(dqmm(gn, g.weight('QT', codesT, [N, K], 'int8')), r));
  }, fg),
  await time('int8 backward: QGemm transB (lorakit)', (g) => g.output('y', quantizedInputGrad(G(g), g.weight('Q', q.codes, [K, N], 'int8'), g.weight('s', q.scales, [N]))), fg),
  await time('int8 backward: QGemm transB, no row norm', (g) => {
    const gs = op.mul(G(g), g.weight('s', q.scales, [N]));
    const [qa, sa, za] = g.addNode('DynamicQuantizeLinear', [gs], [{ dtype: 'uint8', shape: ['M', N] }, { dtype: 'float32', shape: [] }, { dtype: 'uint8', shape: [] }]);
    g.output('y', g.addNode('QGemm', [qa, sa, za, g.weight('Q', q.codes, [K, N], 'int8'), g.scalar(1), g.const(new Int8Array(1), [], 'int8')], [{ dtype: 'float32', shape: ['M', K] }], { transB: 1 }, MS_DOMAIN)[0]);
  }, fg),
];
/** Mean over rows of ‖row error‖ / ‖exact row‖. */
function rowError(got: Float32Array, want: Float32Array, cols: number): number {
  let s = 0;
  for (let i = 0; i < got.length / cols; i++) {
    let e = 0, w = 0;
    for (let j = 0; j < cols; j++) {
      e += (got[i * cols + j] - want[i * cols + j]) ** 2;
      w += want[i * cols + j] ** 2;
    }
    s += Math.sqrt(e / w);
  }
  return s / (got.length / cols);
}
console.log(`M ${M}, K ${K}, N ${N}, ${THREADS} threads, median of ${REPS}`);
console.table(rows.map((r) => ({
  kernel: r.name,
  ms: +r.ms.toFixed(1),
  'mean row error vs fp32 product of the same weights %': +(100 * rowError(r.y, r.name.includes('forward') ? rows[0].y : rows[2].y, r.name.includes('forward') ? N : K)).toFixed(2),
})));
