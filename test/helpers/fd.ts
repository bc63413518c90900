// Central finite-difference check of autodiff: the analytic gradient of
// L = Σ f(x)·R (R a fixed random tensor) is compared with (L(x+h) − L(x−h)) / 2h
// for every element of every differentiable input.

import { Dim, DType, Graph, Value } from '../../src/graph/ir.ts';
import * as op from '../../src/graph/ops.ts';
import { grad } from '../../src/autodiff/grad.ts';
import { CompiledGraph, HostTensor } from '../../src/runtime/session.ts';
import { Rng } from '../../src/util/rng.ts';

export interface FdInput {
  shape: number[];
  /** Sample values; default uniform(−1, 1). */
  init?: (rng: Rng, i: number) => number;
  /** Integer inputs (indices) are fed but not differentiated. */
  int?: number[];
  diff?: boolean;
}

export interface FdOptions {
  dtype?: DType;
  h?: number;
  tol?: number;
  seed?: number;
}

export async function checkGradient(build: (g: Graph, xs: Value[]) => Value, inputs: FdInput[], opts: FdOptions = {}) {
  const dtype = opts.dtype ?? 'float64';
  const h = opts.h ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const tol = opts.tol ?? (dtype === 'float64' ? 1e-6 : 2e-2);
  const rng = new Rng(opts.seed ?? 7);
  const Arr = dtype === 'float64' ? Float64Array : Float32Array;

  const g = new Graph('fd');
  const values: HostTensor[] = [];
  const xs = inputs.map((inp, k) => {
    if (inp.int) {
      values.push({ data: BigInt64Array.from(inp.int.map(BigInt)), dims: inp.shape });
      return g.input(`x${k}`, 'int64', inp.shape);
    }
    const n = inp.shape.reduce((a, b) => a * b, 1);
    const data = new Arr(n);
    for (let i = 0; i < n; i++) data[i] = inp.init ? inp.init(rng, i) : rng.uniformRange(-1, 1);
    values.push({ data, dims: inp.shape });
    return g.input(`x${k}`, dtype, inp.shape);
  });
  const y = build(g, xs);
  const n = y.shape.reduce((a: number, b) => a * (b as number), 1);
  const rdata = new Arr(n);
  for (let i = 0; i < n; i++) rdata[i] = rng.uniformRange(-1, 1);
  const loss = op.reduceSum(op.mul(y, g.weight('R', rdata, y.shape as number[], dtype)), [...y.shape.keys()], false);
  const diffIdx = inputs.map((inp, k) => (!inp.int && inp.diff !== false ? k : -1)).filter((k) => k >= 0);
  const grads = grad(loss, diffIdx.map((k) => xs[k]));
  g.output('loss', loss);
  diffIdx.forEach((k, j) => g.output(`g${k}`, grads[j]));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const feeds = () => Object.fromEntries(values.map((v, k) => [`x${k}`, v]));
  const res = await cg.run(feeds());
  let worst = 0;
  for (const k of diffIdx) {
    const analytic = res[`g${k}`].data as Float64Array;
    const x = values[k].data as Float64Array;
    for (let i = 0; i < x.length; i++) {
      const orig = x[i];
      x[i] = orig + h;
      const lp = Number((await cg.run(feeds(), ['loss'])).loss.data[0]);
      x[i] = orig - h;
      const lm = Number((await cg.run(feeds(), ['loss'])).loss.data[0]);
      x[i] = orig;
      const numeric = (lp - lm) / (2 * h);
      const err = Math.abs(numeric - analytic[i]) / Math.max(1, Math.abs(numeric));
      worst = Math.max(worst, err);
      if (!(err <= tol)) {
        await cg.release();
        throw new Error(`gradient mismatch for input ${k} element ${i}: analytic ${analytic[i]}, numeric ${numeric} (rel err ${err.toExponential(2)} > ${tol})`);
      }
    }
  }
  await cg.release();
  return worst;
}

// ---- symbolic shapes ---------------------------------------------------------

export interface FdSymInput {
  /** Declared shape: numbers and symbolic dims ('B', 'T'), as models declare batches. */
  shape: Dim[];
  init?: (rng: Rng, i: number) => number;
  /** Integer input (indices) drawn uniformly from [0, below); not differentiated. */
  intBelow?: number;
  diff?: boolean;
}

