// Op builders. Each checks its inputs, infers dtype and shape, and appends one
// ONNX-equivalent node (opset 17 semantics) to the inputs' graph.

import { DType, Dim, Node, Shape, ShapeError, Value } from './ir.ts';
import { broadcastShapes, dimsCompatible, divDims, fmt, mulDims, normAxis } from './shapes.ts';

const FLOAT: DType[] = ['float32', 'float64'];

function one(x: Value, op: string, inputs: (Value | null)[], dtype: DType, shape: Shape, attrs = {}): Value {
  return x.graph.addNode(op, inputs, [{ dtype, shape }], attrs)[0];
}

function requireFloat(op: string, x: Value) {
  if (!FLOAT.includes(x.dtype)) throw new ShapeError(`${op}: expects a float tensor, got ${x.describe()}`);
}

function sameDtype(op: string, a: Value, b: Value) {
  if (a.dtype !== b.dtype) throw new ShapeError(`${op}: dtype mismatch: ${a.describe()} vs ${b.describe()}`);
}

/** Turn a JS number into a scalar of x's dtype so `op.mul(x, 0.5)` works. */
export function lift(x: Value, y: Value | number): Value {
  return typeof y === 'number' ? x.graph.scalar(y, x.dtype) : y;
}

// ---- elementwise binary ---------------------------------------------------

function binary(op: string, a: Value, b: Value | number, outDtype?: DType): Value {
  const bb = lift(a, b);
  sameDtype(op, a, bb);
  return one(a, op, [a, bb], outDtype ?? a.dtype, broadcastShapes(op, a.shape, bb.shape));
}

export const add = (a: Value, b: Value | number) => binary('Add', a, b);
export const sub = (a: Value, b: Value | number) => binary('Sub', a, b);
export const mul = (a: Value, b: Value | number) => binary('Mul', a, b);
export const div = (a: Value, b: Value | number) => binary('Div', a, b);
export const equal = (a: Value, b: Value | number) => binary('Equal', a, b, 'bool');
export const less = (a: Value, b: Value | number) => binary('Less', a, b, 'bool');
export const greater = (a: Value, b: Value | number) => binary('Greater', a, b, 'bool');
export const max2 = (a: Value, b: Value | number) => binary('Max', a, b);

/** x ** p for a constant exponent p. */
export function pow(x: Value, p: number): Value {
  requireFloat('Pow', x);
  return one(x, 'Pow', [x, x.graph.scalar(p, x.dtype)], x.dtype, x.shape);
}

// ---- elementwise unary ----------------------------------------------------

function unary(op: string, x: Value): Value {
  requireFloat(op, x);
  return one(x, op, [x], x.dtype, x.shape);
}
export const neg = (x: Value) => unary('Neg', x);
export const exp = (x: Value) => unary('Exp', x);
export const log = (x: Value) => unary('Log', x);
export const sqrt = (x: Value) => unary('Sqrt', x);
export const tanh = (x: Value) => unary('Tanh', x);
export const relu = (x: Value) => unary('Relu', x);
export const sigmoid = (x: Value) => unary('Sigmoid', x);
export const erf = (x: Value) => unary('Erf', x);
export const sin = (x: Value) => unary('Sin', x);
export const cos = (x: Value) => unary('Cos', x);
export const abs = (x: Value) => unary('Abs', x);
export const sign = (x: Value) => unary('Sign', x);
/** Round half to even (ONNX Round); no gradient (straight-through estimators wrap it in stopGradient). */
export const round = (x: Value) => unary('Round', x);
export const square = (x: Value) => mul(x, x);
export const identity = (x: Value) => one(x, 'Identity', [x], x.dtype, x.shape);

const LN_2_OVER_SQRT_2PI = Math.log(2 / Math.sqrt(2 * Math.PI));

/**
 * GELU, erf form (what BERT uses): x·Φ(x), Φ(x) = 0.5 + 0.5·erf(x/√2).
 * The forward is written as 0.5·(x·(1 + erf(x/√2))), the pattern onnxruntime
 * fuses into one Gelu kernel. The backward keeps only x and recomputes:
 * 2·gelu'(x) = 1 + erf(t) + x·exp(ln(2/√(2π)) − t²), t = x/√2 (formed as x·(1/√2),
 * not the forward's Div, so onnxruntime's common-subexpression elimination does
 * not merge it back into the forward and keep erf(t) alive). Keeping t and Φ
 * from the forward instead cost two more [B·T, ffn] tensors per layer (288 MiB
 * of BERT-base's 718 MiB at batch 8×128) for the same number of passes.
 */
