// The one place a run's adapter inputs are assembled, for training,
// evaluation, generation and serving alike: the adapter's parameters (and
// trainable copies of base tensors), the method's non-trainable state inputs
// (hooks.feeds: SMoRA's β), and, while training with dropout, one seeded mask
// per adapted site.
//
// A mask has the shape of its site's input rows, which depends on the model
// and the batch ([B·T, in] in a decoder, [B·S, in] on an encoder-decoder's
// encoder side). The graph declared that shape symbolically (AdapterSet.linear:
// x.shape, e.g. 'B*T'); the dims are bound from the other feeds' actual sizes,
// so no task or model needs to say how many rows each site sees.

import type { Graph, Shape } from '../graph/ir.ts';
import type { HostTensor } from '../runtime/session.ts';
import { Rng } from '../util/rng.ts';
import { hookFeeds } from './hooks.ts';
import { AdapterSet } from './inject.ts';

/** Symbolic dim name → size, read off feeds whose graph inputs have named dims. */
export function bindDims(graph: Graph, feeds: Record<string, HostTensor>): Map<string, number> {
  const dims = new Map<string, number>();
  for (const leaf of graph.inputs()) {
    const t = feeds[leaf.leaf!.name];
    if (!t) continue;
    leaf.shape.forEach((d, i) => {
      if (typeof d === 'string' && !d.includes('*') && t.dims[i] !== undefined) dims.set(d, t.dims[i]);
    });
  }
  return dims;
}

/** The size of each dim of a declared shape ('B*T' products included), given bound symbols. */
export function evalShape(shape: Shape, dims: Map<string, number>, what: string): number[] {
  return shape.map((d) => {
    if (typeof d === 'number') return d;
    let n = 1;
    for (const f of d.split('*')) {
      const v = /^\d+$/.test(f) ? Number(f) : dims.get(f);
      if (v === undefined) throw new Error(`${what}: dim '${f}' of [${shape.join(', ')}] is not set by any input of this batch`);
      n *= v;
    }
    return n;
  });
}

export interface AdapterFeedOptions {
  training: boolean;
  /**
   * While training: the compiled graph (to read each mask's declared shape),
   * the batch's other feeds (to size it) and the generator of this step's
   * masks. Masks are drawn site by site in the set's target order.
   */
  dropout?: { graph: Graph; batch: Record<string, HostTensor>; rng: Rng };
}

/** Every input an adapter set needs in one run (none for `null`). */
export function adapterFeeds(set: AdapterSet | null, o: AdapterFeedOptions): Record<string, HostTensor> {
  if (!set) return {};
  const f: Record<string, HostTensor> = {};
  for (const [k, v] of set.params) f[k] = { data: v, dims: set.shapes.get(k)! };
  Object.assign(f, hookFeeds(set, o.training));
  const p = set.dropout;
  if (o.training && p > 0 && o.dropout && set.enabled) {
    const { graph, batch, rng } = o.dropout;
    const dims = bindDims(graph, batch);
    for (const site of set.dropoutTargets) {
      const name = AdapterSet.dropoutInput(site.name);
      const leaf = graph.leaf(name);
      if (!leaf) continue; // the site is not in this graph
      const shape = evalShape(leaf.shape, dims, `dropout mask of '${site.name}'`);
      const n = shape.reduce((a, b) => a * b, 1);
      const m = new Float32Array(n);
      for (let i = 0; i < n; i++) m[i] = rng.uniform() < p ? 0 : 1 / (1 - p);
      f[name] = { data: m, dims: shape };
    }
  }
  return f;
}
