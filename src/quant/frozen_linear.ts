// The product of an activation with a frozen weight, in whatever form the
// weight was loaded (src/quant/quantized_weights.ts): onnxruntime's int8
// DynamicQuantizeMatMul, 4-bit MatMulNBits (int4) or MatMulBnb4 (nf4) for a
// weight quantized at load time, the float32 Gemm/MatMul otherwise.
// Trainable weights (full fine-tuning, modules_to_save copies) are graph
// params, never quantized.

import type { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { dequantize, dynamicQuantizeMatMul } from '../graph/quantized.ts';
import { dequantizeBnb4, dequantizeNBits, matMulBnb4, matMulNBits, type NBitsLeaves } from '../graph/quantized_4bit.ts';
import { kBlocksOf, type Int4Weight } from './int4.ts';
import { float32Of, quantizedFormOf } from './quantized_weights.ts';

type Layout = 'in_out' | 'out_in';

/** A graph weight made once per graph (a weight shared by several sites, a tied head, is one initializer). */
function leaf(g: Graph, name: string, data: Float32Array | Uint8Array | Int8Array, shape: number[], dtype: 'float32' | 'uint8' | 'int8' = 'float32'): Value {
  return g.leaf(name) ?? g.weight(name, data, shape, dtype);
}

function nbitsLeaves(g: Graph, name: string, q: Int4Weight): NBitsLeaves {
  const kBlocks = kBlocksOf(q.inFeatures, q.blockSize);
  return {
    packed: leaf(g, `${name}.int4`, q.packed, [q.outFeatures, kBlocks, q.blockSize / 2], 'uint8'),
    scales: leaf(g, `${name}.int4_scale`, q.scales, [q.scales.length]),
    zeroPoints: q.zeroPoints && leaf(g, `${name}.int4_zero`, q.zeroPoints, [q.zeroPoints.length], 'uint8'),
    K: q.inFeatures,
    N: q.outFeatures,
    blockSize: q.blockSize,
  };
}

type Quantized =
  | { dtype: 'int8'; codes: Value; scales: Value }
  | { dtype: 'int4'; w: NBitsLeaves; transposed: () => NBitsLeaves }
  | { dtype: 'nf4'; packed: Value; absmax: Value; K: number; N: number; blockSize: number };

/** The quantized form of W as graph weights, when W is a frozen weight loaded quantized. */
function quantizedLeaves(W: Value): Quantized | undefined {
  const l = W.leaf;
  if (l?.kind !== 'weight') return undefined;
  const f = quantizedFormOf(l.data);
  if (!f) return undefined;
  const g = W.graph;
  switch (f.dtype) {
    case 'int8':
      return { dtype: 'int8', codes: leaf(g, `${l.name}.int8`, f.q.codes, [f.q.inFeatures, f.q.outFeatures], 'int8'), scales: leaf(g, `${l.name}.int8_scale`, f.q.scales, [f.q.outFeatures]) };
    case 'int4':
      return { dtype: 'int4', w: nbitsLeaves(g, l.name, f.q), transposed: () => nbitsLeaves(g, `${l.name}.T`, f.transposed()) };
    case 'nf4':
      return {
        dtype: 'nf4', packed: leaf(g, `${l.name}.nf4`, f.q.packed, [f.q.packed.length], 'uint8'), absmax: leaf(g, `${l.name}.nf4_absmax`, f.q.absmax, [f.q.absmax.length]),
        K: f.q.inFeatures, N: f.q.outFeatures, blockSize: f.q.blockSize,
      };
  }
}

/** x [N, in] times the frozen W (stored in `layout`) plus bias: [N, out]. */
export function frozenLinear(layout: Layout, x: Value, W: Value, bias?: Value): Value {
  const q = quantizedLeaves(W);
  if (!q) return layout === 'in_out' ? op.linear(x, W, bias) : op.linearT(x, W, bias);
  if (q.dtype === 'int8') return dynamicQuantizeMatMul(x, q.codes, q.scales, bias);
  const y = q.dtype === 'int4' ? matMulNBits(x, q.w, q.transposed) : matMulBnb4(x, q.packed, q.absmax, q);
  return bias ? op.add(y, bias) : y;
}

/**
 * W as the base computes with it, in its own layout, dequantized at run time
 * from the codes (so the float32 weight never enters the graph) when it was
 * loaded quantized; W itself otherwise. For methods that read the frozen
 * weight (DoRA's norm, FourierFT's W + ΔW).
 */
export function frozenWeight(layout: Layout, W: Value): Value {
  const q = quantizedLeaves(W);
  if (!q) return W;
  let view: Value;
  if (q.dtype === 'int8') {
    const inOut = dequantize(q.codes, q.scales);
    view = layout === 'in_out' ? inOut : op.transpose(inOut, [1, 0]);
  } else {
    const outIn = q.dtype === 'int4' ? dequantizeNBits(q.w) : dequantizeBnb4(q.packed, q.absmax, q);
    view = layout === 'out_in' ? outIn : op.transpose(outIn, [1, 0]);
  }
  sourceOf.set(view, W.leaf!.data as Float32Array);
  return view;
}

/** The weight leaf's data behind each dequantized frozenWeight value. */
const sourceOf = new WeakMap<Value, Float32Array>();

/**
 * The float32 values of a frozen weight as the base computes with it, for
 * methods that derive frozen factors from W while the graph is built (LoRA-XS,
 * LoLDU, LaMDA): W's own data, or for a quantized weight (W or its
 * frozenWeight) the dequantized weight. Undefined when W is not a frozen weight.
 */
export function frozenWeightData(W: Value): Float32Array | undefined {
  const d = W.leaf ? W.leaf.data : sourceOf.get(W);
  return d instanceof Float32Array ? float32Of(d) : undefined;
}
