// The shared frozen projections of PEFT's VeRA and RandLoRA are sized for the
// largest adapted shape (PEFT's _find_dim: elementwise max of [out, in] over
// the targeted layers) and drawn from torch.Generator().manual_seed(
// projection_prng_key). Both methods keep, as their per-set state, that shape
// and the pair a file supplied (save_projection); forward, ΔW and save read it.
import type { LinearSite } from '../models/types.ts';
import type { StoredTensor } from './types.ts';
import { TorchGenerator } from '../util/torch_rng.ts';

export interface Shape { out: number; in: number }

/** VeRA's / RandLoRA's state for one adapter set. */
export interface ProjectionState {
  /** The largest adapted [out, in] of the set (undefined for a set with no targets). */
  largest?: Shape;
  /** The frozen pair read from a file (PEFT's save_projection), used as stored. */
  saved?: { A: StoredTensor; B: StoredTensor };
}

/** Elementwise max of the targets' [out, in] (PEFT's _find_dim over the adapted linear layers). */
export function largestOf(sites: LinearSite[]): Shape {
  if (!sites.length) throw new Error('no adapted modules: the shared projections are sized by the largest target, and there is none');
  return { out: Math.max(...sites.map((s) => s.outFeatures)), in: Math.max(...sites.map((s) => s.inFeatures)) };
}

/** createState of VeRA and RandLoRA. */
export function projectionState({ targets }: { targets: LinearSite[] }): ProjectionState {
  return { largest: targets.length ? largestOf(targets) : undefined };
}

/** The set's largest shape, or (a method called on its own, without a set) the site's own. */
export function largestFor(state: ProjectionState | undefined, site: { inFeatures: number; outFeatures: number }): Shape {
  return state?.largest ?? { out: site.outFeatures, in: site.inFeatures };
}

/** torch.Generator().manual_seed(key): negative keys wrap to uint64 as torch does. */
export function projectionGenerator(key: number): TorchGenerator {
  return new TorchGenerator(BigInt.asUintN(64, BigInt(key)));
}
