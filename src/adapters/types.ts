// The adapter interface every PEFT method implements (one folder per method).
// A method turns a frozen linear site into "base + its own sub-graph", owns the
// initialization of its parameters, and (where it has one) a dense ΔW for merge.

import type { z } from 'zod';
import type { Graph, Value } from '../graph/ir.ts';
import type { LinearSite } from '../models/types.ts';
import type { Rng } from '../util/rng.ts';

export interface ParamSpec {
  /** Key suffix after the module path, PEFT-style: 'lora_A.weight'. */
  key: string;
  shape: number[];
  data: Float32Array;
}

export interface AdapterContext<C> {
  site: LinearSite;
  config: C;
  rng: Rng;
  /** The frozen base weight (in the site's layout), for SVD/LU-style inits. */
  baseWeight: Float32Array;
}

export interface ForwardContext<C> {
  g: Graph;
  site: LinearSite;
  config: C;
  /** Params of this module, by key. */
  p: Record<string, Value>;
  /** The module input [N, in] (after dropout where the method asks for it). */
  x: Value;
  /** Frozen base weight and its output [N, out]. */
  W: Value;
  base: Value;
  training: boolean;
}

export interface AdapterMethod<C = any> {
  /** Name used by --method and in adapter_config.json (`peft_type` for PEFT methods). */
  name: string;
  peftType: string;
  schema: z.ZodType<C>;
  /** Create this module's trainable parameters with their initial values. */
  init(ctx: AdapterContext<C>): ParamSpec[];
  /** The adapted output for one linear site. */
  forward(ctx: ForwardContext<C>): Value;
  /** Dense ΔW in [out, in] layout for merging; absent when the method has none. */
  deltaWeight?(site: LinearSite, config: C, params: Record<string, Float32Array>): Float32Array;
  /** Trainable parameter count for one site (checked against the formula in METHODS.md). */
  paramCount(site: LinearSite, config: C): number;
  /** Fields of adapter_config.json beyond the shared ones. */
  toPeftConfig(config: C): Record<string, unknown>;
}
