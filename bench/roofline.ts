// The GEMM limit of a training step, measured on this machine in the same
// process: every MatMul / Gemm of the step's graph (shapes, transposes and
// which operand is a frozen initializer, as onnxruntime prepacks those) is run
// alone in onnxruntime with the step's thread count (kernel times from
// onnxruntime's profiler), interleaved with the timed steps; the limit is the
// time those products take by themselves. The step's FLOPs come from the graph
// (src/graph/cost.ts). fraction of the GEMM limit = limit time / step time
// = (step FLOPs / GEMM throughput) / step time.

import type { DimBinding, MatrixProduct } from '../src/graph/cost.ts';
import { matrixProducts } from '../src/graph/cost.ts';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { CompiledGraph, type HostTensor } from '../src/runtime/session.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

/**
 * The step's products in one onnxruntime session (one node per distinct shape,
 * its own operands; frozen weights as initializers, as in the step), profiled:
 * each product's time is onnxruntime's kernel time for its node, so session
 * overhead and thread wake-ups between runs do not count against the limit.
 * `measure()` runs the set once: call it between timed steps, so that the
 * machine's load hits both alike. `result()` takes the median per shape.
 */
export class GemmLimitProbe {
  private constructor(
    readonly flops: number,
    readonly products: number,
    private readonly shapes: { key: string; count: number; flops: number; node: string }[],
    private readonly cg: CompiledGraph,
    private readonly feeds: Record<string, HostTensor>,
    private readonly prefix: string,
  ) {}

  static async create(g: Graph, dims: DimBinding, opts: { threads: number; spinMicros?: number }): Promise<GemmLimitProbe> {
    const products = matrixProducts(g, dims);
    const byKey = new Map<string, { p: MatrixProduct; count: number }>();
    for (const p of products) {
      const key = `${p.op}${p.transA ? 'ᵀ' : ''}${p.transB ? '·ᵀ' : ''} [${p.a}]${p.aConst ? '(w)' : ''}·[${p.b}]${p.bConst ? '(w)' : ''}`;
      const c = byKey.get(key);
      if (c) c.count++;
      else byKey.set(key, { p, count: 1 });
    }
    const pg = new Graph('gemm-limit');
    const feeds: Record<string, HostTensor> = {};
    const operand = (name: string, shape: number[], isConst: boolean, seed: number) => {
      const data = fill(shape.reduce((x, y) => x * y, 1), seed);
      if (isConst) return pg.weight(name, data, shape);
      feeds[name] = { data, dims: shape };
      return pg.input(name, 'float32', shape);
    };
    const shapes: { key: string; count: number; flops: number; node: string }[] = [];
    for (const [key, { p, count }] of byKey) {
      const i = shapes.length;
      const a = operand(`a${i}`, p.a, p.aConst, 2 * i + 1), b = operand(`b${i}`, p.b, p.bConst, 2 * i + 2);
      pg.output(`y${i}`, p.op === 'Gemm' ? op.gemm(a, b, { transA: p.transA, transB: p.transB }) : op.matmul(a, b));
      shapes.push({ key, count, flops: p.flops, node: `${p.op}_${pg.nodes.length - 1}` }); // the emitted node name (onnx/emit.ts)
    }
    const prefix = path.join(os.tmpdir(), `lorakit-gemm-limit-${process.pid}-${Date.now()}`);
    const cg = await CompiledGraph.compile(pg, { threads: opts.threads, spinMicros: opts.spinMicros, profilePrefix: prefix });
    await cg.run(feeds); // warm-up (allocations, prepacking); its times are dropped
    return new GemmLimitProbe(products.reduce((t, p) => t + p.flops, 0), products.length, shapes, cg, feeds, prefix);
  }

  /** Runs every shape once. */
  async measure(): Promise<void> {
    await this.cg.run(this.feeds);
  }

  /** Ends profiling and releases the session; per shape, the median kernel time over the measured runs. */
  async result(): Promise<GemmLimit> {
    this.cg.endProfiling();
    await this.cg.release();
    const dir = path.dirname(this.prefix), base = path.basename(this.prefix);
    const us = new Map<string, number[]>();
    for (const f of fs.readdirSync(dir).filter((x) => x.startsWith(base) && x.endsWith('.json'))) {
      const events = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { cat: string; name: string; dur: number }[];
      for (const e of events) {
        if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
        const node = e.name.slice(0, -'_kernel_time'.length);
        us.set(node, [...(us.get(node) ?? []), e.dur]);
      }
      fs.rmSync(path.join(dir, f), { force: true });
    }
    const classes: GemmClass[] = this.shapes.map((s) => {
      const runs = (us.get(s.node) ?? []).slice(1); // the first is the warm-up
      if (!runs.length) throw new Error(`roofline: no profile of node ${s.node} (${s.key})`);
      const ms = median(runs) / 1000;
      return { key: s.key, count: s.count, flops: s.flops * s.count, ms: ms * s.count, gflops: ms > 0 ? s.flops / ms / 1e6 : Infinity };
    });
    classes.sort((x, y) => y.ms - x.ms);
    const ms = classes.reduce((t, c) => t + c.ms, 0);
    return { flops: this.flops, ms, gflops: this.flops / ms / 1e6, products: this.products, classes };
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