export function gelu(x: Value): Value {
  const y = mul(mul(x, add(erf(div(x, Math.SQRT2)), 1)), 0.5);
  return x.graph.setCustomVjp(y, [x], (g, _need, [x]) => {
    const t = mul(x, Math.SQRT1_2);
    const twicePhi = exp(sub(x.graph.scalar(LN_2_OVER_SQRT_2PI, x.dtype), mul(t, t)));
    const twiceSlope = add(add(erf(t), 1), mul(x, twicePhi));
    return [mul(mul(g, twiceSlope), 0.5)];
  });
}

/** A copy of `node` reading `inputs` instead (same op, attributes and output types): gradient checkpointing's recomputation. */
export function repeatNode(node: Node, inputs: (Value | null)[]): Value[] {
  const g = inputs.find((x) => x)?.graph ?? node.outputs[0].graph;
  return g.addNode(node.op, inputs, node.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })), node.attrs, node.domain);
}

export function cast(x: Value, dtype: DType): Value {
  const to = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float64: 11 }[dtype];
  return one(x, 'Cast', [x], dtype, x.shape, { to });
}

export function where(cond: Value, a: Value | number, b: Value | number): Value {
  if (cond.dtype !== 'bool') throw new ShapeError(`Where: condition must be bool, got ${cond.describe()}`);
  const av = typeof a === 'number' ? (typeof b === 'number' ? cond.graph.scalar(a) : lift(b, a)) : a;
  const bv = lift(av, b);
  sameDtype('Where', av, bv);
  const shape = broadcastShapes('Where', broadcastShapes('Where', cond.shape, av.shape), bv.shape);
  return one(cond, 'Where', [cond, av, bv], av.dtype, shape);
}

// ---- linear algebra -------------------------------------------------------

export function matmul(a: Value, b: Value): Value {
  sameDtype('MatMul', a, b);
  if (a.rank < 1 || b.rank < 1) throw new ShapeError(`MatMul: scalars not allowed (${a.describe()}, ${b.describe()})`);
  if (a.rank === 1 || b.rank === 1) throw new ShapeError(`MatMul: use rank ≥ 2 operands (${a.describe()} @ ${b.describe()})`);
  const k1 = a.shape[a.rank - 1], k2 = b.shape[b.rank - 2];
  if (!dimsCompatible(k1, k2)) {
    throw new ShapeError(`MatMul: inner dims differ: ${fmt(a.shape)} @ ${fmt(b.shape)} (${k1} vs ${k2})`);
  }
  const batch = broadcastShapes('MatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  return one(a, 'MatMul', [a, b], a.dtype, [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]]);
}

export interface GemmOpts { transA?: boolean; transB?: boolean; alpha?: number; beta?: number }

/** Y = alpha·op(A)·op(B) (+ beta·C); A and B 2-D. Backward passes use the trans flags instead of Transposes. */
export function gemm(a: Value, b: Value, opts: GemmOpts = {}, c?: Value): Value {
  sameDtype('Gemm', a, b);
  if (a.rank !== 2 || b.rank !== 2) throw new ShapeError(`Gemm: operands must be 2-D, got ${a.describe()} and ${b.describe()}`);
  const [m, ka] = opts.transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kb, n] = opts.transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (!dimsCompatible(ka, kb)) {
    throw new ShapeError(`Gemm: inner dims differ: A${fmt(a.shape)}${opts.transA ? 'ᵀ' : ''} · B${fmt(b.shape)}${opts.transB ? 'ᵀ' : ''} (${ka} vs ${kb})`);
  }
  const attrs: Record<string, any> = {};
  if (opts.transA) attrs.transA = 1;
  if (opts.transB) attrs.transB = 1;
  if (opts.alpha !== undefined && opts.alpha !== 1) attrs.alpha = { float: opts.alpha };
  if (opts.beta !== undefined && opts.beta !== 1) attrs.beta = { float: opts.beta };
  if (c) broadcastShapes('Gemm', [m, n], c.shape);
  return one(a, 'Gemm', c ? [a, b, c] : [a, b], a.dtype, [m, n], attrs);
}

