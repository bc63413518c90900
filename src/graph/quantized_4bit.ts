// Products with a 4-bit frozen weight on onnxruntime's com.microsoft CPU
// kernels (src/quant/int4.ts, src/quant/nf4.ts define the codes):
//   int4: MatMulNBits (bits 4, accuracy_level 4: the kernel quantizes each
//         block of the activation rows to int8 and multiplies in integers);
//   nf4:  MatMulBnb4 (quant_type 1 = NF4: the kernel dequantizes the weight
//         to float32 and runs a float32 GEMM).
// Both compute x·W̃ᵀ with W̃ [N, K]. Their input gradients (autodiff/rules.ts):
// int4 through a copy of the same codes packed along N (square tiles: one
// scale per tile, so the copy dequantizes to exactly W̃ᵀ); nf4 through W̃
// dequantized in the graph at every run (MatMulBnb4's transB = 0 computes a
// wrong product in onnxruntime 1.30), then a float32 MatMul.

import { Value, ShapeError } from './ir.ts';
import * as op from './ops.ts';
import { MS_DOMAIN } from './quantized.ts';

/**
 * bitsandbytes' NF4 levels (the quantiles of N(0, 1) scaled to [−1, 1] with
 * an exact 0), code i → NF4_LEVELS[i], as MatMulBnb4 reads them.
 */
export const NF4_LEVELS = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** MatMulNBits' B for a weight W̃ [N, K]: codes [N, kBlocks, blockSize/2], scales [N·kBlocks], zero points [N·ceil(kBlocks/2)] (absent: 8). */
export interface NBitsLeaves {
  packed: Value;
  scales: Value;
  zeroPoints?: Value;
  K: number;
  N: number;
  blockSize: number;
}

/** The copy of each forward B packed along the other dimension (W̃ᵀ), for the input gradient. */
const transposedCopies = new WeakMap<Value, () => NBitsLeaves>();

function checkNBits(w: NBitsLeaves) {
  const kBlocks = Math.ceil(w.K / w.blockSize);
  const want = [w.N, kBlocks, w.blockSize / 2];
  if (w.packed.dtype !== 'uint8' || w.packed.shape.join() !== want.join()) throw new ShapeError(`MatMulNBits: codes must be uint8 [${want}], got ${w.packed.describe()}`);
  if (w.scales.dtype !== 'float32' || w.scales.shape.join() !== String(w.N * kBlocks)) throw new ShapeError(`MatMulNBits: scales must be float32 [${w.N * kBlocks}], got ${w.scales.describe()}`);
}

/**
 * y = x·W̃ᵀ by MatMulNBits, x [M, K] float32 → [M, N]. `transposed`: makes
 * the same codes packed for W̃ᵀ ([K, nBlocks, …]) when the input gradient is
 * built (graphs without a backward never hold them).
 */
export function matMulNBits(x: Value, w: NBitsLeaves, transposed?: () => NBitsLeaves): Value {
  if (x.dtype !== 'float32' || x.rank !== 2 || x.shape[1] !== w.K) throw new ShapeError(`MatMulNBits: x must be float32 [M, ${w.K}], got ${x.describe()}`);
  checkNBits(w);
  if (transposed) transposedCopies.set(w.packed, transposed);
  const attrs = { K: w.K, N: w.N, bits: 4, block_size: w.blockSize, accuracy_level: 4 };
  return x.graph.addNode('MatMulNBits', [x, w.packed, w.scales, w.zeroPoints ?? null], [{ dtype: 'float32', shape: [x.shape[0], w.N] }], attrs, MS_DOMAIN)[0];
}

/** dX = dY·W̃ for y = MatMulNBits(x, B): MatMulNBits of dY with B's transposed copy. */
export function nbitsInputGrad(gy: Value, B: Value): Value {
  const make = transposedCopies.get(B);
  if (!make) throw new Error(`MatMulNBits: no transposed copy of '${B.leaf?.name ?? 'B'}' was given, so its input gradient cannot be formed (pass it to matMulNBits)`);
  return matMulNBits(gy, make());
}

/** The 4-bit codes of `packed` [..., bytes] as int32 [..., 2·bytes], the even index in the low nibble (MatMulNBits). */
function unpackNibbles(packed: Value): Value {
  const g = packed.graph;
  const hi = op.cast(g.addNode('BitShift', [packed, g.const(Uint8Array.from([4]), [], 'uint8')], [{ dtype: 'uint8', shape: packed.shape }], { direction: 'RIGHT' })[0], 'int32');
  const lo = op.sub(op.cast(packed, 'int32'), op.mul(hi, g.const(Int32Array.from([16]), [], 'int32')));
  const axis = packed.rank;
  const both = op.concat([lo, hi].map((v) => op.unsqueeze(v, [axis])), axis);
  return op.reshape(both, [...packed.shape.slice(0, -1), 2 * (packed.shape.at(-1) as number)] as number[]);
}

