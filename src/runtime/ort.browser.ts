// ONNX Runtime in a browser: onnxruntime-web, WebAssembly (SIMD; threads when
// the page is cross-origin isolated) or WebGPU. Replaces ort.ts in a browser
// bundle (package.json "browser"). Threads are a property of the page, not of
// a session: onnxruntime-web reads env.wasm.numThreads once, when it starts
// its WebAssembly module, so configureWebRuntime() must come before the first
// session.

import * as ort from 'onnxruntime-web';
import { prepackConfig, type OrtBinding, type SessionOptions } from './binding.ts';

export interface WebRuntimeOptions {
  /**
   * Where onnxruntime-web's .wasm/.mjs files are served (a URL prefix ending
   * in '/'), e.g. '/ort/' serving node_modules/onnxruntime-web/dist/.
   * Default: onnxruntime-web's own (next to its script).
   */
  wasmPaths?: string;
  /**
   * WebAssembly threads. Default: up to 4 (the cores the browser reports)
   * when the page is cross-origin isolated, else 1: without the
   * Cross-Origin-Opener-Policy: same-origin and
   * Cross-Origin-Embedder-Policy: require-corp headers a page has no
   * SharedArrayBuffer, and onnxruntime-web falls back to one thread.
   */
  threads?: number;
  /** 'wasm' (default) or 'webgpu' (where navigator.gpu gives an adapter; operators WebGPU lacks run on wasm). */
  device?: 'wasm' | 'webgpu';
}

export interface WebRuntimeInfo {
  threads: number;
  device: 'wasm' | 'webgpu';
  crossOriginIsolated: boolean;
  /** The onnxruntime-web version. */
  version: string;
}

const isolated = (): boolean => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
const cores = (): number => (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;

let device: 'wasm' | 'webgpu' = 'wasm';
let started = false;
let configured = false;

/** Sets onnxruntime-web up; call before the first graph is compiled (threads cannot change after). */
export function configureWebRuntime(o: WebRuntimeOptions = {}): WebRuntimeInfo {
  const threads = o.threads ?? (isolated() ? Math.max(1, Math.min(4, cores())) : 1);
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`threads must be an integer ≥ 1, got ${o.threads}`);
  if (threads > 1 && !isolated()) {
    throw new Error(
      `${threads} WebAssembly threads need a cross-origin isolated page (serve it with Cross-Origin-Opener-Policy: same-origin and ` +
        'Cross-Origin-Embedder-Policy: require-corp); this page is not, so it can run 1 thread',
    );
  }
  if (started && threads !== ort.env.wasm.numThreads) {
    throw new Error(`onnxruntime-web already started with ${ort.env.wasm.numThreads} thread(s); threads are set once per page, before the first graph is compiled`);
  }
  ort.env.wasm.numThreads = threads;
  configured = true;
  if (o.wasmPaths !== undefined) ort.env.wasm.wasmPaths = o.wasmPaths;
  if (o.device) device = o.device;
  return runtimeInfo();
}

export function runtimeInfo(): WebRuntimeInfo {
  return { threads: ort.env.wasm.numThreads || binding.defaultThreads(), device, crossOriginIsolated: isolated(), version: ort.env.versions.web ?? '' };
}

export const binding: OrtBinding = {
  name: 'onnxruntime-web',
  Tensor: ort.Tensor,
  InferenceSession: ort.InferenceSession,
  createSession: (take, options) => ort.InferenceSession.create(take(), options),
  defaultThreads: () => (configured ? ort.env.wasm.numThreads! : isolated() ? Math.max(1, Math.min(4, cores())) : 1),
  sessionOptions(opts: SessionOptions) {
    if (opts.device === 'cpu' || opts.device === 'cuda') throw new Error(`device '${opts.device}' is onnxruntime-node's; in a browser use 'wasm' or 'webgpu'`);
    if (opts.dumpPath || opts.profilePrefix || opts.optimizedModelPath) throw new Error('dumpPath, profilePrefix and optimizedModelPath write files: Node only');
    // The first session starts onnxruntime-web: with configureWebRuntime's threads, else this session's (or the default).
    if (!configured) configureWebRuntime({ threads: opts.threads });
    else if (opts.threads !== undefined && opts.threads !== ort.env.wasm.numThreads) {
      throw new Error(`threads: ${opts.threads} asked for one session, but this page runs onnxruntime-web with ${ort.env.wasm.numThreads}; threads are set once, with configureWebRuntime({ threads })`);
    }
    started = true;
    const d = opts.device ?? device;
    return {
      executionProviders: d === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'],
      executionMode: 'sequential',
      graphOptimizationLevel: opts.optimization ?? 'all',
      ...(opts.prepackWeights === false ? { extra: { session: prepackConfig(false) } } : {}),
    };
  },
};
