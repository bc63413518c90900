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

/**
 * Segments of the forward `nodes` (in graph order) to recompute in the
 * backward pass; `active` = the values that depend on a differentiated input.
 */
export function planCheckpoints(nodes: readonly Node[], active: ReadonlySet<Value>): CheckpointPlan {
  const isActive = (n: Node) => n.outputs.some((o) => active.has(o));
  // Where each differentiable intermediate is read for the last time in the forward graph.
  const lastRead = new Map<Value, number>();
  const readers = new Map<Value, Set<Node>>();
  nodes.forEach((n, i) => {
    for (const x of n.inputs) {
      if (!x || !x.node || !active.has(x)) continue;
      lastRead.set(x, i);
      if (isActive(n)) (readers.get(x) ?? readers.set(x, new Set()).get(x)!).add(n);
    }
  });
  const closing = new Array<number>(nodes.length).fill(0);
  for (const i of lastRead.values()) closing[i]++;
  // Sweep: `open` counts the differentiable intermediates made so far that are read after node i.
  const cuts: number[] = [];
  let open = 0, productSince = false;
  nodes.forEach((n, i) => {
    open -= closing[i];
    for (const o of n.outputs) if (active.has(o) && (lastRead.get(o) ?? -1) > i) open++;
    if (!isActive(n)) return;
    if (PRODUCTS.has(n.op)) productSince = true;
    const branches = n.outputs.some((o) => (lastRead.get(o) ?? -1) > i && (readers.get(o)?.size ?? 0) >= 2);
    if (open === 1 && branches && productSince) {
      cuts.push(i);
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
  return { segments, segmentOf };
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
