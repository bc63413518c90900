// How to compute with a quantized frozen weight, one BERT-base FFN shape
// (x [M, K] · W [K, N]), against the fp32 products: the kernel time of each way
// and its error. All kernels are compiled first, then run round-robin (one of
// each per round) so a loaded machine slows them alike; median of the rounds.
//
// int8 (codes Q [K, N], scales s): the input gradient dX = (dY·diag(s))·Qᵀ
//   transpose:  DynamicQuantizeMatMul(G, Transpose(Q)) — Qᵀ made at run time
//   stored Qᵀ:  DynamicQuantizeMatMul(G, Qᵀ)           — a second int8 copy
//   QGemm transB: DynamicQuantizeLinear(G) then QGemm(·, Q, transB=1) — lorakit's choice
//   (all with the rows of dY·diag(s) normalized by their absmax first, except 'no row norm').
// 4-bit: forward kernels (int4 MatMulNBits at accuracy_level 4 with scales per
// row block of 32 or 128, or per 32×32 tile; nf4 MatMulBnb4 or an in-graph
// dequantization + MatMul) and the input gradient dX = dY·W̃:
//   int4 2nd copy: MatMulNBits with Wᵀ quantized again along N (row blocks) — not W̃ᵀ
//   int4 square tiles: MatMulNBits with the same tile codes packed along N — exactly W̃ᵀ (lorakit)
//   dequantized: W̃ from the codes in the graph, then fp32 MatMul — at run time
//     (nf4: lorakit), or folded by onnxruntime into a float32 copy at session creation
// Errors: mean over rows of ‖row error‖/‖exact row‖, against the fp32 product
// with the original W ("vs W") and with the dequantized W̃ of the forward the
// gradient belongs to ("vs W̃": what autograd through the quantized forward gives).
//
//   npx tsx bench/quant_backward.ts [--m 1024] [--k 768] [--n 3072] [--reps 10] [--threads 2] [--smoke]
// --smoke: 64×64×128, 2 rounds: checks the bench runs.

import { Graph, type Value } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { dynamicQuantizeMatMul, MS_DOMAIN, quantizedInputGrad } from '../src/graph/quantized.ts';
import { dequantizeBnb4, dequantizeNBits, matMulBnb4, matMulNBits, type NBitsLeaves } from '../src/graph/quantized_4bit.ts';
import { CompiledGraph, type HostTensor } from '../src/runtime/session.ts';
import { quantizeInt8, dequantizeInt8 } from '../src/quant/int8.ts';
import { quantizeInt4, dequantizeInt4, kBlocksOf, type Int4Weight } from '../src/quant/int4.ts';
import { quantizeNf4, dequantizeNf4 } from '../src/quant/nf4.ts';
import { Rng } from '../src/util/rng.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const SMOKE = process.argv.includes('--smoke');
const M = arg('m', SMOKE ? 64 : 1024), K = arg('k', SMOKE ? 64 : 768), N = arg('n', SMOKE ? 128 : 3072), REPS = arg('reps', SMOKE ? 2 : 10), THREADS = arg('threads', 2);
const rng = new Rng(0);
const gauss = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
const W0 = gauss(K * N, 0.02); // [in, out]
const q = quantizeInt8(W0, K, N, 'in_out');
const W8 = dequantizeInt8(q);
const codesT = new Int8Array(K * N);
for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) codesT[n * K + k] = q.codes[k * N + n];
// Gradient rows of different sizes, as in training (a few tokens carry most of the loss).
const gy = gauss(M * N, 1);
for (let i = 0; i < M; i++) {
  const f = Math.exp(rng.normal() * 2);
  for (let n = 0; n < N; n++) gy[i * N + n] *= f;
}
const x = gauss(M * K, 1);
const W0T = new Float32Array(K * N); // W as [out, in] = Wᵀ as [in', out']
for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) W0T[n * K + k] = W0[k * N + n];

const fx = { x: { data: x, dims: [M, K] } }, fg = { g: { data: gy, dims: [M, N] } };
const X = (g: Graph) => g.input('x', 'float32', ['M', K]);
const G = (g: Graph) => g.input('g', 'float32', ['M', N]);

interface Case { name: string; build: (g: Graph) => Value; feeds: Record<string, HostTensor>; exact?: Float32Array; exactQ?: Float32Array; cols: number }

