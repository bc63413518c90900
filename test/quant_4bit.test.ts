// The 4-bit frozen bases (src/quant/nf4.ts, int4.ts, src/graph/quantized_4bit.ts)
// against a PyTorch reference (tools/reference/quant_4bit.py →
// test/fixtures/quant_4bit.json, inputs drawn there with seed 0): the codes
// exactly (nf4's 16 levels rebuilt there from the normal quantiles), the
// forward products as the kernels define them (1e-5 of max|y|), and the input
// gradient against autograd through the dequantized weight (nf4: 1e-5; int4:
// the level-4 transcription 1e-5 and the per-element bound of its int8
// activation blocks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { toModelProto } from '../src/onnx/emit.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { NF4_LEVELS, quantizeNf4 } from '../src/quant/nf4.ts';
import { QUANT_FORMATS } from '../src/quant/formats.ts';
import { markQuantized } from '../src/quant/quantized_weights.ts';
import { frozenLinear, frozenWeight } from '../src/quant/frozen_linear.ts';
import { maxRelErr, transpose2d } from './helpers/arrays.ts';

const F = JSON.parse(fs.readFileSync(new URL('./fixtures/quant_4bit.json', import.meta.url), 'utf8'));
const { M, K, N } = F as { M: number; K: number; N: number };

test('nf4: the 16 levels equal the normal-quantile construction; codes and absmax equal the reference in both layouts', () => {
  for (let i = 0; i < 16; i++) assert.ok(Math.abs(NF4_LEVELS[i] - F.nf4_levels[i]) <= 2e-7, `level ${i}: ${NF4_LEVELS[i]} vs ${F.nf4_levels[i]}`);
  const W = Float32Array.from(F.W_out_in);
  const a = quantizeNf4(W, K, N, 'out_in', F.nf4_block);
  assert.deepEqual(Array.from(a.packed), F.nf4_packed);
  assert.deepEqual(Array.from(a.absmax), Array.from(Float32Array.from(F.nf4_absmax)));
  assert.deepEqual(quantizeNf4(transpose2d(W, N, K), K, N, 'in_out', F.nf4_block), a);
  assert.throws(() => quantizeNf4(W, K, N, 'out_in', 48), /block size/);
});

test('int4: square-tile codes, scales and zero points equal the reference, and the transposed copy holds the same codes packed along N', () => {
  const W = Float32Array.from(F.W_out_in);
  for (const [data, layout] of [[W, 'out_in'], [transpose2d(W, N, K), 'in_out']] as const) {
    const f = QUANT_FORMATS.int4.quantize(data, K, N, layout);
    assert.deepEqual(Array.from(f.q.packed), F.int4_packed, layout);
    assert.deepEqual(Array.from(f.q.scales), Array.from(Float32Array.from(F.int4_scales)), layout);
    assert.deepEqual(Array.from(f.q.zeroPoints!), F.int4_zeros, layout);
    assert.deepEqual(Array.from(f.transposed().packed), F.int4T_packed, layout);
  }
});

for (const dtype of ['nf4', 'int4'] as const) {
  for (const layout of ['out_in', 'in_out'] as const) {
    test(`${dtype} base (${layout}): forward and input gradient equal the reference; DoRA's view of W is the dequantized weight`, async () => {
      const Wdata = layout === 'out_in' ? Float32Array.from(F.W_out_in) : transpose2d(F.W_out_in, N, K);
      markQuantized(Wdata, dtype, K, N, layout);
      const g = new Graph(dtype);
      const x = g.param('x', [M, K], Float32Array.from(F.X));
      const W = g.weight('W', Wdata, layout === 'out_in' ? [N, K] : [K, N]);
      const y = frozenLinear(layout, x, W);
      const R = g.input('R', 'float32', [M, N]);
      const [dx] = grad(op.reduceSum(op.mul(y, R), [0, 1], false), [x]);
      g.output('y', y);
      g.output('dx', dx);
      g.output('w', frozenWeight(layout, W));
      // The float32 weight never reaches onnxruntime: only its codes.
      const inits = toModelProto(g).graph!.initializer!.map((t) => t.name);
      assert.ok(!inits.includes('W') && inits.includes(`W.${dtype}`), inits.join(', '));
      const c = await CompiledGraph.compile(g, { threads: 1 });
      const out = await c.run({ x: { data: Float32Array.from(F.X), dims: [M, K] }, R: { data: Float32Array.from(F.R), dims: [M, N] } });
      await c.release();
      const Y = out.y.data as Float32Array, dX = out.dx.data as Float32Array, w = out.w.data as Float32Array;
      if (dtype === 'nf4') {
        assert.ok(maxRelErr(Y, F.Y_nf4) <= 1e-5, `forward: ${maxRelErr(Y, F.Y_nf4)}`);
        assert.ok(maxRelErr(dX, F.dX_nf4) <= 1e-5, `input gradient vs autograd: ${maxRelErr(dX, F.dX_nf4)}`);
      } else {
        assert.ok(maxRelErr(Y, F.Y_int4) <= 1e-5, `forward vs the level-4 transcription: ${maxRelErr(Y, F.Y_int4)}`);
        assert.ok(maxRelErr(dX, F.dX_int4) <= 1e-5, `input gradient vs the level-4 transcription: ${maxRelErr(dX, F.dX_int4)}`);
        for (let i = 0; i < M * K; i++) {
          const err = Math.abs(dX[i] - F.dX_int4_exact[i]);
          assert.ok(err <= F.dX_int4_bound[i] * (1 + 1e-4) + 1e-12, `dX[${i}]: |${dX[i]} − ${F.dX_int4_exact[i]}| = ${err} > bound ${F.dX_int4_bound[i]}`);
        }
      }
      // frozenWeight: the dequantized W̃ in the site's layout (checked against y's float product on the reference's side)
      const wOutIn = layout === 'out_in' ? w : transpose2d(w, K, N);
      const yFromW = new Float64Array(M * N);
      for (let i = 0; i < M; i++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) yFromW[i * N + n] += F.X[i * K + k] * wOutIn[n * K + k];
      assert.ok(maxRelErr(yFromW, dtype === 'nf4' ? F.Y_nf4 : F.Y_int4_exact) <= 1e-5, `x·frozenWeight: ${maxRelErr(yFromW, dtype === 'nf4' ? F.Y_nf4 : F.Y_int4_exact)}`);
    });
  }
}
