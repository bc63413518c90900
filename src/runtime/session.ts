// A compiled graph: one onnxruntime session per graph (symbolic dims let one
// session serve every padded batch shape). Feeds and results are plain typed
// arrays with dims, so callers never touch onnxruntime types.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DType, Graph, TypedData } from '../graph/ir.ts';
import { feedNames, toOnnxBytes } from '../onnx/emit.ts';

export interface HostTensor {
  data: TypedData;
  dims: readonly number[];
}

export interface SessionOptions {
  /** Threads for one operator (intra-op). Default: all cores, capped at 4. */
  threads?: number;
  /** 'cpu' (default) or 'cuda' where onnxruntime-node has it. */
  device?: 'cpu' | 'cuda';
  /** Write the ONNX model here for inspection (netron, onnxruntime tools). */
  dumpPath?: string;
  /** onnxruntime per-node profiling: a JSON trace is written with this file prefix (see `endProfiling`). */
  profilePrefix?: string;
  /** Write the model as onnxruntime optimized it (after fusions) to this path. */
  optimizedModelPath?: string;
  /**
   * How long (µs) an idle intra-op thread busy-waits for the next operator
   * before it sleeps (onnxruntime's `session.intra_op.spin_duration_us`); 0
   * turns spinning off. Default 50. onnxruntime's own default spins much
   * longer, and on a machine shared with other processes the spinning thread
   * takes a core from the one doing the work; not spinning at all makes every
   * parallel operator pay a thread wake-up. Measured on 2 cores (BERT-like LoRA
   * training step, bench/train_step.ts): 2-layer/256 quiet 37.5 ms (default) /
   * 53.4 (off) / 37.9 (50 µs); 4-layer/768 with another busy process
   * 1230 / 979 / 971 ms.
   */
  spinMicros?: number;
}

/** Models at least this large are loaded from a temporary file (see compile). */
const FILE_LOAD_BYTES = 64 * 2 ** 20;

const ORT_TYPE: Record<DType, ort.Tensor.Type> = { float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', bool: 'bool', int8: 'int8', uint8: 'uint8' };

export function defaultThreads(): number {
  const env = Number(process.env.LORAKIT_THREADS);
  if (env > 0) return env;
  return Math.max(1, Math.min(4, (globalThis as any).navigator?.hardwareConcurrency ?? 2));
}

function spinConfig(us: number): Record<string, string> {
  if (!(us >= 0)) throw new Error(`spinMicros must be >= 0, got ${us}`);
  return us === 0 ? { 'intra_op.allow_spinning': '0' } : { 'intra_op.allow_spinning': '1', 'intra_op.spin_duration_us': String(Math.round(us)) };
}

export class CompiledGraph {
  private constructor(
    readonly graph: Graph,
    private session: ort.InferenceSession,
    readonly feeds: string[],
    readonly outputs: string[],
  ) {}

  static async compile(graph: Graph, opts: SessionOptions = {}): Promise<CompiledGraph> {
    let bytes: Uint8Array | null = toOnnxBytes(graph);
    if (opts.dumpPath) fs.writeFileSync(opts.dumpPath, bytes);
    // A large model is handed to onnxruntime as a file, not as bytes: measured on the
    // ~100M Llama training graph (382 MB), onnxruntime then holds ~350 MB less for
    // the session's lifetime (resident 1585 vs 1930 MB after compile, bytes collected).
    let modelFile: string | null = null;
    if (bytes.length >= FILE_LOAD_BYTES) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-onnx-'));
      modelFile = path.join(dir, 'model.onnx');
      fs.writeFileSync(modelFile, bytes);
      bytes = null; // the only copy left is the file's
    }
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      executionProviders: [opts.device === 'cuda' ? 'cuda' : 'cpu'],
      extra: { session: spinConfig(opts.spinMicros ?? 50) },
      ...(opts.profilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profilePrefix } : {}),
      ...(opts.optimizedModelPath ? { optimizedModelFilePath: opts.optimizedModelPath } : {}),
    };
    let session: ort.InferenceSession;
    try {
      session = modelFile ? await ort.InferenceSession.create(modelFile, sessionOptions) : await ort.InferenceSession.create(bytes!, sessionOptions);
    } finally {
      if (modelFile) fs.rmSync(path.dirname(modelFile), { recursive: true, force: true });
    }
    return new CompiledGraph(graph, session, feedNames(graph), graph.outputs.map((o) => o.name));
  }

  async run(feeds: Record<string, HostTensor>, outputs?: string[]): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.feeds) {
      const t = feeds[name];
      if (!t) throw new Error(`Graph '${this.graph.name}': missing feed '${name}' (expected: ${this.feeds.join(', ')})`);
      const leaf = this.graph.leaf(name)!;
      if (t.dims.length !== leaf.rank) {
        throw new Error(`Graph '${this.graph.name}': feed '${name}' has dims [${t.dims}], expected rank ${leaf.rank} [${leaf.shape}]`);
      }
      ortFeeds[name] = new ort.Tensor(ORT_TYPE[leaf.dtype], t.data as any, t.dims as number[]);
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