async function compile(name: string, build: (g: Graph) => Value) {
  const g = new Graph(name);
  g.output('y', build(g));
  return CompiledGraph.compile(g, { threads: THREADS });
}
/** The fp32 product of x or dY with a given [in, out] weight (computed by onnxruntime, once): the exact reference. */
async function product(w: Float32Array, backward: boolean): Promise<Float32Array> {
  const c = await compile('ref', (g) => (backward ? op.gemm(G(g), g.weight('W', w, [K, N]), { transB: true }) : op.matmul(X(g), g.weight('W', w, [K, N]))));
  const out = await c.run(backward ? fg : fx);
  await c.release();
  return out.y.data as Float32Array;
}

function nbits(g: Graph, name: string, w: Int4Weight): NBitsLeaves {
  const kb = kBlocksOf(w.inFeatures, w.blockSize);
  return {
    packed: g.weight(`${name}.B`, w.packed, [w.outFeatures, kb, w.blockSize / 2], 'uint8'), scales: g.weight(`${name}.s`, w.scales, [w.scales.length]),
    zeroPoints: w.zeroPoints && g.weight(`${name}.z`, w.zeroPoints, [w.zeroPoints.length], 'uint8'), K: w.inFeatures, N: w.outFeatures, blockSize: w.blockSize,
  };
}

const cases: Case[] = [];
const fwdExact = await product(W0, false), bwdExact = await product(W0, true);
const add = (name: string, build: (g: Graph) => Value, backward: boolean, exactQ?: Float32Array) =>
  cases.push({ name, build, feeds: backward ? fg : fx, exact: backward ? bwdExact : fwdExact, exactQ, cols: backward ? K : N });

// ---- int8
const dqmm = (a: Value, b: Value) => a.graph.addNode('DynamicQuantizeMatMul', [a, b, a.graph.scalar(1), null, null], [{ dtype: 'float32', shape: ['M', K] }], {}, MS_DOMAIN)[0];
const rowNormalized = (g: Graph) => {
  const gs = op.mul(G(g), g.weight('s', q.scales, [N]));
  const r = op.max2(op.reduceMax(op.abs(gs), [-1], true), 1e-30);
  return { gn: op.div(gs, r), r };
};
const f8 = await product(W8, false), b8 = await product(W8, true);
add('fp32 forward x·W', (g) => op.matmul(X(g), g.weight('W', W0, [K, N])), false);
add('fp32 backward dY·Wᵀ', (g) => op.gemm(G(g), g.weight('W', W0, [K, N]), { transB: true }), true);
add('int8 forward DynamicQuantizeMatMul', (g) => dynamicQuantizeMatMul(X(g), g.weight('Q', q.codes, [K, N], 'int8'), g.weight('s', q.scales, [N])), false, f8);
add('int8 backward: transpose', (g) => {
  const { gn, r } = rowNormalized(g);
  return op.mul(dqmm(gn, op.transpose(g.weight('Q', q.codes, [K, N], 'int8'), [1, 0])), r);
}, true, b8);
add('int8 backward: stored Qᵀ (2nd copy)', (g) => {
  const { gn, r } = rowNormalized(g);
  return op.mul(dqmm(gn, g.weight('QT', codesT, [N, K], 'int8')), r);
}, true, b8);
add('int8 backward: QGemm transB (lorakit)', (g) => quantizedInputGrad(G(g), g.weight('Q', q.codes, [K, N], 'int8'), g.weight('s', q.scales, [N])), true, b8);
add('int8 backward: QGemm transB, no row norm', (g) => {
  const gs = op.mul(G(g), g.weight('s', q.scales, [N]));
  const [qa, sa, za] = g.addNode('DynamicQuantizeLinear', [gs], [{ dtype: 'uint8', shape: ['M', N] }, { dtype: 'float32', shape: [] }, { dtype: 'uint8', shape: [] }]);
  return g.addNode('QGemm', [qa, sa, za, g.weight('Q', q.codes, [K, N], 'int8'), g.scalar(1), g.const(new Int8Array(1), [], 'int8')], [{ dtype: 'float32', shape: ['M', K] }], { transB: 1 }, MS_DOMAIN)[0];
}, true, b8);

