// FLOP and saved-activation counts of the graph IR (src/graph/cost.ts) against
// counts made by hand from the maths of small graphs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { matrixFlops, matrixProducts, savedActivations } from '../src/graph/cost.ts';

// loss = Σ (x·W1·W2)², x [B,3] fed, W1 [3,4] and W2 [4,5] trained.
function twoLayer() {
  const g = new Graph('two-layer');
  const x = g.input('x', 'float32', ['B', 3]);
  const w1 = g.param('w1', [3, 4]), w2 = g.param('w2', [4, 5]);
  const z = op.matmul(op.matmul(x, w1), w2);
  const loss = g.output('loss', op.reduceSum(op.mul(z, z), [0, 1], false));
  grad(loss, [w1, w2]).forEach((v, i) => g.output(`grad.w${i + 1}`, v));
  return g;
}

test('training-step FLOPs of a two-layer product equal the hand count (forward + backward)', () => {
  const B = 7;
  // Forward: h = x·W1 (2·B·3·4), z = h·W2 (2·B·4·5). Backward: dW2 = hᵀ·dz (2·4·B·5),
  // dh = dz·W2ᵀ (2·B·5·4), dW1 = xᵀ·dh (2·3·B·4); x needs no gradient.
  const hand = 2 * B * 3 * 4 + 2 * B * 4 * 5 + 2 * 4 * B * 5 + 2 * B * 5 * 4 + 2 * 3 * B * 4;
  assert.equal(matrixFlops(twoLayer(), { B }), hand);
  assert.equal(matrixFlops(twoLayer(), { B: 1 }), hand / B);
  assert.equal(matrixProducts(twoLayer(), { B }).length, 5);
});

test('saved activations of the two-layer product: h (for dW2) and z (for d(z²)), nothing fed or trained', () => {
  const B = 7;
  const s = savedActivations(twoLayer(), { B });
  assert.equal(s.count, 2);
  assert.equal(s.bytes, 4 * (B * 4 + B * 5));
  assert.deepEqual(s.largest.map((r) => r.shape), [[B, 5], [B, 4]]);
});

test('batched MatMul with broadcasting and Gemm with transposes', () => {
  const g = new Graph('shapes');
  const a = g.input('a', 'float32', [2, 3, 'T', 4]);
  const b = g.input('b', 'float32', [4, 6]);
  g.output('y', op.matmul(a, b)); // 2·3 products of [T,4]·[4,6]
  const c = g.input('c', 'float32', [5, 'T']); // Cᵀ is [T,5]
  const d = g.input('d', 'float32', [9, 5]); // Dᵀ is [5,9]
  g.output('e', op.gemm(c, d, { transA: true, transB: true })); // [T,5]·[5,9]
  g.output('unused', op.matmul(b, g.input('f', 'float32', [6, 100])));
  g.outputs.pop(); // a product no output depends on is not run, so not counted
  const T = 11;
  assert.equal(matrixFlops(g, { T }), 2 * 6 * T * 4 * 6 + 2 * T * 5 * 9);
  const [mm, gm] = matrixProducts(g, { T });
  assert.deepEqual([mm.batch, mm.m, mm.k, mm.n], [6, T, 4, 6]);
  assert.deepEqual([gm.m, gm.k, gm.n, gm.transA, gm.transB], [T, 5, 9, true, true]);
  assert.equal(savedActivations(g, { T }).bytes, 0); // no gradients: nothing kept for a backward pass
  assert.throws(() => matrixFlops(g, {}), /symbolic dim 'T' has no value/);
});