/** y = x·W (+ b) for W stored [in, out] (TF layout). */
export function linear(x2d: Value, w: Value, bias?: Value): Value {
  const y = matmul(x2d, w);
  return bias ? add(y, bias) : y;
}

/** y = x·Wᵀ (+ b) for W stored [out, in] (PyTorch nn.Linear layout). */
export function linearT(x2d: Value, w: Value, bias?: Value): Value {
  return gemm(x2d, w, { transB: true }, bias);
}

// ---- normalization & softmax ----------------------------------------------

export function softmax(x: Value, axis = -1): Value {
  requireFloat('Softmax', x);
  return one(x, 'Softmax', [x], x.dtype, x.shape, { axis: normAxis('Softmax', axis, x.rank) });
}

export function logSoftmax(x: Value, axis = -1): Value {
  requireFloat('LogSoftmax', x);
  return one(x, 'LogSoftmax', [x], x.dtype, x.shape, { axis: normAxis('LogSoftmax', axis, x.rank) });
}

/**
 * LayerNormalization over the last axis. Returns the normalized output; the
 * node also produces Mean and InvStdDev, which the backward pass reuses.
 */
export function layerNorm(x: Value, scale: Value, bias: Value | null, opts: { eps?: number } = {}): Value {
  requireFloat('LayerNormalization', x);
  const last = x.shape[x.rank - 1];
  if (scale.rank !== 1 || !dimsCompatible(scale.shape[0], last)) {
    throw new ShapeError(`LayerNormalization: scale ${fmt(scale.shape)} does not match last dim of ${x.describe()}`);
  }
  if (bias && (bias.rank !== 1 || !dimsCompatible(bias.shape[0], last))) {
    throw new ShapeError(`LayerNormalization: bias ${fmt(bias.shape)} does not match last dim of ${x.describe()}`);
  }
  const stat = [...x.shape.slice(0, -1), 1];
  const [y] = x.graph.addNode(
    'LayerNormalization',
    bias ? [x, scale, bias] : [x, scale],
    [{ dtype: x.dtype, shape: x.shape }, { dtype: x.dtype, shape: stat }, { dtype: x.dtype, shape: stat }],
    { axis: -1, epsilon: { float: opts.eps ?? 1e-5 } },
  );
  return y;
}

// ---- indexing & layout ----------------------------------------------------

export function gather(data: Value, indices: Value, axis = 0): Value {
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw new ShapeError(`Gather: indices must be integer, got ${indices.describe()}`);
  const a = normAxis('Gather', axis, data.rank);
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return one(data, 'Gather', [data, indices], data.dtype, shape, { axis: a });
}

/** ONNX Reshape: 0 copies the input dim at that position, -1 is inferred. */
export function reshape(x: Value, target: number[]): Value {
  const out: Dim[] = target.map((d, i) => (d === 0 ? x.shape[i] : d));
  const inferAt = out.indexOf(-1);
  if (target.filter((d) => d === -1).length > 1) throw new ShapeError(`Reshape: at most one -1 in ${fmt(target)}`);
  if (inferAt >= 0) {
    out[inferAt] = divDims('Reshape', x.shape, out.filter((_, i) => i !== inferAt));
  } else {
    const a = mulDims(x.shape), b = mulDims(out);
    if (typeof a === 'number' && typeof b === 'number' && a !== b) {
      throw new ShapeError(`Reshape: cannot reshape ${x.describe()} (${a} elements) to ${fmt(target)} (${b} elements)`);
    }
  }
  return one(x, 'Reshape', [x, x.graph.ints(target)], x.dtype, out);
}

/** Reshape to the runtime shape of `like` (used where dims are symbolic). */
export function reshapeLike(x: Value, like: Value): Value {
  return one(x, 'Reshape', [x, shapeOf(like)], x.dtype, like.shape);
}

export function shapeOf(x: Value): Value {
  return one(x, 'Shape', [x], 'int64', [x.rank]);
}