/** W̃ [N, K] float32 from MatMulNBits' codes, computed at run time: (q − z)·s. */
export function dequantizeNBits(w: NBitsLeaves): Value {
  checkNBits(w);
  const g = w.packed.graph, kBlocks = Math.ceil(w.K / w.blockSize);
  const codes = unpackNibbles(w.packed); // [N, kBlocks, blockSize]
  const zeros = w.zeroPoints ? op.slice(unpackNibbles(op.reshape(w.zeroPoints, [w.N, Math.ceil(kBlocks / 2)])), [0], [kBlocks], [1]) : g.const(Int32Array.from([8]), [], 'int32');
  const centred = op.cast(op.sub(codes, w.zeroPoints ? op.unsqueeze(zeros, [2]) : zeros), 'float32');
  const full = op.reshape(op.mul(centred, op.reshape(w.scales, [w.N, kBlocks, 1])), [w.N, kBlocks * w.blockSize]);
  return kBlocks * w.blockSize === w.K ? full : op.slice(full, [0], [w.K], [1]);
}

/** MatMulBnb4's attributes: W̃ [N, K] flattened in blocks of `blockSize`. */
export interface Bnb4Shape {
  K: number;
  N: number;
  blockSize: number;
}

/** y = x·W̃ᵀ by MatMulBnb4 (NF4), x [M, K] float32 → [M, N]. */
export function matMulBnb4(x: Value, packed: Value, absmax: Value, s: Bnb4Shape): Value {
  if (x.dtype !== 'float32' || x.rank !== 2 || x.shape[1] !== s.K) throw new ShapeError(`MatMulBnb4: x must be float32 [M, ${s.K}], got ${x.describe()}`);
  checkBnb4(packed, absmax, s);
  return x.graph.addNode('MatMulBnb4', [x, packed, absmax], [{ dtype: 'float32', shape: [x.shape[0], s.N] }], { K: s.K, N: s.N, block_size: s.blockSize, quant_type: 1 }, MS_DOMAIN)[0];
}

function checkBnb4(packed: Value, absmax: Value, s: Bnb4Shape) {
  const numel = s.N * s.K;
  if (packed.dtype !== 'uint8' || packed.shape.join() !== String(Math.ceil(numel / 2))) throw new ShapeError(`MatMulBnb4: codes must be uint8 [${Math.ceil(numel / 2)}], got ${packed.describe()}`);
  if (absmax.dtype !== 'float32' || absmax.shape.join() !== String(Math.ceil(numel / s.blockSize))) throw new ShapeError(`MatMulBnb4: absmax must be float32 [${Math.ceil(numel / s.blockSize)}], got ${absmax.describe()}`);
}

/** NF4 level pairs of every byte value: row b = [level of b's high nibble, level of its low nibble]. */
const NF4_BYTE_PAIRS = Float32Array.from({ length: 512 }, (_, i) => NF4_LEVELS[i & 1 ? (i >> 1) & 15 : (i >> 1) >> 4]);

/**
 * A float32 zero computed at run time from `v`'s first (symbolic) dimension:
 * added to a constant, it ties a subgraph of constants to the run, so
 * onnxruntime does not fold it into a float32 initializer when the session is
 * created (which would hold the whole dequantized weight in memory).
 */
function runtimeZero(v: Value): Value {
  return op.mul(op.cast(op.slice(op.shapeOf(v), [0], [1], [0]), 'float32'), 0);
}

/**
 * W̃ [N, K] float32 from NF4 codes: NF4[code]·absmax of its block (one Gather
 * of each byte's two levels, then the block scales). With `runtime` (a value
 * whose first dimension is symbolic: the gradient) it is computed at every run
 * instead of being folded into a float32 constant at session creation.
 */
export function dequantizeBnb4(packed: Value, absmax: Value, s: Bnb4Shape, runtime?: Value): Value {
  checkBnb4(packed, absmax, s);
  const g = packed.graph, numel = s.N * s.K, blocks = Math.ceil(numel / s.blockSize), bytes = packed.shape[0] as number;
  let table = g.const(NF4_BYTE_PAIRS, [256, 2], 'float32');
  if (runtime) table = op.add(table, runtimeZero(runtime));
  let flat = op.reshape(op.gather(table, op.cast(packed, 'int32')), [2 * bytes]);
  const pad = blocks * s.blockSize - 2 * bytes;
  if (pad > 0) flat = op.concat([flat, g.const(new Float32Array(pad), [pad], 'float32')], 0);
  const scaled = op.reshape(op.mul(op.reshape(flat, [blocks, s.blockSize]), op.reshape(absmax, [blocks, 1])), [blocks * s.blockSize]);
  return op.reshape(blocks * s.blockSize === numel ? scaled : op.slice(scaled, [0], [numel], [0]), [s.N, s.K]);
}
