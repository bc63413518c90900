// Every vjp rule checked against central finite differences (float64 where
// onnxruntime's CPU kernels have it, float32 with a looser tolerance otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as op from '../src/graph/ops.ts';
import { Graph, Value } from '../src/graph/ir.ts';
import { checkGradient, checkGradientSymbolic, FdSymInput } from './helpers/fd.ts';

const positive = (rng: any) => rng.uniformRange(0.5, 2);
const cases: [string, Parameters<typeof checkGradient>[0], Parameters<typeof checkGradient>[1], Parameters<typeof checkGradient>[2]?][] = [
  ['Add (broadcast)', (g, [a, b]) => op.add(a, b), [{ shape: [2, 3] }, { shape: [3] }]],
  ['Sub (broadcast)', (g, [a, b]) => op.sub(a, b), [{ shape: [2, 1, 3] }, { shape: [4, 1] }]],
  ['Mul (broadcast)', (g, [a, b]) => op.mul(a, b), [{ shape: [2, 3] }, { shape: [2, 1] }]],
  ['Div', (g, [a, b]) => op.div(a, b), [{ shape: [2, 3] }, { shape: [3], init: positive }]],
  ['Max (elementwise, broadcast)', (g, [a, b]) => op.max2(a, b), [{ shape: [2, 3] }, { shape: [3] }]],
  ['Neg', (g, [a]) => op.neg(a), [{ shape: [4] }]],
  ['Exp', (g, [a]) => op.exp(a), [{ shape: [2, 3] }]],
  ['Log', (g, [a]) => op.log(a), [{ shape: [2, 3], init: positive }]],
  ['Sqrt', (g, [a]) => op.sqrt(a), [{ shape: [2, 3], init: positive }]],
  ['Pow', (g, [a]) => op.pow(a, 3), [{ shape: [5] }]],
  ['Tanh', (g, [a]) => op.tanh(a), [{ shape: [2, 3] }]],
  ['Sigmoid', (g, [a]) => op.sigmoid(a), [{ shape: [2, 3] }]],
  ['Relu', (g, [a]) => op.relu(a), [{ shape: [2, 3], init: (r) => (r.uniform() < 0.5 ? -1 : 1) * r.uniformRange(0.1, 1) }]],
  ['Erf', (g, [a]) => op.erf(a), [{ shape: [6] }], { dtype: 'float32' }],
  ['Gelu (erf)', (g, [a]) => op.gelu(a), [{ shape: [6] }], { dtype: 'float32' }],
  ['Sin', (g, [a]) => op.sin(a), [{ shape: [6] }], { dtype: 'float32' }],
  ['Cos', (g, [a]) => op.cos(a), [{ shape: [6] }], { dtype: 'float32' }],
  ['Abs', (g, [a]) => op.abs(a), [{ shape: [6], init: (r) => (r.uniform() < 0.5 ? -1 : 1) * r.uniformRange(0.1, 1) }]],
  ['Softmax', (g, [a]) => op.softmax(a, -1), [{ shape: [2, 4] }]],
  ['Softmax axis 1', (g, [a]) => op.softmax(a, 1), [{ shape: [2, 3, 2] }]],
  ['LogSoftmax', (g, [a]) => op.logSoftmax(a, -1), [{ shape: [3, 4] }]],
  ['MatMul 2-D', (g, [a, b]) => op.matmul(a, b), [{ shape: [3, 4] }, { shape: [4, 2] }]],
  ['MatMul batched', (g, [a, b]) => op.matmul(a, b), [{ shape: [2, 3, 4] }, { shape: [2, 4, 2] }]],
  ['MatMul 3-D @ 2-D', (g, [a, b]) => op.matmul(a, b), [{ shape: [2, 3, 4] }, { shape: [4, 2] }]],
  ['MatMul broadcast batch', (g, [a, b]) => op.matmul(a, b), [{ shape: [2, 2, 3, 4] }, { shape: [1, 2, 4, 2] }]],
  ['Gemm', (g, [a, b]) => op.gemm(a, b), [{ shape: [3, 4] }, { shape: [4, 2] }]],
  ['Gemm transA', (g, [a, b]) => op.gemm(a, b, { transA: true, alpha: 0.7 }), [{ shape: [4, 3] }, { shape: [4, 2] }]],
  ['Gemm transB + bias', (g, [a, b, c]) => op.gemm(a, b, { transB: true, beta: 0.5 }, c), [{ shape: [3, 4] }, { shape: [2, 4] }, { shape: [2] }]],
  ['Gemm transA transB', (g, [a, b]) => op.gemm(a, b, { transA: true, transB: true, alpha: 2 }), [{ shape: [4, 3] }, { shape: [2, 4] }]],
  ['LayerNormalization', (g, [x, s, b]) => op.layerNorm(x, s, b, { eps: 1e-5 }), [{ shape: [3, 5] }, { shape: [5] }, { shape: [5] }], { dtype: 'float32' }],
  ['LayerNormalization 3-D no bias', (g, [x, s]) => op.layerNorm(x, s, null, { eps: 1e-3 }), [{ shape: [2, 2, 4] }, { shape: [4] }], { dtype: 'float32' }],
  ['Gather axis 0 (embedding)', (g, [e, i]) => op.gather(e, i, 0), [{ shape: [5, 3] }, { shape: [2, 3], int: [0, 4, 1, 1, 2, 0] }]],
  ['GatherElements', (g, [x, i]) => op.gatherElements(x, i, 1), [{ shape: [3, 4] }, { shape: [3, 1], int: [2, 0, 3] }]],
  ['Reshape', (g, [x]) => op.reshape(x, [3, -1]), [{ shape: [2, 3, 2] }]],
  ['Transpose', (g, [x]) => op.transpose(x, [1, 2, 0]), [{ shape: [2, 3, 4] }]],
  ['Unsqueeze/Squeeze', (g, [x]) => op.squeeze(op.mul(op.unsqueeze(x, [1]), 2), [1]), [{ shape: [2, 3] }]],
  ['Concat', (g, [a, b]) => op.concat([a, b], 1), [{ shape: [2, 3] }, { shape: [2, 1] }]],
  ['Split', (g, [x]) => { const [a, b] = op.split(x, [1, 3], 1); return op.mul(op.reduceSum(a, [1]), b); }, [{ shape: [2, 4] }]],
  ['Split unused part', (g, [x]) => op.split(x, [2, 2], 0)[1], [{ shape: [4, 2] }]],
  ['Slice', (g, [x]) => op.slice(x, [1, 0], [3, 2], [0, 1]), [{ shape: [4, 3] }]],
  ['Where', (g, [a, b]) => op.where(op.greater(a, 0), a, b), [{ shape: [2, 3], init: (r) => (r.uniform() < 0.5 ? -1 : 1) * r.uniformRange(0.1, 1) }, { shape: [3] }]],
  ['ReduceSum', (g, [x]) => op.reduceSum(x, [1], false), [{ shape: [2, 3, 2] }]],
  ['ReduceMean keepdims', (g, [x]) => op.reduceMean(x, [0, 2], true), [{ shape: [2, 3, 2] }]],
  ['ReduceMax', (g, [x]) => op.reduceMax(x, [1], false), [{ shape: [3, 4] }]],
  ['Expand', (g, [x, y]) => op.mul(op.expandLike(x, y), y), [{ shape: [3, 1] }, { shape: [3, 4] }]],
  ['Cast float64→float32→float64', (g, [x]) => op.cast(op.mul(op.cast(x, 'float32'), op.cast(x, 'float32')), 'float64'), [{ shape: [4] }], { tol: 1e-4, h: 1e-3 }],
  ['crossEntropy', (g, [x, l]) => op.crossEntropy(x, l), [{ shape: [3, 4] }, { shape: [3], int: [1, 3, 0] }]],
];