export function expandLike(x: Value, like: Value): Value {
  return one(x, 'Expand', [x, shapeOf(like)], x.dtype, broadcastShapes('Expand', x.shape, like.shape));
}

export function transpose(x: Value, perm?: number[]): Value {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  if (p.length !== x.rank || [...p].sort().some((v, i) => v !== i)) {
    throw new ShapeError(`Transpose: perm ${fmt(p)} is not a permutation for ${x.describe()}`);
  }
  return one(x, 'Transpose', [x], x.dtype, p.map((i) => x.shape[i]), { perm: p });
}

export function unsqueeze(x: Value, axes: number[]): Value {
  const rank = x.rank + axes.length;
  const ax = axes.map((a) => normAxis('Unsqueeze', a, rank)).sort((a, b) => a - b);
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(ax.includes(i) ? 1 : x.shape[j++]);
  return one(x, 'Unsqueeze', [x, x.graph.ints(ax)], x.dtype, out);
}

export function squeeze(x: Value, axes: number[]): Value {
  const ax = axes.map((a) => normAxis('Squeeze', a, x.rank));
  for (const a of ax) if (x.shape[a] !== 1) throw new ShapeError(`Squeeze: dim ${a} of ${x.describe()} is not 1`);
  return one(x, 'Squeeze', [x, x.graph.ints(ax)], x.dtype, x.shape.filter((_, i) => !ax.includes(i)));
}

export function concat(xs: Value[], axis: number): Value {
  if (xs.length === 0) throw new ShapeError('Concat: no inputs');
  const a = normAxis('Concat', axis, xs[0].rank);
  for (const x of xs) {
    sameDtype('Concat', xs[0], x);
    if (x.rank !== xs[0].rank) throw new ShapeError(`Concat: rank mismatch ${xs[0].describe()} vs ${x.describe()}`);
    x.shape.forEach((d, i) => {
      if (i !== a && !dimsCompatible(d, xs[0].shape[i])) {
        throw new ShapeError(`Concat: dim ${i} differs: ${fmt(xs[0].shape)} vs ${fmt(x.shape)}`);
      }
    });
  }
  const shape = xs[0].shape.slice();
  const parts = xs.map((x) => x.shape[a]);
  shape[a] = parts.every((d) => typeof d === 'number') ? (parts as number[]).reduce((s, d) => s + d, 0) : `concat${xs[0].graph.values.length}`;
  return one(xs[0], 'Concat', xs, xs[0].dtype, shape, { axis: a });
}

/** ONNX Slice with constant starts/ends (ends may be large to mean "to the end"). */
export function slice(x: Value, starts: number[], ends: number[], axes: number[], steps?: number[]): Value {
  const out = x.shape.slice();
  axes.forEach((axis, i) => {
    const a = normAxis('Slice', axis, x.rank);
    const step = steps?.[i] ?? 1;
    const d = x.shape[a];
    if (typeof d !== 'number') {
      out[a] = `slice${x.graph.values.length}_${a}`;
      return;
    }
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    const s = clamp(starts[i] < 0 ? starts[i] + d : starts[i], 0, d);
    const e = clamp(ends[i] < 0 ? ends[i] + d : ends[i], 0, d);
    if (step !== 1) throw new ShapeError('Slice: only step 1 is supported');
    out[a] = Math.max(0, e - s);
  });
  const inputs = [x, x.graph.ints(starts), x.graph.ints(ends), x.graph.ints(axes)];
  if (steps) inputs.push(x.graph.ints(steps));
  return one(x, 'Slice', inputs, x.dtype, out);
}

export function split(x: Value, sizes: number[], axis: number): Value[] {
  const a = normAxis('Split', axis, x.rank);
  const d = x.shape[a];
  const total = sizes.reduce((s, v) => s + v, 0);
  if (typeof d === 'number' && d !== total) throw new ShapeError(`Split: sizes ${fmt(sizes)} sum to ${total}, dim ${a} of ${x.describe()} is ${d}`);
  return x.graph.addNode(
    'Split',
    [x, x.graph.ints(sizes)],
    sizes.map((s) => {
      const shape = x.shape.slice();
      shape[a] = s;
      return { dtype: x.dtype, shape };
    }),
    { axis: a },
  );
}

