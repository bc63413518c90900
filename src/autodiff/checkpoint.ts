// Gradient checkpointing (Chen et al. 2016, "Training deep nets with sublinear
// memory cost"), found in the graph itself rather than marked by each model.
//
// The forward graph is cut where a single differentiable intermediate carries
// everything later differentiable nodes read, and branches (two or more
// differentiable nodes read it): in a residual network, the residual stream
// after each attention or FFN sublayer, read by the next sublayer and by its
// residual sum (what else later layers read — masks, position tables, frozen
// embeddings — depends on no trainable tensor and stays as it is). A cut is
// kept when a matrix product lies between it and the previous one, so each
// segment holds a sublayer's work. The backward graph then recomputes each segment's forward from
// its cut and runs the per-node rules on the copies: only the cuts (one
// [B, T, hidden] tensor per sublayer) live from the forward to the backward
// pass, for one more forward pass of compute. The segment after the last kept
// cut (the head and the loss) is not recomputed: its backward runs first.
// An encoder-decoder's decoder also reads the encoder output in every layer:
// there the cuts let that value be carried past them (planCheckpoints).
//
// onnxruntime would otherwise undo it: its common-subexpression elimination
// merges a copy with the forward node it repeats, and a copy whose inputs are
// all forward values may be scheduled during the forward pass. So every float
// value a segment's copy reads from outside the segment is first added to a
// zero made from the gradient arriving at the segment (its first element
// times 0): the copy is then distinct, and runs only once the backward pass
// has reached it. Adding an exact zero leaves the values, and the gradients,
// unchanged (unless that gradient is already inf or NaN).

import type { Node, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';

const PRODUCTS = new Set(['MatMul', 'Gemm', 'DynamicQuantizeMatMul']);
const FLOAT = new Set(['float32', 'float64']);

export interface CheckpointPlan {
  /** The recomputed forward nodes of each segment, in graph order. */
  segments: Node[][];
  /** Which segment a forward node belongs to (nodes after the last cut, and nodes with no differentiable output, are in none). */
  segmentOf: Map<Node, number>;
}

export interface CheckpointOptions {
  /** Also cut where other differentiable values are carried past the cut (see planCheckpoints; default true). */
  carried?: boolean;
}

/**
 * Segments of the forward `nodes` (in graph order) to recompute in the
 * backward pass; `active` = the values that depend on a differentiated input.
 *
 * In an encoder-decoder, the encoder output (or each decoder layer's
 * cross-attention keys and values made from it) is differentiable and read
 * across the whole decoder, so no point there has the residual stream as the
 * only open value. A cut is then also taken where every other open value is
 * carried: already carried at the previous cut, or made since and not read
 * yet (an input kept for later segments). A residual still open inside a
 * sublayer is neither (it is the previous cut, or its norm read it), so
 * decoder-only and encoder-only models get the same cuts as without the rule.
 * Each segment's recompute reads a carried value from outside, like any other
 * forward value, and each segment's backward adds to its gradient.
 */
export function planCheckpoints(nodes: readonly Node[], active: ReadonlySet<Value>, opts: CheckpointOptions = {}): CheckpointPlan {
  const isActive = (n: Node) => n.outputs.some((o) => active.has(o));
  // Where each differentiable intermediate is first and last read in the forward graph, and by which differentiable nodes.
  const firstRead = new Map<Value, number>(), lastRead = new Map<Value, number>();
  const readers = new Map<Value, Set<Node>>();
  nodes.forEach((n, i) => {
    for (const x of n.inputs) {
      if (!x || !x.node || !active.has(x)) continue;
      if (!firstRead.has(x)) firstRead.set(x, i);
      lastRead.set(x, i);
      if (isActive(n)) (readers.get(x) ?? readers.set(x, new Set()).get(x)!).add(n);
    }
  });
  const closing = nodes.map(() => [] as Value[]);
  for (const [v, i] of lastRead) closing[i].push(v);
  // Sweep: `open` = the differentiable intermediates made so far that are read after node i.
  const cuts: number[] = [];
  const open = new Set<Value>();
  let carried = new Set<Value>(); // the values carried past the last cut
  let productSince = false;
  nodes.forEach((n, i) => {
    for (const v of closing[i]) open.delete(v);
    for (const o of n.outputs) if (active.has(o) && (lastRead.get(o) ?? -1) > i) open.add(o);
    if (!isActive(n)) return;
    if (PRODUCTS.has(n.op)) productSince = true;
    const cut = n.outputs.find((o) => open.has(o) && (readers.get(o)?.size ?? 0) >= 2);
    if (!cut || !productSince) return;
    const others = [...open].filter((v) => v !== cut);
    const isCarried = (v: Value) => v.node !== n && (carried.has(v) || firstRead.get(v)! > i);
    if (others.length === 0 || (opts.carried !== false && others.every(isCarried))) {
      cuts.push(i);
      carried = new Set(others);
      productSince = false;
    }
  });
  cuts.pop(); // the last segment's backward runs right after the forward pass: keep it
  const segments: Node[][] = [];
  const segmentOf = new Map<Node, number>();
  let from = 0;
  for (const end of cuts) {
    const seg = nodes.slice(from, end + 1).filter(isActive);
    for (const n of seg) segmentOf.set(n, segments.length);
    segments.push(seg);
    from = end + 1;
  }
  if (opts.carried !== false) deferToReaders(nodes, segments, segmentOf, readers);
  return { segments, segmentOf };
}

/**
 * A node (not a cut) whose outputs only a later segment reads moves into that
 * segment: the cross-attention keys and values a decoder makes from the
 * encoder output before its first layer are then recomputed by the layer that
 * reads them, from the carried encoder output, instead of being kept from the
 * forward pass. Walked backwards, so whole chains move.
 */
function deferToReaders(nodes: readonly Node[], segments: Node[][], segmentOf: Map<Node, number>, readers: ReadonlyMap<Value, Set<Node>>) {
  const cutNodes = new Set(segments.map((seg) => seg[seg.length - 1]));
  let moved = false;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i], s = segmentOf.get(n);
    if (s === undefined || cutNodes.has(n)) continue;
    const to = new Set<number | undefined>();
    for (const o of n.outputs) for (const r of readers.get(o) ?? []) to.add(segmentOf.get(r));
    const [t] = to;
    if (to.size !== 1 || t === undefined || t === s) continue;
    segmentOf.set(n, t);
    moved = true;
  }
  if (!moved) return;
  const order = new Map(nodes.map((n, i) => [n, i]));
  segments.forEach((_, k) => (segments[k] = []));
  for (const [n, k] of segmentOf) segments[k].push(n);
  for (const seg of segments) seg.sort((p, q) => order.get(p)! - order.get(q)!);
}

