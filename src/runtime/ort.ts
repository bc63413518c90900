// ONNX Runtime in Node: onnxruntime-node (CPU, or CUDA where installed). The
// browser bundle replaces this file by ort.browser.ts (package.json "browser").

import * as ort from 'onnxruntime-node';
import type { OrtBinding, SessionOptions } from './binding.ts';

function defaultThreads(): number {
  const env = Number(process.env.LORAKIT_THREADS);
  if (env > 0) return env;
  return Math.max(1, Math.min(4, (globalThis as any).navigator?.hardwareConcurrency ?? 2));
}

function spinConfig(us: number): Record<string, string> {
  if (!(us >= 0)) throw new Error(`spinMicros must be >= 0, got ${us}`);
  return us === 0 ? { 'intra_op.allow_spinning': '0' } : { 'intra_op.allow_spinning': '1', 'intra_op.spin_duration_us': String(Math.round(us)) };
}

export const binding: OrtBinding = {
  name: 'onnxruntime-node',
  Tensor: ort.Tensor,
  InferenceSession: ort.InferenceSession,
  defaultThreads,
  sessionOptions(opts: SessionOptions) {
    if (opts.device === 'wasm' || opts.device === 'webgpu') throw new Error(`device '${opts.device}' runs in a browser (onnxruntime-web); in Node use 'cpu' or 'cuda'`);
    return {
      intraOpNumThreads: opts.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      executionProviders: [opts.device === 'cuda' ? 'cuda' : 'cpu'],
      extra: { session: spinConfig(opts.spinMicros ?? 50) },
      ...(opts.profilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profilePrefix } : {}),
      ...(opts.optimizedModelPath ? { optimizedModelFilePath: opts.optimizedModelPath } : {}),
    };
  },
};