// ---- reductions -----------------------------------------------------------

function reduced(op: string, x: Value, axes: number[], keepdims: boolean): Shape {
  const ax = axes.map((a) => normAxis(op, a, x.rank));
  return keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
}

export function reduceSum(x: Value, axes: number[], keepdims = true): Value {
  const ax = axes.map((a) => normAxis('ReduceSum', a, x.rank));
  return one(x, 'ReduceSum', [x, x.graph.ints(ax)], x.dtype, reduced('ReduceSum', x, ax, keepdims), { keepdims: keepdims ? 1 : 0 });
}

export function reduceMean(x: Value, axes: number[], keepdims = true): Value {
  const ax = axes.map((a) => normAxis('ReduceMean', a, x.rank));
  return one(x, 'ReduceMean', [x], x.dtype, reduced('ReduceMean', x, ax, keepdims), { axes: ax, keepdims: keepdims ? 1 : 0 });
}

export function reduceMax(x: Value, axes: number[], keepdims = true): Value {
  const ax = axes.map((a) => normAxis('ReduceMax', a, x.rank));
  return one(x, 'ReduceMax', [x], x.dtype, reduced('ReduceMax', x, ax, keepdims), { axes: ax, keepdims: keepdims ? 1 : 0 });
}

// ---- losses ---------------------------------------------------------------

/** Mean cross-entropy of logits [N, C] against int64 labels [N]. */
export function crossEntropy(logits: Value, labels: Value): Value {
  if (logits.rank !== 2) throw new ShapeError(`crossEntropy: logits must be [N, C], got ${logits.describe()}`);
  const lp = logSoftmax(logits, -1);
  const picked = gatherElements(lp, unsqueeze(labels, [1]), 1); // [N,1]
  return neg(reduceMean(picked, [0, 1], false));
}

export function gatherElements(data: Value, indices: Value, axis: number): Value {
  const a = normAxis('GatherElements', axis, data.rank);
  return one(data, 'GatherElements', [data, indices], data.dtype, indices.shape, { axis: a });
}

export function scatterElementsAdd(zerosLike: Value, indices: Value, updates: Value, axis: number): Value {
  const a = normAxis('ScatterElements', axis, zerosLike.rank);
  return one(zerosLike, 'ScatterElements', [zerosLike, indices, updates], zerosLike.dtype, zerosLike.shape, { axis: a, reduction: 'add' });
}

export function zerosLike(x: Value): Value {
  const value = { tensor: { dtype: x.dtype, dims: [1], data: x.dtype === 'float64' ? new Float64Array(1) : new Float32Array(1) } };
  return one(x, 'ConstantOfShape', [shapeOf(x)], x.dtype, x.shape, { value });
}

// ---- gradient control -----------------------------------------------------

/** x in the forward pass, no gradient through it (torch's .detach()). */
export function stopGradient(x: Value): Value {
  return x.graph.setCustomVjp(identity(x), [x], () => [null]);
}

// ---- dynamic shapes ---------------------------------------------------------
// Batches have symbolic B and T; these take shapes, ends and limits computed
// at run time (int64 tensors) and declare the symbolic dims of their result.

function requireInt(opName: string, x: Value) {
  if (x.dtype !== 'int64') throw new ShapeError(`${opName}: expects an int64 tensor, got ${x.describe()}`);
}

/** Reshape to a runtime shape (int64 [rank]); `dims` is the result's declared shape. */
export function reshapeTo(x: Value, shape: Value, dims: Shape): Value {
  requireInt('Reshape', shape);
  return one(x, 'Reshape', [x, shape], x.dtype, dims);
}

/** Broadcast x to a runtime shape (int64 [rank]); `dims` is the result's declared shape. */
export function expandTo(x: Value, shape: Value, dims: Shape): Value {
  requireInt('Expand', shape);
  return one(x, 'Expand', [x, shape], x.dtype, dims);
}

/** ONNX Slice whose starts/ends (int64 [k]) are tensors computed at run time; `dims` is the result's declared shape. */
export function sliceDynamic(x: Value, starts: Value, ends: Value, axes: number[], dims: Shape): Value {
  requireInt('Slice', starts);
  requireInt('Slice', ends);
  return one(x, 'Slice', [x, starts, ends, x.graph.ints(axes.map((a) => normAxis('Slice', a, x.rank)))], x.dtype, dims);
}

