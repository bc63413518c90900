// One vector-Jacobian product rule per op. A rule receives the node, the
// gradient of each output (null where none flows) and which inputs need a
// gradient; it returns one gradient (or null) per input. Rules build new graph
// nodes with the same op builders the forward pass uses.

import { Node, Shape, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { quantizedInputGrad } from '../graph/quantized.ts';
import { dequantizeBnb4, nbitsInputGrad } from '../graph/quantized_4bit.ts';
import { sameDim } from '../graph/shapes.ts';

export interface VjpContext {
  node: Node;
  gy: (Value | null)[];
  need: boolean[];
}
export type VjpRule = (ctx: VjpContext) => (Value | null)[];

/** Sum a broadcast gradient back down to `shape`. */
export function unbroadcast(g: Value, shape: Shape): Value {
  let out = g;
  const lead = g.rank - shape.length;
  if (lead > 0) out = op.reduceSum(out, [...Array(lead).keys()], false);
  const axes: number[] = [];
  shape.forEach((d, i) => {
    if (d === 1 && out.shape[i] !== 1) axes.push(i);
  });
  if (axes.length) out = op.reduceSum(out, axes, true);
  return out;
}

function swapLast(x: Value): Value {
  const perm = [...x.shape.keys()];
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return op.transpose(x, perm);
}

function intsOf(v: Value | null): number[] {
  const d = v?.leaf?.data;
  if (!d || !(d instanceof BigInt64Array)) throw new Error(`autodiff: expected a constant int64 tensor, got ${v?.describe()}`);
  return Array.from(d, Number);
}

/** Element count over `axes` of x, as a float scalar tensor (dynamic when dims are symbolic). */
function countOver(x: Value, axes: number[]): Value {
  const dims = axes.map((a) => x.shape[a]);
  if (dims.every((d) => typeof d === 'number')) return x.graph.scalar((dims as number[]).reduce((p, d) => p * d, 1), x.dtype);
  const picked = op.gather(op.shapeOf(x), x.graph.ints(axes), 0);
  const prod = op.reduceProdAll(picked);
  return op.cast(prod, x.dtype);
}

/** Gradient of a reduction: restore reduced axes (keepdims) and broadcast to x. */
function spreadReduced(g: Value, x: Value, axes: number[], keepdims: boolean): Value {
  const gk = keepdims ? g : op.unsqueeze(g, axes);
  return op.expandLike(gk, x);
}

const attrInt = (n: Node, k: string, dflt: number) => (n.attrs[k] as number | undefined) ?? dflt;
const attrFloat = (n: Node, k: string, dflt: number) => (n.attrs[k] as { float: number } | undefined)?.float ?? dflt;

export const rules: Record<string, VjpRule> = {
  Identity: ({ gy }) => [gy[0]],
  Add: ({ node: { inputs: [a, b] }, gy: [g], need }) => [need[0] ? unbroadcast(g!, a!.shape) : null, need[1] ? unbroadcast(g!, b!.shape) : null],
  Sub: ({ node: { inputs: [a, b] }, gy: [g], need }) => [need[0] ? unbroadcast(g!, a!.shape) : null, need[1] ? unbroadcast(op.neg(g!), b!.shape) : null],
  Mul: ({ node: { inputs: [a, b] }, gy: [g], need }) => [
    need[0] ? unbroadcast(op.mul(g!, b!), a!.shape) : null,
    need[1] ? unbroadcast(op.mul(g!, a!), b!.shape) : null,
  ],
  Div: ({ node: { inputs: [a, b], outputs: [y] }, gy: [g], need }) => [
    need[0] ? unbroadcast(op.div(g!, b!), a!.shape) : null,
    need[1] ? unbroadcast(op.neg(op.div(op.mul(g!, y), b!)), b!.shape) : null,
  ],
  Max: ({ node: { inputs: [a, b] }, gy: [g], need }) => {
    // The larger input takes the gradient; ties go to the first (like TF's Maximum).
    const bWins = op.less(a!, b!);
    return [need[0] ? unbroadcast(op.where(bWins, 0, g!), a!.shape) : null, need[1] ? unbroadcast(op.where(bWins, g!, 0), b!.shape) : null];
  },
  Neg: ({ gy: [g] }) => [op.neg(g!)],
  Exp: ({ node: { outputs: [y] }, gy: [g] }) => [op.mul(g!, y)],
  Log: ({ node: { inputs: [x] }, gy: [g] }) => [op.div(g!, x!)],
  Sqrt: ({ node: { outputs: [y] }, gy: [g] }) => [op.div(op.mul(g!, 0.5), y)],
  Pow: ({ node: { inputs: [x, p] }, gy: [g], need }) => {
    if (need[1]) throw new Error('autodiff: Pow with a differentiable exponent is not supported');
    const e = Number((p!.leaf!.data as Float32Array)[0]);
    return [op.mul(g!, op.mul(op.pow(x!, e - 1), e)), null];
  },
  Tanh: ({ node: { outputs: [y] }, gy: [g] }) => [op.mul(g!, op.sub(y.graph.scalar(1, y.dtype), op.mul(y, y)))],
  Sigmoid: ({ node: { outputs: [y] }, gy: [g] }) => [op.mul(g!, op.mul(y, op.sub(y.graph.scalar(1, y.dtype), y)))],
  // The 0/1 mask as Cast(y > 0): onnxruntime's broadcasting Where was ~3x slower here.
  Relu: ({ node: { outputs: [y] }, gy: [g] }) => [op.mul(g!, op.cast(op.greater(y, 0), y.dtype))],
  Erf: ({ node: { inputs: [x] }, gy: [g] }) => [op.mul(g!, op.mul(op.exp(op.neg(op.mul(x!, x!))), 2 / Math.sqrt(Math.PI)))],
  Sin: ({ node: { inputs: [x] }, gy: [g] }) => [op.mul(g!, op.cos(x!))],
  Cos: ({ node: { inputs: [x] }, gy: [g] }) => [op.neg(op.mul(g!, op.sin(x!)))],
  Abs: ({ node: { inputs: [x] }, gy: [g] }) => [op.mul(g!, op.sign(x!))],

  Softmax: ({ node, gy: [g] }) => {
    const y = node.outputs[0];
    const axis = node.attrs.axis as number;
    return [op.mul(y, op.sub(g!, op.reduceSum(op.mul(g!, y), [axis], true)))];
  },
  LogSoftmax: ({ node, gy: [g] }) => {
    const y = node.outputs[0];
    const axis = node.attrs.axis as number;
    return [op.sub(g!, op.mul(op.exp(y), op.reduceSum(g!, [axis], true)))];
  },

  MatMul: ({ node: { inputs: [a, b] }, gy: [g], need }) => {
    if (a!.rank === 2 && b!.rank === 2) {
      return [need[0] ? op.gemm(g!, b!, { transB: true }) : null, need[1] ? op.gemm(a!, g!, { transA: true }) : null];
    }
    let ga: Value | null = null, gb: Value | null = null;
    if (need[0]) ga = unbroadcast(op.matmul(g!, swapLast(b!)), a!.shape);
    if (need[1]) {
      if (b!.rank === 2) {
        // x[...,in] @ W[in,out]: fold the batch dims into one Gemm.
        const k = a!.shape[a!.rank - 1] as number, n = b!.shape[1] as number;
        gb = op.gemm(op.reshape(a!, [-1, k]), op.reshape(g!, [-1, n]), { transA: true });
      } else {
        gb = unbroadcast(op.matmul(swapLast(a!), g!), b!.shape);
      }
    }
    return [ga, gb];
  },

  Gemm: ({ node, gy: [g], need }) => {
    const [a, b, c] = node.inputs as Value[];
    const tA = attrInt(node, 'transA', 0) === 1, tB = attrInt(node, 'transB', 0) === 1;
    const alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
    let ga: Value | null = null, gb: Value | null = null, gc: Value | null = null;
    if (need[0]) ga = tA ? op.gemm(b, g!, { transA: tB, transB: true, alpha }) : op.gemm(g!, b, { transB: !tB, alpha });
    if (need[1]) gb = tB ? op.gemm(g!, a, { transA: true, transB: tA, alpha }) : op.gemm(a, g!, { transA: !tA, alpha });
    if (c && need[2]) gc = beta === 1 ? unbroadcast(g!, c.shape) : op.mul(unbroadcast(g!, c.shape), beta);
    return c ? [ga, gb, gc] : [ga, gb];
  },

  // A frozen int8 weight (src/quant/): the input gradient through the same codes; codes and scales get none.
  DynamicQuantizeMatMul: ({ node, gy: [g], need }) => {
    const [, codes, scales, , bias] = node.inputs;
    return [need[0] ? quantizedInputGrad(g!, codes!, scales!) : null, null, null, null, bias && need[4] ? unbroadcast(g!, bias.shape) : null];
  },

  // A frozen int4 weight: dX = dY·W̃ through the copy of the same codes packed along N (square tiles: exactly W̃ᵀ).
  MatMulNBits: ({ node, gy: [g], need }) => [need[0] ? nbitsInputGrad(g!, node.inputs[1]!) : null, ...node.inputs.slice(1).map(() => null)],

  // A frozen nf4 weight: dX = dY·W̃ with W̃ dequantized from the same codes at every run (not folded into a float32
  // constant: that would hold the fp32 weight in the training session); MatMulBnb4's transB = 0 is wrong in ORT 1.30.
  MatMulBnb4: ({ node, gy: [g], need }) => {
    const [, packed, absmax] = node.inputs as Value[];
    const s = { K: attrInt(node, 'K', 0), N: attrInt(node, 'N', 0), blockSize: attrInt(node, 'block_size', 0) };
    return [need[0] ? op.matmul(g!, dequantizeBnb4(packed, absmax, s, g!)) : null, null, null];
  },

  LayerNormalization: ({ node, gy: [g], need }) => {
    const [x, scale, bias] = node.inputs as Value[];
    const [, mean, invStd] = node.outputs;
    const xhat = op.mul(op.sub(x, mean), invStd);
    const H = [x.shape[x.rank - 1]];
    let gx: Value | null = null;
    if (need[0]) {
      const dxhat = op.mul(g!, scale);
      const m1 = op.reduceMean(dxhat, [-1], true);
      const m2 = op.reduceMean(op.mul(dxhat, xhat), [-1], true);
      gx = op.mul(invStd, op.sub(op.sub(dxhat, m1), op.mul(xhat, m2)));
    }
    const gs = need[1] ? unbroadcast(op.mul(g!, xhat), H) : null;
    const gb = bias && need[2] ? unbroadcast(g!, H) : null;
    return bias ? [gx, gs, gb] : [gx, gs];
  },

  Gather: ({ node, gy: [g], need }) => {
    const [data, idx] = node.inputs as Value[];
    if (!need[0]) return [null, null];
    if ((node.attrs.axis as number) !== 0) throw new Error('autodiff: Gather gradient is implemented for axis 0 only');
    const gd = op.scatterNDAdd(op.zerosLike(data), op.unsqueeze(idx, [-1]), g!);
    return [gd, null];
  },
  GatherElements: ({ node, gy: [g], need }) => {
    const [data, idx] = node.inputs as Value[];
    return [need[0] ? op.scatterElementsAdd(op.zerosLike(data), idx, g!, node.attrs.axis as number) : null, null];
  },

  Reshape: ({ node: { inputs: [x] }, gy: [g] }) => [
    x!.shape.every((d) => typeof d === 'number') ? op.reshape(g!, x!.shape as number[]) : op.reshapeLike(g!, x!),
    null,
  ],
  Transpose: ({ node, gy: [g] }) => {
    const perm = node.attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [op.transpose(g!, inv)];
  },
  Unsqueeze: ({ node, gy: [g] }) => [op.squeeze(g!, intsOf(node.inputs[1])), null],
  Squeeze: ({ node, gy: [g] }) => [op.unsqueeze(g!, intsOf(node.inputs[1])), null],
  Expand: ({ node: { inputs: [x] }, gy: [g] }) => [unbroadcast(g!, x!.shape), null],
  Cast: ({ node: { inputs: [x] }, gy: [g] }) => [op.cast(g!, x!.dtype)],

  Concat: ({ node, gy: [g], need }) => {
    const axis = node.attrs.axis as number;
    const sizes = node.inputs.map((x) => x!.shape[axis]);
    if (!sizes.every((d) => typeof d === 'number')) throw new Error('autodiff: Concat gradient needs static sizes on the concat axis');
    const parts = op.split(g!, sizes as number[], axis);
    return parts.map((p, i) => (need[i] ? p : null));
  },
  Split: ({ node, gy, need }) => {
    if (!need[0]) return [null, null];
    const axis = node.attrs.axis as number;
    const pieces = node.outputs.map((o, i) => gy[i] ?? op.zerosLike(o));
    return [op.concat(pieces, axis), null];
  },
  Slice: ({ node, gy: [g] }) => {
    const x = node.inputs[0]!;
    const starts = intsOf(node.inputs[1]), axes = intsOf(node.inputs[3]).map((a) => (a < 0 ? a + x.rank : a));
    const none = [null, null, null, null, null].slice(0, node.inputs.length - 1);
    const static_ = axes.every((a) => typeof x.shape[a] === 'number' && typeof node.outputs[0].shape[a] === 'number');
    if (static_) {
      const pads = new Array(2 * x.rank).fill(0);
      axes.forEach((a, i) => {
        const d = x.shape[a] as number, o = node.outputs[0].shape[a] as number;
        const s = Math.min(Math.max(starts[i] < 0 ? starts[i] + d : starts[i], 0), d);
        pads[a] = s;
        pads[a + x.rank] = d - s - o;
      });
      return [op.pad(g!, pads, x.shape), ...none];
    }
    // A slice of run-time extent (a position table cut to the batch's length): the zeros that pad the
    // gradient back are counted at run time, end = dim − start − sliced length.
    if (starts.some((s) => s < 0)) throw new Error('autodiff: the gradient of a Slice with run-time sizes needs non-negative starts');
    const dims = op.shapeOf(x), outDims = op.shapeOf(g!);
    const begin = Array.from({ length: x.rank }, (_, a) => x.graph.ints([axes.includes(a) ? starts[axes.indexOf(a)] : 0]));
    const end = Array.from({ length: x.rank }, (_, a) => {
      if (!axes.includes(a)) return x.graph.ints([0]);
      const at = x.graph.ints([a]);
      return op.sub(op.sub(op.gather(dims, at, 0), starts[axes.indexOf(a)]), op.gather(outDims, at, 0));
    });
    return [op.padDynamic(g!, op.concat([...begin, ...end], 0), x.shape), ...none];
  },

  Where: ({ node: { inputs: [c, a, b] }, gy: [g], need }) => [
    null,
    need[1] ? unbroadcast(op.where(c!, g!, 0), a!.shape) : null,
    need[2] ? unbroadcast(op.where(c!, 0, g!), b!.shape) : null,
  ],

  ReduceSum: ({ node, gy: [g] }) => {
    const x = node.inputs[0]!;
    return [spreadReduced(g!, x, intsOf(node.inputs[1]), attrInt(node, 'keepdims', 1) === 1), null];
  },
  ReduceMean: ({ node, gy: [g] }) => {
    const x = node.inputs[0]!;
    const axes = node.attrs.axes as number[];
    return [op.div(spreadReduced(g!, x, axes, attrInt(node, 'keepdims', 1) === 1), countOver(x, axes))];
  },
  ReduceMax: ({ node, gy: [g] }) => {
    // Gradient goes to every position equal to the max (ties share it, like TF).
    const x = node.inputs[0]!;
    const axes = node.attrs.axes as number[];
    const keep = attrInt(node, 'keepdims', 1) === 1;
    const y = spreadReduced(node.outputs[0], x, axes, keep);
    return [op.where(op.equal(x, y), spreadReduced(g!, x, axes, keep), 0)];
  },
};

/** Ops whose outputs carry no gradient (comparisons, shapes, integer results). */
export const nonDifferentiable = new Set(['Equal', 'Less', 'Greater', 'Shape', 'ConstantOfShape', 'Sign', 'Round', 'ReduceProd']);

export function checkSameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => sameDim(d, b[i]));
}
