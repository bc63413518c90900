// Central finite-difference check of autodiff: the analytic gradient of
// L = Σ f(x)·R (R a fixed random tensor) is compared with (L(x+h) − L(x−h)) / 2h
// for every element of every differentiable input.

import { DType, Graph, Value } from '../../src/graph/ir.ts';
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
