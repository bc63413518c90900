// Shared helpers of the reparameterization methods (VeRA, NOLA, RandLoRA,
// LoRA-XS, LoLDU, LoRA-SB): frozen matrices that are *regenerated*, never
// stored — random bases from a seed string, factorizations of the frozen
// weight — cached in memory by what determines them, and added to a graph
// once (one initializer per distinct name, so sites with equal shapes share it).

import type { Graph, Value } from '../graph/ir.ts';
import type { LinearSite } from '../models/types.ts';
import { Rng } from '../util/rng.ts';
import { frozenWeightData } from '../quant/frozen_linear.ts';

const MAX_CACHE = 256;
const cache = new Map<string, unknown>();

/** Memoized value for `key` (FIFO-bounded). */
export function memo<T>(key: string, make: () => T): T {
  if (cache.has(key)) return cache.get(key) as T;
  const v = make();
  if (cache.size >= MAX_CACHE) cache.delete(cache.keys().next().value!);
  cache.set(key, v);
  return v;
}

/** `count` numbers U(lo, hi) from the stream named `key` (row-major fill). */
export function uniformBasis(key: string, count: number, lo: number, hi: number): Float32Array {
  return memo(`U|${key}|${count}|${lo}|${hi}`, () => {
    const rng = new Rng(key);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = rng.uniformRange(lo, hi);
    return out;
  });
}

/** A frozen tensor in the graph, added once per name. */
export function frozen(g: Graph, name: string, data: Float32Array, shape: number[]): Value {
  return g.leaf(name) ?? g.weight(name, data, shape);
}

/** FNV-1a over the float bits: identifies a frozen weight's contents for caches. */
export function fingerprint(data: Float32Array): string {
  const u = new Uint32Array(data.buffer, data.byteOffset, data.length);
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let i = 0; i < u.length; i++) {
    h1 = Math.imul(h1 ^ u[i], 0x01000193);
    h2 = Math.imul(h2 ^ (u[i] >>> 7) ^ i, 0x5bd1e995);
  }
  return `${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}-${data.length}`;
}

/** [out, in] float64 copy of a weight stored in the site's layout. */
export function outIn64(site: LinearSite, w: Float32Array): Float64Array {
  const m = site.outFeatures, n = site.inFeatures;
  if (w.length !== m * n) throw new Error(`${site.name}: weight has ${w.length} values, expected ${m}×${n}`);
  if (site.layout === 'out_in') return Float64Array.from(w);
  const t = new Float64Array(m * n);
  for (let j = 0; j < n; j++) for (let i = 0; i < m; i++) t[i * n + j] = w[j * m + i];
  return t;
}

/** The data of a frozen weight leaf (what a ForwardContext's W is), or an error naming the method. */
export function weightData(method: string, W: Value): Float32Array {
  const d = frozenWeightData(W); // a quantized base: the dequantized weight it computes with
  if (!d) throw new Error(`${method}: the base weight of this site is not a frozen float32 tensor (${W.describe()}); this method derives its frozen factors from it`);
  return d;
}

/** C [m, n] = A [m, p] · B [p, n] in float32 (dense ΔW for merge). */
export function matmul32(a: ArrayLike<number>, b: ArrayLike<number>, m: number, p: number, n: number): Float32Array {
  const acc = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let t = 0; t < p; t++) {
    const v = a[i * p + t];
    if (v === 0) continue;
    for (let j = 0; j < n; j++) acc[i * n + j] += v * b[t * n + j];
  }
  return Float32Array.from(acc);
}