for (const [name, build, inputs, opts] of cases) {
  test(`vjp ${name} matches finite differences`, async () => {
    const worst = await checkGradient(build, inputs, opts);
    assert.ok(worst <= (opts?.tol ?? 1e-6) || opts?.dtype === 'float32');
  });
}

const attention = (g: Graph, [x, wq, wk]: Value[]) => {
  const q = op.matmul(x, wq), k = op.matmul(x, wk);
  const s = op.softmax(op.mul(op.matmul(q, op.transpose(k, [0, 2, 1])), 0.5), -1);
  return op.layerNorm(op.add(op.matmul(s, x), x), g.weight('ones', new Float32Array(4).fill(1), [4]), null);
};

test('vjp of a composed attention block matches finite differences (static shapes)', async () => {
  await checkGradient(attention, [{ shape: [2, 3, 4] }, { shape: [4, 4] }, { shape: [4, 4] }], { dtype: 'float32' });
});

// Symbolic shapes: each graph is built and compiled once with dims 'B' / 'T'
// (as every model's batch is), so autodiff takes its dynamic-shape branches,
// then checked at several concrete sizes with that one session (1 included,
// where broadcasting and a real dim look alike at run time).
const SIZES = [{ B: 2, T: 3 }, { B: 1, T: 2 }, { B: 3, T: 1 }];
const symbolicCases: [string, Parameters<typeof checkGradientSymbolic>[0], FdSymInput[], { dynamic: string[]; dtype?: 'float32' }][] = [
  ['attention block over [B, T, 4] (MatMul 3-D @ 2-D folds B·T into one Gemm; LayerNorm)', attention,
    [{ shape: ['B', 'T', 4] }, { shape: [4, 4] }, { shape: [4, 4] }], { dynamic: ['Reshape'], dtype: 'float32' }],
  ['ReduceMean over symbolic axes (the element count is read at run time)', (g, [x]) => op.reduceMean(op.mul(x, x), [0, 1], false),
    [{ shape: ['B', 'T', 3] }], { dynamic: ['Shape', 'ReduceProd'] }],
  ['ReduceMean keepdims over a mixed static / symbolic axis set', (g, [x]) => op.reduceMean(x, [1, 2], true),
    [{ shape: ['B', 'T', 3] }], { dynamic: ['Shape', 'ReduceProd', 'Expand'] }],
  ['Reshape with -1 over symbolic dims (backward reshapes to the input\'s run-time shape)', (g, [x]) => op.mul(op.reshape(x, [-1, 3]), op.reshape(x, [-1, 3])),
    [{ shape: ['B', 'T', 3] }], { dynamic: ['Shape', 'Reshape'] }],
  ['Add / Mul broadcasting symbolic against 1 (unbroadcast sums the right axes)', (g, [a, b, c]) => op.mul(op.add(a, b), c),
    [{ shape: ['B', 1, 3] }, { shape: ['T', 1] }, { shape: [1, 'T', 3] }], { dynamic: [] }],
  ['Gather (embedding) with [B, T] ids (the zero table has the run-time shape)', (g, [e, ids]) => op.gather(e, ids, 0),
    [{ shape: [5, 3] }, { shape: ['B', 'T'], intBelow: 5 }], { dynamic: ['Shape', 'ConstantOfShape', 'ScatterND'] }],
  ['crossEntropy over [B, C] with B symbolic (mean over B read at run time)', (g, [x, l]) => op.crossEntropy(x, l),
    [{ shape: ['B', 4] }, { shape: ['B'], intBelow: 4 }], { dynamic: ['Shape', 'ReduceProd'] }],
  ['Expand to a symbolic shape', (g, [x, y]) => op.mul(op.expandLike(x, y), y),
    [{ shape: ['B', 1] }, { shape: ['B', 'T'] }], { dynamic: [] }],
  ['reshapeTo / expandTo a run-time shape tensor', (g, [x, y]) => op.mul(op.expandTo(op.reshapeTo(x, op.shapeOf(y), y.shape), op.shapeOf(y), y.shape), y),
    [{ shape: ['B', 'T'] }, { shape: ['B', 'T'] }], { dynamic: ['Shape', 'Reshape'] }],
  ['Softmax / LogSoftmax over a symbolic axis', (g, [x]) => op.add(op.softmax(x, -1), op.logSoftmax(x, 1)),
    [{ shape: ['B', 'T'] }], { dynamic: [] }],
  ['Split / Concat on a static axis with symbolic dims elsewhere', (g, [x]) => { const [a, b] = op.split(x, [1, 2], 2); return op.concat([op.mul(b, b), a], 2); },
    [{ shape: ['B', 'T', 3] }], { dynamic: [] }],
  ['Slice of run-time length (a position table cut to the batch length: the gradient is padded back by run-time amounts)', (g, [x, y]) => op.mul(op.sliceDynamic(x, g.ints([0]), op.slice(op.shapeOf(y), [0], [1], [0]), [0], ['T', 3]), y),
    [{ shape: [4, 3] }, { shape: ['T', 3] }], { dynamic: ['Shape', 'Pad'] }],
  ['GatherElements / Where / Max with symbolic dims', (g, [x, i, z]) => op.max2(op.gatherElements(op.where(op.greater(x, 0), x, z), i, 1), 0.1),
    [{ shape: ['B', 4], init: (r) => (r.uniform() < 0.5 ? -1 : 1) * r.uniformRange(0.2, 1) }, { shape: ['B', 2], intBelow: 4 }, { shape: ['B', 4], init: (r) => r.uniformRange(0.2, 1) }], { dynamic: [] }],
];

