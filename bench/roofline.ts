// The GEMM limit of a training step, measured on this machine in the same
// process: every MatMul / Gemm of the step's graph (shapes, transposes and
// which operand is a frozen initializer, as onnxruntime prepacks those) is run
// alone in onnxruntime with the step's thread count, interleaved with the
// timed steps; the limit is the time those products take by themselves. The step's FLOPs come from the graph
// (src/graph/cost.ts). fraction of the GEMM limit = limit time / step time
// = (step FLOPs / GEMM throughput) / step time.

import type { DimBinding, MatrixProduct } from '../src/graph/cost.ts';
import { matrixProducts } from '../src/graph/cost.ts';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { CompiledGraph, type HostTensor } from '../src/runtime/session.ts';

export interface GemmClass { key: string; count: number; flops: number; ms: number; gflops: number }

export interface GemmLimit {
  /** MatMul/Gemm FLOPs of one step (forward + backward). */
  flops: number;
  /** Time the step's products take alone (run overhead subtracted). */
  ms: number;
  gflops: number;
  products: number;
  /** Distinct product shapes, slowest total first. */
  classes: GemmClass[];
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

function fill(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (((i * 2654435761 + seed) >>> 0) % 1000) / 1000 - 0.5;
  return out;
}

async function timeRuns(cg: CompiledGraph, feeds: Record<string, HostTensor>, runs: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await cg.run(feeds, ['y']);
    times.push(performance.now() - t);
  }
  return median(times);
}

function productGraph(p: MatrixProduct): { g: Graph; feeds: Record<string, HostTensor> } {
  const g = new Graph('gemm');
  const feeds: Record<string, HostTensor> = {};
  const operand = (name: string, shape: number[], isConst: boolean, seed: number) => {
    const data = fill(shape.reduce((x, y) => x * y, 1), seed);
    if (isConst) return g.weight(name, data, shape);
    feeds[name] = { data, dims: shape };
    return g.input(name, 'float32', shape);
  };
  const a = operand('a', p.a, p.aConst, 1), b = operand('b', p.b, p.bConst, 2);
  g.output('y', p.op === 'Gemm' ? op.gemm(a, b, { transA: p.transA, transB: p.transB }) : op.matmul(a, b));
  return { g, feeds };
}

/**
 * The step's products, compiled one session per distinct shape (warmed up:
 * allocations, prepacking). `measure()` runs each once and returns the time of
 * the whole set (count × time per shape, run overhead taken off): call it
 * between timed steps, so that the machine's load hits both alike.
 */
export class GemmLimitProbe {
  private samples: number[][] = [];
  private constructor(
    readonly flops: number,
    readonly products: number,
    private readonly shapes: { key: string; count: number; flops: number; cg: CompiledGraph; feeds: Record<string, HostTensor> }[],
    private readonly overheadMs: number,
  ) {
    this.samples = shapes.map(() => []);
  }

  static async create(g: Graph, dims: DimBinding, opts: { threads: number; spinMicros?: number }): Promise<GemmLimitProbe> {
    const products = matrixProducts(g, dims);
    const byKey = new Map<string, { p: MatrixProduct; count: number }>();
    for (const p of products) {
      const key = `${p.op}${p.transA ? 'ᵀ' : ''}${p.transB ? '·ᵀ' : ''} [${p.a}]${p.aConst ? '(w)' : ''}·[${p.b}]${p.bConst ? '(w)' : ''}`;
      const c = byKey.get(key);
      if (c) c.count++;
      else byKey.set(key, { p, count: 1 });
    }
    const compile = async (p: MatrixProduct) => {
      const { g: pg, feeds } = productGraph(p);
      const cg = await CompiledGraph.compile(pg, { threads: opts.threads, spinMicros: opts.spinMicros });
      await cg.run(feeds, ['y']); // warm-up
      return { cg, feeds };
    };
    // The cost of one run around a product (feeds, output tensor), taken off every shape's time.
    const tiny = await compile({ op: 'MatMul', a: [1, 1], b: [1, 1], transA: false, transB: false, aConst: false, bConst: false, batch: 1, m: 1, k: 1, n: 1, flops: 2 });
    const overheadMs = await timeRuns(tiny.cg, tiny.feeds, 21);
    await tiny.cg.release();
    const shapes = [];
    for (const [key, { p, count }] of byKey) shapes.push({ key, count, flops: p.flops, ...(await compile(p)) });
    return new GemmLimitProbe(products.reduce((s, p) => s + p.flops, 0), products.length, shapes, overheadMs);
  }

  /** One pass over every shape (median of 3 runs each); the GEMM-limit time of one step (ms). */
  async measure(): Promise<number> {
    let total = 0;
    for (let i = 0; i < this.shapes.length; i++) {
      const s = this.shapes[i];
      const ms = Math.max(0, (await timeRuns(s.cg, s.feeds, 3)) - this.overheadMs); // median of 3: one preemption must not count
      this.samples[i].push(ms);
      total += ms * s.count;
    }
    return total;
  }

  /** Medians per shape over every measure() so far. */
  result(): GemmLimit {
    const classes: GemmClass[] = this.shapes.map((s, i) => {
      const ms = median(this.samples[i]);
      return { key: s.key, count: s.count, flops: s.flops * s.count, ms: ms * s.count, gflops: ms > 0 ? s.flops / ms / 1e6 : Infinity };
    });
    classes.sort((x, y) => y.ms - x.ms);
    const ms = classes.reduce((t, c) => t + c.ms, 0);
    return { flops: this.flops, ms, gflops: this.flops / ms / 1e6, products: this.products, classes };
  }

  async release(): Promise<void> {
    for (const s of this.shapes) await s.cg.release();
  }
}

/** The report lines (the fraction line is what the smoke test looks for). */
export function rooflineLines(limit: GemmLimit, lorakitMs: number, torchMs: number | null, threads: number): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return [
    `roofline: ${(limit.flops / 1e9).toFixed(2)} GFLOP per step in ${limit.products} MatMul/Gemm (forward + backward, counted from the graph); ` +
      `the same products alone in onnxruntime (${threads} threads): ${limit.ms.toFixed(1)} ms = ${limit.gflops.toFixed(1)} GFLOP/s`,
    ...limit.classes.slice(0, 4).map((c) => `  ${c.count} × ${c.key}: ${c.ms.toFixed(1)} ms, ${Number.isFinite(c.gflops) ? c.gflops.toFixed(1) : '—'} GFLOP/s`),
    `fraction of the GEMM limit: lorakit ${pct(limit.ms / lorakitMs)}` + (torchMs === null ? '' : `, torch ${pct(limit.ms / torchMs)} (of the same onnxruntime GEMM time)`),
  ];
}