// ---- int4: scales per row block (32, 128) or per 32×32 tile; symmetric or asymmetric
const int4Variants = [
  { label: 'tile 32 asym', o: { blockSize: 32, tileRows: 32, symmetric: false } },
  { label: 'tile 32 sym', o: { blockSize: 32, tileRows: 32, symmetric: true } },
  { label: 'block 32 asym', o: { blockSize: 32, symmetric: false } },
  { label: 'block 32 sym', o: { blockSize: 32, symmetric: true } },
  { label: 'block 128 asym', o: { blockSize: 128, symmetric: false } },
  { label: 'block 128 sym', o: { blockSize: 128, symmetric: true } },
];
for (const v of int4Variants) {
  const w = quantizeInt4(W0, K, N, 'in_out', v.o);
  const wq = dequantizeInt4(w);
  const fq = await product(wq, false), bq = await product(wq, true);
  const lorakit = v.label === 'tile 32 asym' ? ' (lorakit)' : '';
  add(`int4 ${v.label} forward MatMulNBits${lorakit}`, (g) => matMulNBits(X(g), nbits(g, 'w', w)), false, fq);
  if (v.o.tileRows) {
    const wT = quantizeInt4(W0T, N, K, 'in_out', v.o); // the same tiles packed along N: exactly W̃ᵀ
    add(`int4 ${v.label} backward: same codes packed along N${lorakit}`, (g) => matMulNBits(G(g), nbits(g, 't', wT)), true, bq);
  } else if (v.o.blockSize === 32) {
    const wT = quantizeInt4(W0T, N, K, 'in_out', v.o); // Wᵀ quantized again, along N: another W̃
    add(`int4 ${v.label} backward: 2nd copy quantized along N`, (g) => matMulNBits(G(g), nbits(g, 't', wT)), true, bq);
    add(`int4 ${v.label} backward: dequantized, folded by ORT to fp32 + MatMul`, (g) => op.matmul(G(g), dequantizeNBits(nbits(g, 'w', w))), true, bq);
  }
}

// ---- nf4 (block 64)
const w4 = quantizeNf4(W0, K, N, 'in_out', 64);
const nf4Leaves = (g: Graph) => ({ packed: g.weight('P', w4.packed, [w4.packed.length], 'uint8'), absmax: g.weight('A', w4.absmax, [w4.absmax.length]) });
const shape = { K, N, blockSize: 64 };
const fn = await product(dequantizeNf4(w4), false), bn = await product(dequantizeNf4(w4), true);
add('nf4 forward MatMulBnb4 (lorakit)', (g) => {
  const l = nf4Leaves(g);
  return matMulBnb4(X(g), l.packed, l.absmax, shape);
}, false, fn);
add('nf4 forward: dequantized + fp32 MatMul', (g) => {
  const l = nf4Leaves(g);
  return op.matmul(X(g), op.transpose(dequantizeBnb4(l.packed, l.absmax, shape), [1, 0]));
}, false, fn);
add('nf4 backward: dequantized at run time + fp32 MatMul (lorakit)', (g) => {
  const l = nf4Leaves(g);
  const gy = G(g);
  return op.matmul(gy, dequantizeBnb4(l.packed, l.absmax, shape, gy));
}, true, bn);
add('nf4 backward: dequantized, folded by ORT to fp32 + MatMul', (g) => {
  const l = nf4Leaves(g);
  return op.matmul(G(g), dequantizeBnb4(l.packed, l.absmax, shape));
}, true, bn);
add('nf4 backward: MatMulBnb4 transB=0 (wrong in ORT 1.30)', (g) => {
  const l = nf4Leaves(g);
  return g.addNode('MatMulBnb4', [G(g), l.packed, l.absmax], [{ dtype: 'float32', shape: ['M', K] }], { K, N, block_size: 64, quant_type: 1, transB: 0 }, MS_DOMAIN)[0];
}, true, bn);

// ---- compile all, then round-robin
const compiled = [];
for (const c of cases) compiled.push(await compile(c.name, c.build));
const times: number[][] = cases.map(() => []);
const outs: Float32Array[] = [];
for (let i = 0; i < cases.length; i++) outs[i] = (await compiled[i].run(cases[i].feeds)).y.data as Float32Array; // warm-up
for (let r = 0; r < REPS; r++) {
  for (let i = 0; i < cases.length; i++) {
    const t = performance.now();
    await compiled[i].run(cases[i].feeds);
    times[i].push(performance.now() - t);
  }
}
for (const c of compiled) await c.release();

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
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const pct = (x: number) => +(100 * x).toFixed(2);
console.log(`M ${M}, K ${K}, N ${N}, ${THREADS} threads, median of ${REPS} round-robin rounds`);
const fp32Fwd = median(times[0]), fp32Bwd = median(times[1]);
console.table(cases.map((c, i) => ({
  kernel: c.name,
  ms: +median(times[i]).toFixed(1),
  'fp32 ms / ms': +((c.cols === N ? fp32Fwd : fp32Bwd) / median(times[i])).toFixed(2),
  'row error vs W %': pct(rowError(outs[i], c.exact!, c.cols)),
  'row error vs W̃ %': c.exactQ ? pct(rowError(outs[i], c.exactQ, c.cols)) : '',
})));