/** [start, start+delta, …) below `limit` (int64 scalars, or [1] tensors squeezed here); `dim` names its length. */
export function range(start: Value | number, limit: Value, delta: Value | number, dim: Dim): Value {
  const g = limit.graph;
  const scalar = (v: Value | number) => (typeof v === 'number' ? g.scalar(v, 'int64') : v.rank === 1 ? squeeze(v, [0]) : v);
  const [s, l, d] = [scalar(start), scalar(limit), scalar(delta)];
  for (const v of [s, l, d]) if (v.rank !== 0) throw new ShapeError(`Range: start, limit and delta must be scalars, got ${v.describe()}`);
  return one(l, 'Range', [s, l, d], l.dtype, [dim]);
}

/** Inclusive cumulative sum along `axis`. */
export function cumSum(x: Value, axis: number): Value {
  const a = normAxis('CumSum', axis, x.rank);
  return one(x, 'CumSum', [x, x.graph.scalar(a, 'int64')], x.dtype, x.shape);
}

/** Product of all elements (a scalar): e.g. the element count from a shape tensor. */
export function reduceProdAll(x: Value): Value {
  return one(x, 'ReduceProd', [x], x.dtype, [], { keepdims: 0 });
}

/** Integer a mod b with the sign of b (ONNX Mod, fmod 0). */
export function mod(a: Value, b: Value | number): Value {
  requireInt('Mod', a);
  const bb = typeof b === 'number' ? a.graph.scalar(b, 'int64') : b;
  return one(a, 'Mod', [a, bb], a.dtype, broadcastShapes('Mod', a.shape, bb.shape), { fmod: 0 });
}

/** The k largest (or smallest) values along `axis`, sorted, and their int64 indices. */
export function topK(x: Value, k: number, axis = -1, largest = true): [Value, Value] {
  const a = normAxis('TopK', axis, x.rank);
  const shape = x.shape.slice();
  shape[a] = k;
  const [values, indices] = x.graph.addNode('TopK', [x, x.graph.ints([k])], [{ dtype: x.dtype, shape }, { dtype: 'int64', shape }], { axis: a, largest: largest ? 1 : 0, sorted: 1 });
  return [values, indices];
}

/** Zero padding by amounts computed at run time (int64 [2·rank], ONNX's order); `dims` is the padded shape. */
export function padDynamic(x: Value, pads: Value, dims: Shape): Value {
  requireInt('Pad', pads);
  return one(x, 'Pad', [x, pads], x.dtype, dims);
}

/** Zero padding: `pads` = [begin_0 … begin_{r-1}, end_0 … end_{r-1}]; `dims` is the padded shape. */
export function pad(x: Value, pads: number[], dims: Shape): Value {
  if (pads.length !== 2 * x.rank) throw new ShapeError(`Pad: ${pads.length} pads for ${x.describe()} (needs ${2 * x.rank})`);
  return one(x, 'Pad', [x, x.graph.ints(pads)], x.dtype, dims);
}

/** A tensor of `size` copies of `value` (float32). */
export function filled(g: import('./ir.ts').Graph, size: number, value = 0): Value {
  return g.addNode('ConstantOfShape', [g.ints([size])], [{ dtype: 'float32', shape: [size] }], {
    value: { tensor: { dtype: 'float32', dims: [1], data: new Float32Array([value]) } },
  })[0];
}

/** data with data[indices[i, …]] = updates[i, …] along `axis` (ONNX ScatterElements, no reduction). */
export function scatterElements(data: Value, indices: Value, updates: Value, axis: number): Value {
  const a = normAxis('ScatterElements', axis, data.rank);
  return one(data, 'ScatterElements', [data, indices, updates], data.dtype, data.shape, { axis: a });
}

/** data with updates added at the index tuples in the last axis of `indices` (ONNX ScatterND, reduction add). */
export function scatterNDAdd(data: Value, indices: Value, updates: Value): Value {
  requireInt('ScatterND', indices);
  return one(data, 'ScatterND', [data, indices, updates], data.dtype, data.shape, { reduction: 'add' });
}
