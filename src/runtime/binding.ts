// Which ONNX Runtime runs the compiled graphs. The graph, autodiff, adapters
// and optimizers never see it: only session.ts does, through this interface.
// Node gets onnxruntime-node (ort.ts); a browser bundle gets onnxruntime-web
// (ort.browser.ts), swapped in by package.json's "browser" field, which
// esbuild, Vite, webpack and Rollup follow. Both packages implement
// onnxruntime-common's API; they differ in execution providers and in how
// threads are set.

import type { InferenceSession, Tensor } from 'onnxruntime-common';

/** lorakit's session settings; each runtime maps them to its own. */
export interface SessionOptions {
  /** Threads for one operator (intra-op). Node: default all cores, capped at 4. The browser sets threads once for the page (configureWebRuntime). */
  threads?: number;
  /** Node: 'cpu' (default) or 'cuda' where onnxruntime-node has it. Browser: 'wasm' or 'webgpu' (default: configureWebRuntime's). */
  device?: 'cpu' | 'cuda' | 'wasm' | 'webgpu';
  /** Write the ONNX model here for inspection (netron, onnxruntime tools). Node only. */
  dumpPath?: string;
  /** onnxruntime per-node profiling: a JSON trace is written with this file prefix (see `endProfiling`). Node only. */
  profilePrefix?: string;
  /** Write the model as onnxruntime optimized it (after fusions) to this path. Node only. */
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
  /**
   * false: onnxruntime does not keep a prepacked copy of each frozen weight
   * (`session.disable_prepacking`); its matrix products pack the weight at each
   * call instead. Default true (prepacked). See bench/RESULTS.md for the
   * resident memory saved and the step time it costs.
   */
  prepackWeights?: boolean;
  /**
   * onnxruntime's graph optimizations: 'all' (default) or 'basic' (constant
   * folding and redundant-node removal, no kernel fusions). Two graphs that
   * compute the same thing through different nodes can get different fusions,
   * hence different rounding: 'basic' compares them op for op.
   */
  optimization?: 'basic' | 'all';
}

export interface OrtBinding {
  /** The package that runs the graphs. */
  readonly name: 'onnxruntime-node' | 'onnxruntime-web';
  readonly Tensor: typeof Tensor;
  readonly InferenceSession: typeof InferenceSession;
  /** onnxruntime's session options for lorakit's. */
  sessionOptions(o: SessionOptions): InferenceSession.SessionOptions;
  /** Threads a session gets when SessionOptions.threads is not set. */
  defaultThreads(): number;
  /** A session for the model whose bytes `take` hands over (the caller keeps no other reference). */
  createSession(take: () => Uint8Array, options: InferenceSession.SessionOptions): Promise<InferenceSession>;
}

/** The `session.*` config entries for SessionOptions.prepackWeights (both runtimes read them). */
export function prepackConfig(prepack: boolean | undefined): Record<string, string> {
  return prepack === false ? { disable_prepacking: '1' } : {};
}