/** A zero scalar of `dtype` that onnxruntime can only compute once `g` (a gradient) exists. */
function zeroAfter(g: Value, dtype: Value['dtype']): Value {
  const first = g.rank === 0 ? g : op.reshape(op.slice(g, g.shape.map(() => 0), g.shape.map(() => 1), [...g.shape.keys()]), []);
  const zero = op.mul(first, 0);
  return zero.dtype === dtype ? zero : op.cast(zero, dtype);
}

export interface Recomputed {
  /** Forward value → its copy (values read from outside the segment → the same value tied to the backward pass). */
  values: Map<Value, Value>;
  /** Forward node → its copy. */
  nodes: Map<Node, Node>;
}

/** Copies of `segment`'s nodes, appended to the graph now, made to wait for gradient `after` (see above). */
export function recompute(segment: readonly Node[], after: Value): Recomputed {
  const values = new Map<Value, Value>(), nodes = new Map<Node, Node>();
  const zeros = new Map<string, Value>();
  const read = (x: Value | null): Value | null => {
    if (!x) return null;
    const hit = values.get(x);
    if (hit) return hit;
    if (!x.node || !FLOAT.has(x.dtype)) return x; // leaves, and integer/bool tensors (shapes, indices, masks), as they are
    if (!zeros.has(x.dtype)) zeros.set(x.dtype, zeroAfter(after, x.dtype));
    const tied = op.add(x, zeros.get(x.dtype)!);
    values.set(x, tied);
    return tied;
  };
  for (const n of segment) {
    const outs = op.repeatNode(n, n.inputs.map(read));
    n.outputs.forEach((o, j) => values.set(o, outs[j]));
    nodes.set(n, outs[0].node!);
  }
  return { values, nodes };
}
