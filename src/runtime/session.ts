// A compiled graph: one onnxruntime session per graph (symbolic dims let one
// session serve every padded batch shape). Feeds and results are plain typed
// arrays with dims, so callers never touch onnxruntime types.

import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { DType, Graph, TypedData } from '../graph/ir.ts';
import { writeBytes } from '../io/files.ts';
import { feedNames, toOnnxBytes } from '../onnx/emit.ts';
import type { SessionOptions } from './binding.ts';
import { binding } from './ort.ts';

export type { SessionOptions };

export interface HostTensor {
  data: TypedData;
  dims: readonly number[];
}

/** The ONNX Runtime package graphs run on here ('onnxruntime-node', or 'onnxruntime-web' in a browser bundle). */
export const runtimeName = binding.name;

export const defaultThreads = (): number => binding.defaultThreads();

const ORT_TYPE: Record<DType, Tensor.Type> = { float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', bool: 'bool', int8: 'int8', uint8: 'uint8' };

export class CompiledGraph {
  private constructor(
    readonly graph: Graph,
    private session: InferenceSession,
    readonly feeds: string[],
    readonly outputs: string[],
  ) {}

  static async compile(graph: Graph, opts: SessionOptions = {}): Promise<CompiledGraph> {
    let bytes: Uint8Array | null = toOnnxBytes(graph);
    const sessionOptions = binding.sessionOptions(opts);
    if (opts.dumpPath) writeBytes(opts.dumpPath, bytes);
    // The binding takes the only reference: Node hands a large model to
    // onnxruntime as a file, so the bytes can be collected (ort.ts).
    const take = (): Uint8Array => {
      const b = bytes!;
      bytes = null;
      return b;
    };
    const session = await binding.createSession(take, sessionOptions);
    return new CompiledGraph(graph, session, feedNames(graph), graph.outputs.map((o) => o.name));
  }

  async run(feeds: Record<string, HostTensor>, outputs?: string[]): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, Tensor> = {};
    for (const name of this.feeds) {
      const t = feeds[name];
      if (!t) throw new Error(`Graph '${this.graph.name}': missing feed '${name}' (expected: ${this.feeds.join(', ')})`);
      const leaf = this.graph.leaf(name)!;
      if (t.dims.length !== leaf.rank) {
        throw new Error(`Graph '${this.graph.name}': feed '${name}' has dims [${t.dims}], expected rank ${leaf.rank} [${leaf.shape}]`);
      }
      ortFeeds[name] = new binding.Tensor(ORT_TYPE[leaf.dtype], t.data as any, t.dims as number[]);
    }
    const res = await this.session.run(ortFeeds, outputs ?? this.outputs);
    const out: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(res)) out[k] = { data: v.data as TypedData, dims: v.dims };
    return out;
  }

  /** Stops profiling (see `SessionOptions.profilePrefix`); the trace file is written now. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