for (const [name, build, inputs, { dynamic, dtype }] of symbolicCases) {
  test(`vjp with symbolic shapes: ${name} matches finite differences at ${SIZES.map((s) => `B=${s.B},T=${s.T}`).join('; ')}`, async () => {
    const { worst, backwardOps } = await checkGradientSymbolic(build, inputs, SIZES, { dtype });
    for (const o of dynamic) assert.ok(backwardOps.includes(o), `the backward pass has no ${o}: ${[...new Set(backwardOps)].join(', ')}`);
    assert.ok(worst <= (dtype === 'float32' ? 2e-2 : 1e-6));
  });
}

test('vjp rules that need static sizes say so for symbolic ones (Concat on a symbolic axis)', async () => {
  const { Graph: G } = await import('../src/graph/ir.ts');
  const { grad } = await import('../src/autodiff/grad.ts');
  const g = new G();
  const x = g.input('x', 'float32', ['B', 'T']);
  assert.throws(() => grad(op.reduceSum(op.concat([x, x], 0), [0, 1], false), [x]), /Concat gradient needs static sizes/);
});

test('vjp property: random broadcast shapes for Mul/Add agree with finite differences', async () => {
  const dim = fc.integer({ min: 1, max: 3 });
  await fc.assert(
    fc.asyncProperty(fc.array(dim, { minLength: 1, maxLength: 3 }), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), fc.integer({ min: 0, max: 1000 }), async (shape, ones, seed) => {
      const other = shape.map((d, i) => (ones[i] ? 1 : d));
      await checkGradient((g, [a, b]) => op.add(op.mul(a, b), b), [{ shape }, { shape: other }], { seed });
    }),
    { numRuns: 15 },
  );
});

test('grad only differentiates toward the requested parameters', async () => {
  const { Graph } = await import('../src/graph/ir.ts');
  const { grad } = await import('../src/autodiff/grad.ts');
  const g = new Graph();
  const x = g.input('x', 'float32', [2, 3]);
  const W = g.weight('W', new Float32Array(12), [3, 4]);
  const A = g.param('A', [4, 2]);
  const loss = op.reduceSum(op.matmul(op.matmul(x, W), A), [0, 1], false);
  const before = g.nodes.length;
  grad(loss, [A]);
  const added = g.nodes.slice(before);
  // dA = (xW)ᵀ·g needs one Gemm; no product against W (no dW, no dx) may appear.
  const products = added.filter((n) => n.op === 'Gemm' || n.op === 'MatMul');
  assert.equal(products.length, 1);
  assert.ok(!products.some((n) => n.inputs.includes(W)));
});