/** A declared dim under concrete sizes: a number, a name, or a product such as '2*B*T'. */
export function resolveDim(d: Dim, sizes: Record<string, number>): number {
  if (typeof d === 'number') return d;
  return d.split('*').reduce((p, f) => {
    if (/^\d+$/.test(f)) return p * Number(f);
    if (!(f in sizes)) throw new Error(`fd: symbolic dim '${f}' (of '${d}') has no size in ${JSON.stringify(sizes)}`);
    return p * sizes[f];
  }, 1);
}

/**
 * Finite differences on a graph whose inputs have symbolic dims: the graph is
 * built and compiled ONCE with the symbolic shapes (so autodiff takes its
 * dynamic-shape branches: Shape-driven Expand / Reshape, element counts read at
 * run time), then checked at every set of concrete `sizes` with that one
 * session, as a model serves padded batches of any shape. Returns the worst
 * relative error and the ops the backward pass added (to assert it is dynamic).
 */
export async function checkGradientSymbolic(
  build: (g: Graph, xs: Value[]) => Value,
  inputs: FdSymInput[],
  sizes: Record<string, number>[],
  opts: FdOptions = {},
): Promise<{ worst: number; backwardOps: string[]; outputShape: Dim[] }> {
  const dtype = opts.dtype ?? 'float64';
  const h = opts.h ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const tol = opts.tol ?? (dtype === 'float64' ? 1e-6 : 2e-2);
  const rng = new Rng(opts.seed ?? 7);
  const Arr = dtype === 'float64' ? Float64Array : Float32Array;

  const g = new Graph('fd-symbolic');
  const xs = inputs.map((inp, k) => g.input(`x${k}`, inp.intBelow !== undefined ? 'int64' : dtype, inp.shape));
  const y = build(g, xs);
  const r = g.input('R', dtype, y.shape);
  const loss = op.reduceSum(op.mul(y, r), [...y.shape.keys()], false);
  const diffIdx = inputs.map((inp, k) => (inp.intBelow === undefined && inp.diff !== false ? k : -1)).filter((k) => k >= 0);
  const before = g.nodes.length;
  const grads = grad(loss, diffIdx.map((k) => xs[k]));
  const backwardOps = g.nodes.slice(before).map((n) => n.op);
  g.output('loss', loss);
  diffIdx.forEach((k, j) => g.output(`g${k}`, grads[j]));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  let worst = 0;
  try {
    for (const s of sizes) {
      const values: HostTensor[] = inputs.map((inp) => {
        const dims = inp.shape.map((d) => resolveDim(d, s));
        const n = dims.reduce((a, b) => a * b, 1);
        if (inp.intBelow !== undefined) return { data: BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rng.uniform() * inp.intBelow!))), dims };
        const data = new Arr(n);
        for (let i = 0; i < n; i++) data[i] = inp.init ? inp.init(rng, i) : rng.uniformRange(-1, 1);
        return { data, dims };
      });
      const ydims = y.shape.map((d) => resolveDim(d, s));
      const rdata = new Arr(ydims.reduce((a, b) => a * b, 1));
      for (let i = 0; i < rdata.length; i++) rdata[i] = rng.uniformRange(-1, 1);
      const feeds = () => ({ ...Object.fromEntries(values.map((v, k) => [`x${k}`, v])), R: { data: rdata, dims: ydims } });
      const res = await cg.run(feeds());
      for (const k of diffIdx) {
        const analytic = res[`g${k}`];
        const x = values[k].data as Float64Array;
        if (analytic.dims.join(',') !== values[k].dims.join(',')) throw new Error(`sizes ${JSON.stringify(s)}: gradient of input ${k} has dims [${analytic.dims}], the input [${values[k].dims}]`);
        for (let i = 0; i < x.length; i++) {
          const orig = x[i];
          x[i] = orig + h;
          const lp = Number((await cg.run(feeds(), ['loss'])).loss.data[0]);
          x[i] = orig - h;
          const lm = Number((await cg.run(feeds(), ['loss'])).loss.data[0]);
          x[i] = orig;
          const numeric = (lp - lm) / (2 * h);
          const a = Number(analytic.data[i]);
          const err = Math.abs(numeric - a) / Math.max(1, Math.abs(numeric));
          worst = Math.max(worst, err);
          if (!(err <= tol)) throw new Error(`sizes ${JSON.stringify(s)}: gradient mismatch for input ${k} element ${i}: analytic ${a}, numeric ${numeric} (rel err ${err.toExponential(2)} > ${tol})`);
        }
      }
    }
  } finally {
    await cg.release();
  }
  return { worst, backwardOps, outputShape: y.shape };
}
