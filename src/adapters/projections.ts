// The shared frozen projections of PEFT's VeRA and RandLoRA are sized for the
// largest adapted shape (PEFT's _find_dim: elementwise max of [out, in] over
// the targeted layers) and drawn from torch.Generator().manual_seed(
// projection_prng_key). A method's planConfig records that shape for its
// config (a copy, so it is per AdapterSet); forward, ΔW and save read it back.
import type { LinearSite } from '../models/types.ts';
import { TorchGenerator } from '../util/torch_rng.ts';

/** The largest adapted [out, in] of the set a config was planned for (PEFT's _find_dim). */
const largestShape = new WeakMap<object, Shape>();
export interface Shape { out: number; in: number }

/** Elementwise max of the targets' [out, in] (PEFT's _find_dim over the adapted linear layers). */
export function largestOf(sites: LinearSite[]): Shape {
  if (!sites.length) throw new Error('no adapted modules: the shared projections are sized by the largest target, and there is none');
  return { out: Math.max(...sites.map((s) => s.outFeatures)), in: Math.max(...sites.map((s) => s.inFeatures)) };
}

/** A copy of `config` that remembers the largest shape of `sites` (for a method's planConfig). */
export function withLargest<C extends object>(config: C, sites: LinearSite[]): C {
  const c = { ...config };
  largestShape.set(c, largestOf(sites));
  return c;
}

/** The planned largest shape, or (no plan) the site's own. */
export function largestFor(c: object, site: { inFeatures: number; outFeatures: number }): Shape {
  return largestShape.get(c) ?? { out: site.outFeatures, in: site.inFeatures };
}

/** torch.Generator().manual_seed(key): negative keys wrap to uint64 as torch does. */
export function projectionGenerator(key: number): TorchGenerator {
  return new TorchGenerator(BigInt.asUintN(64, BigInt(key)));
}

/** The planned largest shape of a config, if it was planned. */
export function largestShapeOf(c: object): Shape | undefined {
  return largestShape.get(c);
}
