// ONNX Runtime in Node: onnxruntime-node (CPU, or CUDA where installed). The
// browser bundle replaces this file by ort.browser.ts (package.json "browser").

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { prepackConfig, type OrtBinding, type SessionOptions } from './binding.ts';

/** Models at least this large are loaded from a temporary file (see createSession). */
const FILE_LOAD_BYTES = 64 * 2 ** 20;

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
  // A large model is handed to onnxruntime as a file, not as bytes: measured on the
  // ~100M Llama training graph (382 MB), onnxruntime then holds ~350 MB less for
  // the session's lifetime (resident 1585 vs 1930 MB after compile, bytes collected).
  async createSession(take, options) {
    let bytes: Uint8Array | undefined = take();
    if (bytes.length < FILE_LOAD_BYTES) return ort.InferenceSession.create(bytes, options);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-onnx-'));
    const file = path.join(dir, 'model.onnx');
    try {
      fs.writeFileSync(file, bytes);
      bytes = undefined; // the only copy left is the file's
      return await ort.InferenceSession.create(file, options);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  sessionOptions(opts: SessionOptions) {
    if (opts.device === 'wasm' || opts.device === 'webgpu') throw new Error(`device '${opts.device}' runs in a browser (onnxruntime-web); in Node use 'cpu' or 'cuda'`);
    return {
      intraOpNumThreads: opts.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: opts.optimization ?? 'all',
      executionProviders: [opts.device === 'cuda' ? 'cuda' : 'cpu'],
      extra: { session: { ...spinConfig(opts.spinMicros ?? 50), ...prepackConfig(opts.prepackWeights) } },
      ...(opts.profilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profilePrefix } : {}),
      ...(opts.optimizedModelPath ? { optimizedModelFilePath: opts.optimizedModelPath } : {}),
    };
  },
};
