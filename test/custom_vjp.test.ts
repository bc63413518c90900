// Graph.setCustomVjp (fused backward of a composite) and the fused GELU backward
// (which recomputes erf from the GELU input instead of keeping forward values).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, Value } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { checkGradient } from './helpers/fd.ts';
import { savedActivations } from '../src/graph/cost.ts';

/** The erf GELU as five plain nodes, differentiated by the per-node rules. */
const geluUnfused = (x: Value) => op.mul(op.mul(x, 0.5), op.add(op.erf(op.mul(x, Math.SQRT1_2)), 1));

test('fused GELU backward equals the per-node-rule backward (float32, |x| up to 9)', async () => {
  const n = 2001;
  const xs = Float32Array.from({ length: n }, (_, i) => -9 + (18 * i) / (n - 1));
  const gs = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const g = new Graph('gelu');
  const x = g.input('x', 'float32', [n]);
  const r = g.input('r', 'float32', [n]);
  const loss = (y: Value) => op.reduceSum(op.mul(y, r), [0], false);
  const [fused] = grad(loss(op.gelu(x)), [x]);
  const [plain] = grad(loss(geluUnfused(x)), [x]);
  g.output('fused', fused);
  g.output('plain', plain);
  g.output('yf', op.gelu(x));
  g.output('yp', geluUnfused(x));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const out = await cg.run({ x: { data: xs, dims: [n] }, r: { data: gs, dims: [n] } });
  await cg.release();
  const [a, b, ya, yb] = ['fused', 'plain', 'yf', 'yp'].map((k) => out[k].data as Float32Array);
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= 2e-6 * Math.max(1, Math.abs(b[i])), `x=${xs[i]}: fused ${a[i]} vs per-node ${b[i]}`);
    assert.ok(Math.abs(ya[i] - yb[i]) <= 1e-6 * Math.max(1, Math.abs(yb[i])), `x=${xs[i]}: forward ${ya[i]} vs ${yb[i]}`);
  }
});

test('GELU backward keeps only its input: nothing else of the forward is read by the backward', () => {
  const g = new Graph();
  const x = g.input('x', 'float32', ['N', 16]);
  const w = g.param('w', [16, 16]);
  const h = op.matmul(x, w); // the GELU input, a forward intermediate
  const loss = op.reduceSum(op.gelu(h), [0, 1], false);
  g.output('loss', loss);
  g.output('grad.w', grad(loss, [w])[0]);
  const saved = savedActivations(g, { N: 4 });
  assert.equal(saved.count, 1, JSON.stringify(saved.largest));
  assert.deepEqual(saved.largest[0], { op: 'MatMul', shape: [4, 16], bytes: 4 * 16 * 4 });
});

test('custom vjp: inner values used elsewhere still get their own gradient (finite differences)', async () => {
  // y = custom(a, b) = a·b with a hand-written vjp; the inner product p = a·b is also used directly.
  await checkGradient((g, [a, b]) => {
    const p = op.mul(a, b);
    const y = g.setCustomVjp(op.mul(p, 2), [a, b], (gy, need) => [need[0] ? op.mul(op.mul(gy, b), 2) : null, need[1] ? op.mul(op.mul(gy, a), 2) : null]);
    return op.add(op.mul(y, y), op.exp(p));
  }, [{ shape: [2, 3] }, { shape: [2, 3] }]);
});

test('custom vjp falls back to the per-node rules when its inputs need no gradient', async () => {
  const g = new Graph();
  const x = g.input('x', 'float32', [3]);
  const w = g.param('w', [3], Float32Array.from([1, 2, 3]));
  const inner = op.mul(x, w); // differentiable through w, but the vjp below only declares x
  const y = g.setCustomVjp(op.mul(inner, 3), [x], () => [null]);
  const [gw] = grad(op.reduceSum(y, [0], false), [w]);
  g.output('gw', gw);
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const out = await cg.run({ x: { data: Float32Array.from([1, -1, 2]), dims: [3] }, w: { data: w.leaf!.data!, dims: [3] } });
  await cg.release();
  assert.deepEqual(Array.from(out.gw.data as Float32Array), [3, -3, 6]);
});
