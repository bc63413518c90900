// Reverse-mode autodiff over the graph IR: grad(loss, wrt) appends the
// backward nodes to the same graph and returns one gradient value per `wrt`.
// Only values on a path from `wrt` to `loss` are differentiated, so frozen
// weights never get weight-gradient products. With `checkpoint`, the forward
// activations inside each segment are recomputed in the backward pass instead
// of kept (checkpoint.ts).

import { type Node, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { nonDifferentiable, rules } from './rules.ts';
import { planCheckpoints, recompute, type CheckpointOptions, type Recomputed } from './checkpoint.ts';

const FLOAT = new Set(['float32', 'float64']);

export interface GradOptions {
  /** Gradient checkpointing: recompute each segment's forward pass in the backward graph (checkpoint.ts). */
  checkpoint?: boolean | CheckpointOptions;
  /** Filled in: how many segments the backward graph recomputes (0 without checkpointing). */
  stats?: { recomputedSegments: number };
}

/** Forward sweep: the values of `nodes` (in graph order) that depend on some `wrt` value (`wrt` included). */
export function differentiable(nodes: readonly Node[], wrt: readonly Value[]): Set<Value> {
  const active = new Set<Value>(wrt);
  for (const n of nodes) {
    if (nonDifferentiable.has(n.op)) continue;
    if (n.inputs.some((x) => x && active.has(x))) for (const o of n.outputs) if (FLOAT.has(o.dtype)) active.add(o);
  }
  return active;
}

export function grad(loss: Value, wrt: Value[], seed?: Value, opts: GradOptions = {}): Value[] {
  const g = loss.graph;
  if (!FLOAT.has(loss.dtype)) throw new Error(`grad: loss must be float, got ${loss.describe()}`);
  if (!seed && loss.rank !== 0) throw new Error(`grad: loss must be a scalar, got ${loss.describe()} (reduce it first or pass a seed)`);

  const nodes = g.nodes.slice(); // backward nodes appended below must not be visited
  const active = differentiable(nodes, wrt);
  if (!active.has(loss)) {
    return wrt.map((w) => op.zerosLike(w));
  }

  const grads = new Map<Value, Value>();
  const accumulate = (v: Value, gv: Value) => {
    const prev = grads.get(v);
    grads.set(v, prev ? op.add(prev, gv) : gv);
  };
  accumulate(loss, seed ?? g.scalar(1, loss.dtype));

  const plan = opts.checkpoint ? planCheckpoints(nodes, active, opts.checkpoint === true ? {} : opts.checkpoint) : null;
  if (opts.stats) opts.stats.recomputedSegments = plan?.segments.length ?? 0;
  const copies = new Map<number, Recomputed>();

  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    const gy = node.outputs.map((o) => grads.get(o) ?? null);
    if (gy.every((x) => x === null)) continue;
    // Checkpointed: the rules read the segment's recomputed copy (made when the backward pass first reaches it).
    const seg = plan?.segmentOf.get(node);
    let copy: Recomputed | undefined;
    if (seg !== undefined) {
      copy = copies.get(seg);
      if (!copy) copies.set(seg, (copy = recompute(plan!.segments[seg], gy.find((x) => x !== null)!)));
    }
    const at = (x: Value) => copy?.values.get(x) ?? x;
    // A composite with a fused backward (Graph.setCustomVjp): its vjp replaces the
    // rules of its inner nodes, which then get no gradient through this output.
    const custom = node.customVjp;
    const needC = custom ? custom.inputs.map((x) => active.has(x)) : [];
    if (custom && needC.some(Boolean)) {
      const gxC = custom.vjp(gy[0]!, needC, custom.inputs.map(at));
      custom.inputs.forEach((x, j) => {
        if (needC[j] && gxC[j]) accumulate(x, gxC[j]!);
      });
      continue;
    }
    const need = node.inputs.map((x) => !!x && active.has(x));
    if (!need.some(Boolean)) continue;
    const rule = rules[node.op];
    if (!rule) throw new Error(`autodiff: no gradient rule for op '${node.op}' (needed by ${node.outputs[0].describe()})`);
    const gx = rule({ node: copy?.nodes.get(node) ?? node, gy, need });
    node.inputs.forEach((x, j) => {
      if (x && need[j] && gx[j]) accumulate(x, gx[j]!);
    });
  }
  return wrt.map((w) => grads.get(w) ?? op.zerosLike(w));
}
