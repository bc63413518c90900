// What a graph costs, read from the IR alone: the matrix products it runs
// (MatMul / Gemm, 2·m·n·k FLOPs each, batch dims multiplied in) and, for a
// training graph, the intermediate tensors its backward part reads from the
// forward part (what must stay alive between the two). Symbolic dims are bound
// by the caller (e.g. { B: 8, T: 128 }). Only nodes that some graph output
// depends on are counted (onnxruntime drops the others).

import type { Graph, Node, Shape, Value } from './ir.ts';

export type DimBinding = Readonly<Record<string, number>>;

/** One matrix product of the graph, its operand shapes resolved. */
export interface MatrixProduct {
  op: 'MatMul' | 'Gemm';
  a: number[];
  b: number[];
  transA: boolean;
  transB: boolean;
  /** Operand is a frozen weight or constant (onnxruntime prepacks those). */
  aConst: boolean;
  bConst: boolean;
  /** Product of the (broadcast) batch dims of a MatMul; 1 for Gemm. */
  batch: number;
  m: number;
  k: number;
  n: number;
  flops: number;
}

const SHAPE_ONLY = new Set(['Shape', 'Size']);
const BYTES: Record<string, number> = { float32: 4, float64: 8, int64: 8, int32: 4, bool: 1 };

export function resolveShape(shape: Shape, dims: DimBinding, what: string): number[] {
  return shape.map((d) => {
    if (typeof d === 'number') return d;
    // Symbolic products are written 'B*T' or '4*B*T' (graph/shapes.ts mulDims).
    return d.split('*').reduce((p, f) => {
      if (/^\d+$/.test(f)) return p * Number(f);
      const v = dims[f];
      if (!(Number.isInteger(v) && v >= 0)) throw new Error(`${what}: symbolic dim '${f}' has no value (bind it, e.g. { ${f}: 8 })`);
      return p * v;
    }, 1);
  });
}

/** Nodes that some graph output depends on. */
export function liveNodes(g: Graph, outputs: Value[] = g.outputs.map((o) => o.value)): Set<Node> {
  const live = new Set<Node>();
  const stack = outputs.slice();
  while (stack.length) {
    const v = stack.pop()!;
    const n = v.node;
    if (!n || live.has(n)) continue;
    live.add(n);
    for (const x of n.inputs) if (x) stack.push(x);
  }
  return live;
}

/** Every live MatMul / Gemm with its shapes and FLOPs (2·batch·m·n·k), in graph order. */
export function matrixProducts(g: Graph, dims: DimBinding): MatrixProduct[] {
  const live = liveNodes(g);
  const out: MatrixProduct[] = [];
  for (const node of g.nodes) {
    if (!live.has(node) || (node.op !== 'MatMul' && node.op !== 'Gemm')) continue;
    const a = resolveShape(node.inputs[0]!.shape, dims, node.op), b = resolveShape(node.inputs[1]!.shape, dims, node.op);
    let m: number, k: number, n: number, batch = 1;
    const transA = node.op === 'Gemm' && node.attrs.transA === 1, transB = node.op === 'Gemm' && node.attrs.transB === 1;
    if (node.op === 'Gemm') {
      [m, k] = transA ? [a[1], a[0]] : [a[0], a[1]];
      n = transB ? b[0] : b[1];
    } else {
      [m, k] = a.slice(-2);
      n = b[b.length - 1];
      const y = resolveShape(node.outputs[0].shape, dims, node.op);
      batch = y.slice(0, -2).reduce((p, q) => p * q, 1);
    }
    const isConst = (v: Value) => v.leaf?.kind === 'weight' || v.leaf?.kind === 'const';
    out.push({ op: node.op, a, b, transA, transB, aConst: isConst(node.inputs[0]!), bConst: isConst(node.inputs[1]!), batch, m, k, n, flops: 2 * batch * m * n * k });
  }
  return out;
}

export function matrixFlops(g: Graph, dims: DimBinding): number {
  return matrixProducts(g, dims).reduce((s, p) => s + p.flops, 0);
}

export interface SavedActivations {
  /** Bytes of all forward intermediates that backward nodes read. */
  bytes: number;
  count: number;
  /** The largest ones, for reports. */
  largest: { op: string; shape: number[]; bytes: number }[];
}

/**
 * The forward→backward hand-off of a training graph: intermediate tensors
 * (node outputs, not weights, inputs or constants) computed by the forward
 * part and read by the backward part. Forward = what the non-gradient outputs
 * (loss, logits) depend on; backward = the live nodes outside it (they feed only
 * the `grad.*` outputs). A graph without `grad.*` outputs keeps nothing.
 */
export function savedActivations(g: Graph, dims: DimBinding, isGradOutput = (name: string) => name.startsWith('grad.')): SavedActivations {
  const forward = liveNodes(g, g.outputs.filter((o) => !isGradOutput(o.name)).map((o) => o.value));
  const backward = [...liveNodes(g)].filter((n) => !forward.has(n));
  const saved = new Set<Value>();
  for (const n of backward) {
    if (SHAPE_ONLY.has(n.op)) continue; // reads the shape, not the data
    for (const x of n.inputs) if (x && x.node && forward.has(x.node)) saved.add(x);
  }
  const rows = [...saved].map((v) => {
    const shape = resolveShape(v.shape, dims, `saved ${v.describe()}`);
    return { op: v.node!.op, shape, bytes: shape.reduce((p, q) => p * q, 1) * (BYTES[v.dtype] ?? 4) };
  });
  rows.sort((p, q) => q.bytes - p.bytes);
  return { bytes: rows.reduce((s, r) => s + r.bytes, 0), count: rows.length, largest: rows.slice(0, 10) };
}
