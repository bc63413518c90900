// The one place a run's adapter inputs are assembled, for training,
// evaluation, generation and serving alike: the adapter's parameters (and
// trainable copies of base tensors), the method's non-trainable state inputs
// (hooks.feeds: SMoRA's β), and, while training with dropout, one seeded mask
// per adapted site.
//
// A site's input has as many rows as tokens of its stream (B·T; B·S on an
// encoder-decoder's encoder side; B at a pooler), which only the model knows.
// So every mask is fed with as many rows as the batch's longest token stream
// (the largest [B, T] id matrix among the feeds) and the graph cuts it to its
// site's rows (AdapterSet.linear): no task or model says how many rows each
// site sees, and a given batch always draws the same masks.

import type { HostTensor } from '../runtime/session.ts';
import type { Rng } from '../util/rng.ts';
import { hookFeeds } from './hooks.ts';
import { AdapterSet } from './inject.ts';

/** Rows of the longest token stream of a batch: the largest int64 matrix ([B, T] ids, labels) among its feeds. */
export function maskRows(batch: Record<string, HostTensor>): number {
  let rows = 0;
  for (const t of Object.values(batch)) {
    if (t.data instanceof BigInt64Array && t.dims.length >= 2) rows = Math.max(rows, t.data.length);
  }
  if (!rows) throw new Error('dropout: the batch has no [B, T] token-id input to size the masks by');
  return rows;
}

export interface AdapterFeedOptions {
  training: boolean;
  /** While training: the batch's other feeds (to size the masks) and this step's generator (masks drawn site by site in target order). */
  dropout?: { batch: Record<string, HostTensor>; rng: Rng };
  /** While training: the step this run computes and the run's seed (for the method's per-step feeds, hooks.feeds). */
  at?: { step: number; seed: number };
}

/** Every input an adapter set needs in one run (none for `null`). */
export function adapterFeeds(set: AdapterSet | null, o: AdapterFeedOptions): Record<string, HostTensor> {
  if (!set) return {};
  const f: Record<string, HostTensor> = {};
  for (const [k, v] of set.params) f[k] = { data: v, dims: set.shapes.get(k)! };
  Object.assign(f, hookFeeds(set, o.training, o.at));
  const p = set.dropout;
  if (o.training && p > 0 && o.dropout && set.enabled) {
    const rows = maskRows(o.dropout.batch);
    const rng = o.dropout.rng;
    for (const site of set.dropoutTargets) {
      const n = rows * site.inFeatures;
      const m = new Float32Array(n);
      for (let i = 0; i < n; i++) m[i] = rng.uniform() < p ? 0 : 1 / (1 - p);
      f[AdapterSet.dropoutInput(site.name)] = { data: m, dims: [rows, site.inFeatures] };
    }
  }
  return f;
}
