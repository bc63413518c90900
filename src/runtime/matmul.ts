// Dense float32 matrix products on ONNX Runtime, for host-side work too
// large for JavaScript loops (GaLore's projections and the range finder of its
// projector refresh: ~0.2 GFLOP per 768×2048 matrix at rank 128). One small
// Gemm graph per transpose combination, symbolic sizes, compiled once.

import { Graph } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { CompiledGraph } from './session.ts';

export class MatMulKernel {
  private graphs = new Map<string, Promise<CompiledGraph>>();

  constructor(readonly threads?: number) {}

  private compiled(transA: boolean, transB: boolean): Promise<CompiledGraph> {
    const key = `${transA}|${transB}`;
    let c = this.graphs.get(key);
    if (!c) {
      const g = new Graph(`matmul-${key}`);
      const a = g.input('A', 'float32', transA ? ['K', 'M'] : ['M', 'K']);
      const b = g.input('B', 'float32', transB ? ['N', 'K'] : ['K', 'N']);
      g.output('C', op.gemm(a, b, { transA, transB }));
      this.graphs.set(key, (c = CompiledGraph.compile(g, { threads: this.threads })));
    }
    return c;
  }

  /** C [m, n] = op(A)·op(B); A is [rows, cols] as stored (op = transpose where asked). */
  async run(a: Float32Array, aDims: [number, number], b: Float32Array, bDims: [number, number], o: { transA?: boolean; transB?: boolean } = {}): Promise<Float32Array> {
    const cg = await this.compiled(!!o.transA, !!o.transB);
    const out = await cg.run({ A: { data: a, dims: aDims }, B: { data: b, dims: bDims } });
    return out.C.data as Float32Array;
  }

  async release(): Promise<void> {
    for (const c of this.graphs.values()) await (await c).release();
    this.graphs.clear();
  }
}
