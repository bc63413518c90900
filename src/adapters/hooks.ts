// The trainer's one entry point into a method's per-step hooks
// (AdapterMethod.hooks, src/adapters/types.ts). Builds the per-site view
// (config + parameter keys) and calls the method with the set's state; the
// trainer holds no method-specific code.

import type { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { AdapterSet } from './inject.ts';
import type { FitHookContext, StepHookContext, StoredTensor } from './types.ts';

export type StepPhase = 'beforeStep' | 'optimizerStep' | 'afterStep';

/** Whether the set's method has any per-step hook. */
export function hasStepHooks(adapters: AdapterSet | null): boolean {
  const h = adapters?.method.hooks;
  return !!(h && (h.beforeStep || h.afterStep || h.optimizerStep));
}

/** Calls `phase` of the method's hooks, if it has one. */
export function runStepHook(
  phase: StepPhase,
  adapters: AdapterSet | null,
  ctx: Omit<StepHookContext, 'config' | 'sites' | 'state'>,
): void {
  const fn = adapters?.method.hooks?.[phase];
  if (!adapters || !fn) return;
  fn.call(adapters.method.hooks, { ...ctx, config: adapters.config, sites: adapters.hookSites(), state: adapters.state });
}

/** Keys of the tensors the method updates itself (hooks.ownedParams): the shared optimizer skips them. */
export function ownedParams(adapters: AdapterSet | null): Set<string> {
  const f = adapters?.method.hooks?.ownedParams;
  return new Set(adapters && f ? f.call(adapters.method.hooks, { state: adapters.state, config: adapters.config, sites: adapters.hookSites() }) : []);
}

/**
 * The method's term of the training loss (hooks.lossTerm) over the adapter
 * parameters `g` holds (sites the task's graph does not build are left out), or null.
 */
export function adapterLossTerm(adapters: AdapterSet | null, g: Graph): Value | null {
  const f = adapters?.method.hooks?.lossTerm;
  if (!adapters || !f || !adapters.enabled) return null;
  const sites = adapters.hookSites().flatMap((s) => {
    const p: Record<string, Value> = {};
    for (const [suffix, key] of Object.entries(s.keys)) {
      const v = g.leaf(key);
      if (v) p[suffix] = v;
    }
    return Object.keys(p).length ? [{ ...s, p }] : [];
  });
  const term = f.call(adapters.method.hooks, { g, state: adapters.state, config: adapters.config, sites });
  if (term && term.shape.length !== 0) return op.reshape(term, []);
  return term;
}

/** The method's per-step figures for metrics.jsonl (hooks.stepMetrics), or none. */
export function adapterStepMetrics(adapters: AdapterSet | null, params: Map<string, Float32Array>, step: number): Record<string, unknown> | undefined {
  const f = adapters?.method.hooks?.stepMetrics;
  return adapters && f ? f.call(adapters.method.hooks, { state: adapters.state, config: adapters.config, sites: adapters.hookSites(), params, step }) : undefined;
}

/** The method's run state for a checkpoint (hooks.saveRunState), or undefined. */
export function saveRunState(adapters: AdapterSet | null): unknown {
  const f = adapters?.method.hooks?.saveRunState;
  return adapters && f ? f.call(adapters.method.hooks, { state: adapters.state, config: adapters.config, sites: adapters.hookSites() }) : undefined;
}

/** Gives a checkpoint's run state back to the method (after startRun). */
export function loadRunState(adapters: AdapterSet | null, saved: unknown): void {
  const f = adapters?.method.hooks?.loadRunState;
  if (adapters && f && saved !== undefined && saved !== null) f.call(adapters.method.hooks, { state: adapters.state, config: adapters.config, sites: adapters.hookSites() }, saved);
}

/** Calls the method's startRun hook, if it has one (every training run, fresh or resumed). */
export function runStartHook(adapters: AdapterSet | null): void {
  const fn = adapters?.method.hooks?.startRun;
  if (adapters && fn) fn.call(adapters.method.hooks, { state: adapters.state, config: adapters.config, sites: adapters.hookSites() });
}

/** Calls the method's beforeFit hook, if it has one. */
export async function runFitHook(adapters: AdapterSet | null, ctx: Omit<FitHookContext, 'config' | 'sites' | 'state'>): Promise<void> {
  const fn = adapters?.method.hooks?.beforeFit;
  if (!adapters || !fn) return;
  await fn.call(adapters.method.hooks, { ...ctx, config: adapters.config, sites: adapters.hookSites(), state: adapters.state });
}

/** The method's extra feeds (non-trainable state inputs), or none. */
export function hookFeeds(adapters: AdapterSet | null, training: boolean, at?: { step: number; seed: number }): Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> {
  const f = adapters?.method.hooks?.feeds;
  return adapters && f ? f.call(adapters.method.hooks, { state: adapters.state, config: adapters.config, sites: adapters.hookSites(), training, ...at }) : {};
}

/**
 * The non-trainable state a method keeps per module (saveState: SMoRA's β), by
 * module name and key suffix; copies, so a snapshot does not move with training.
 * Adapter files and trainer checkpoints both store it.
 */
export function saveHookState(adapters: AdapterSet): Map<string, Record<string, StoredTensor>> {
  const out = new Map<string, Record<string, StoredTensor>>();
  const hooks = adapters.method.hooks;
  if (!hooks?.saveState) return out;
  for (const site of adapters.targets) {
    const st = hooks.saveState.call(hooks, { state: adapters.state, site, config: adapters.configFor(site) });
    out.set(site.name, Object.fromEntries(Object.entries(st).map(([k, t]) => [k, { shape: t.shape.slice(), data: Float32Array.from(t.data) }])));
  }
  return out;
}

/** Restores what saveHookState returned (modules the set does not adapt are ignored). */
export function loadHookState(adapters: AdapterSet, state: Iterable<[string, Record<string, StoredTensor>]>): void {
  const hooks = adapters.method.hooks;
  if (!hooks?.loadState) return;
  const sites = new Map(adapters.targets.map((s) => [s.name, s]));
  for (const [module, tensors] of state) {
    const site = sites.get(module);
    if (site) hooks.loadState.call(hooks, { state: adapters.state, site, config: adapters.configFor(site), tensors });
  }
}
