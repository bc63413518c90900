// The int8 frozen base (src/quant/, src/graph/quantized.ts) against a PyTorch
// reference (tools/reference/quant_int8.py → test/fixtures/quant_int8.json,
// inputs drawn there with seed 0): the per-output-channel codes, the forward of
// DynamicQuantizeMatMul as its docs define it (1e-5), the input gradient both
// as the reference's transcription of the row-normalized quantized product
// (1e-5) and against autograd through the dequantized weight within the
// per-element bound the row normalization gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { toModelProto } from '../src/onnx/emit.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { quantizeInt8 } from '../src/quant/int8.ts';
import { markInt8 } from '../src/quant/quantized_weights.ts';
import { frozenLinear } from '../src/quant/frozen_linear.ts';
import { maxRelErr, transpose2d } from './helpers/arrays.ts';

const F = JSON.parse(fs.readFileSync(new URL('./fixtures/quant_int8.json', import.meta.url), 'utf8'));
const { M, K, N } = F as { M: number; K: number; N: number };

test('int8 quantization: per-output-channel absmax codes and scales equal the reference in both layouts', () => {
  const W = Float32Array.from(F.W_out_in);
  const a = quantizeInt8(W, K, N, 'out_in');
  const b = quantizeInt8(transpose2d(W, N, K), K, N, 'in_out');
  assert.deepEqual(Array.from(a.scales), Array.from(Float32Array.from(F.scales)));
  assert.deepEqual(Array.from(a.codes), Array.from(transpose2d(F.codes_out_in, N, K)), 'codes [in, out]');
  assert.deepEqual(b, a);
  assert.throws(() => quantizeInt8(new Float32Array(3), 2, 2, 'out_in'), /3 values/);
  assert.throws(() => quantizeInt8(Float32Array.from([1, NaN, 0, 0]), 2, 2, 'out_in'), /not finite/);
});

for (const layout of ['out_in', 'in_out'] as const) {
  test(`int8 base (${layout}): forward = DynamicQuantizeMatMul's definition (1e-5), input gradient within the row-normalization bound of autograd`, async () => {
    const Wdata = layout === 'out_in' ? Float32Array.from(F.W_out_in) : transpose2d(F.W_out_in, N, K);
    markInt8(Wdata, K, N, layout);
    const g = new Graph('int8');
    const x = g.param('x', [M, K], Float32Array.from(F.X));
    const W = g.weight('W', Wdata, layout === 'out_in' ? [N, K] : [K, N]);
    const y = frozenLinear(layout, x, W, g.weight('bias', Float32Array.from(F.bias), [N]));
    const R = g.input('R', 'float32', [M, N]);
    const [dx] = grad(op.reduceSum(op.mul(y, R), [0, 1], false), [x]);
    g.output('y', y);
    g.output('dx', dx);
    // The float32 weight never reaches onnxruntime: only its codes and scales.
    const inits = toModelProto(g).graph!.initializer!.map((t) => t.name);
    assert.ok(!inits.includes('W') && inits.includes('W.int8') && inits.includes('W.int8_scale'), inits.join(', '));
    const c = await CompiledGraph.compile(g, { threads: 1 });
    const out = await c.run({ x: { data: Float32Array.from(F.X), dims: [M, K] }, R: { data: Float32Array.from(F.R), dims: [M, N] } });
    await c.release();
    const Y = out.y.data as Float32Array, dX = out.dx.data as Float32Array;
    assert.ok(maxRelErr(Y, F.Y) <= 1e-5, `forward: ${maxRelErr(Y, F.Y)}`);
    assert.ok(maxRelErr(dX, F.dX_quant) <= 1e-5, `input gradient vs the transcription: ${maxRelErr(dX, F.dX_quant)}`);
    for (let i = 0; i < M * K; i++) {
      const err = Math.abs(dX[i] - F.dX_exact[i]);
      assert.ok(err <= F.dX_bound[i] * (1 + 1e-4) + 1e-12, `dX[${i}]: |${dX[i]} − ${F.dX_exact[i]}| = ${err} > bound ${F.dX_bound[i]}`);
    }
  });
}
