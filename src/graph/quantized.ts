// Products with an int8 weight on onnxruntime's quantized CPU kernels
// (com.microsoft contrib ops). The weight is codes Q [K, N] (int8) with one
// float32 scale per column (W = Q·diag(s)); the float activation is quantized
// per tensor at run time (uint8, asymmetric, by the kernel).

import { Value, ShapeError } from './ir.ts';
import * as op from './ops.ts';
import { dimsCompatible, fmt } from './shapes.ts';

export const MS_DOMAIN = 'com.microsoft';

function checkCodes(opName: string, codes: Value, scales: Value) {
  if (codes.dtype !== 'int8' || codes.rank !== 2) throw new ShapeError(`${opName}: codes must be int8 [K, N], got ${codes.describe()}`);
  if (scales.dtype !== 'float32' || scales.rank !== 1 || !dimsCompatible(scales.shape[0], codes.shape[1])) {
    throw new ShapeError(`${opName}: scales must be float32 [${codes.shape[1]}] (one per column of the codes), got ${scales.describe()}`);
  }
}

/**
 * y = x·(Q·diag(s)) (+ bias) by DynamicQuantizeMatMul: x [M, K] float32 is
 * quantized per tensor to uint8 (scale (max(x,0) − min(x,0))/255, zero point
 * round(−min/scale)), multiplied in integers with Q, scaled by x's scale·s.
 * Its gradient rule (autodiff/rules.ts) is `quantizedInputGrad`.
 */
export function dynamicQuantizeMatMul(x: Value, codes: Value, scales: Value, bias?: Value): Value {
  if (x.dtype !== 'float32' || x.rank !== 2) throw new ShapeError(`DynamicQuantizeMatMul: x must be float32 [M, K], got ${x.describe()}`);
  checkCodes('DynamicQuantizeMatMul', codes, scales);
  if (!dimsCompatible(x.shape[1], codes.shape[0])) throw new ShapeError(`DynamicQuantizeMatMul: inner dims differ: ${fmt(x.shape)} · ${fmt(codes.shape)}`);
  if (bias && (bias.dtype !== 'float32' || bias.rank !== 1 || !dimsCompatible(bias.shape[0], codes.shape[1]))) {
    throw new ShapeError(`DynamicQuantizeMatMul: bias must be float32 [${codes.shape[1]}], got ${bias.describe()}`);
  }
  const g = x.graph;
  return g.addNode('DynamicQuantizeMatMul', [x, codes, scales, null, bias ?? null], [{ dtype: 'float32', shape: [x.shape[0], codes.shape[1]] }], {}, MS_DOMAIN)[0];
}

/** Smallest row maximum divided by: an all-zero gradient row stays zero instead of 0/0. */
const TINY = 1e-30;

/**
 * dX = (dY·diag(s))·Qᵀ through the same int8 codes: G = dY·diag(s) (exact:
 * the column scales pass through the transpose), each row divided by its
 * absmax r_i (per-tensor activation quantization would otherwise give rows
 * of small gradient almost no levels), quantized per tensor to uint8
 * (DynamicQuantizeLinear), multiplied by Qᵀ with QGemm's transB (no second
 * copy of the codes, no Transpose at run time), and each row multiplied back
 * by r_i. Error bound per element: |dX − dY·Wᵀ|[i,k] ≤ r_i·(step/2)·Σ_n |Q[k,n]|
 * with step ≤ 2/255 the per-tensor scale of the normalized rows.
 */
export function quantizedInputGrad(gy: Value, codes: Value, scales: Value): Value {
  checkCodes('quantizedInputGrad', codes, scales);
  const g = gy.graph;
  const gs = op.mul(gy, scales);
  const rowMax = op.max2(op.reduceMax(op.abs(gs), [-1], true), TINY);
  const [q, qScale, qZero] = g.addNode('DynamicQuantizeLinear', [op.div(gs, rowMax)], [
    { dtype: 'uint8', shape: gy.shape },
    { dtype: 'float32', shape: [] },
    { dtype: 'uint8', shape: [] },
  ]);
  const zero = g.const(new Int8Array(1), [], 'int8');
  const [dx] = g.addNode('QGemm', [q, qScale, qZero, codes, g.scalar(1), zero], [{ dtype: 'float32', shape: [gy.shape[0], codes.shape[0]] }], { transB: 1 }, MS_DOMAIN);
  return op.mul(dx, rowMax);
}

/** Q·diag(s) as a float32 tensor [K, N], computed at run time (for methods that read the frozen weight itself). */
export function dequantize(codes: Value, scales: Value): Value {
  checkCodes('dequantize', codes, scales);
  return op.mul(op.cast(codes, 'float32'), scales);
}
