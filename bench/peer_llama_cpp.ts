// llama.cpp through node-llama-cpp (prebuilt CPU binaries from npm, never
// built here): the peer of lorakit's generation on the same weights exported
// as GGUF (bench/generate.ts) and the oracle of test/gguf_export.test.ts.
// Everything runs on token ids (no text): greedy tokens, the first step's
// logits, and timed greedy generation.

import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaModel, type Token } from 'node-llama-cpp';

let llamaP: Promise<Llama> | undefined;

/** The CPU build of llama.cpp (no GPU, no compilation: a missing prebuilt binary is an error). */
export function llamaCpp(): Promise<Llama> {
  llamaP ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
  return llamaP;
}

export interface PeerOptions {
  /** GGUF LoRA files applied at load time (scale 1 unless given). */
  lora?: { filePath: string; scale?: number }[];
  threads?: number;
  contextSize?: number;
}

export interface LlamaCppPeer {
  model: LlamaModel;
  context: LlamaContext;
  /** Greedy continuation of `prompt` (token ids), `n` new tokens, no stop token. */
  greedy(prompt: number[], n: number): Promise<number[]>;
  /** Logits of the next token after `prompt`, indexed by token id. */
  nextLogits(prompt: number[]): Promise<Float32Array>;
  /** Timed greedy run: the first token (prompt processing) and the n − 1 after it, as lorakit's Generator times them. */
  timed(prompt: number[], n: number): Promise<{ tokens: number[]; prefillMs: number; decodeMs: number }>;
  dispose(): Promise<void>;
}

export async function loadLlamaCppPeer(modelPath: string, o: PeerOptions = {}): Promise<LlamaCppPeer> {
  const llama = await llamaCpp();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const threads = o.threads ?? 1;
  const context = await model.createContext({
    contextSize: o.contextSize ?? Math.min(512, model.trainContextSize),
    threads: { ideal: threads, min: threads },
    // float32 throughout, as lorakit computes: llama.cpp's default KV cache is float16, and its CPU flash
    // attention (on by default) rounds Q·K through float16 (first-step logits then differ by ~1e-3, not ~1e-6).
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false,
    ...(o.lora && { lora: { adapters: o.lora.map((a) => ({ filePath: a.filePath, scale: a.scale ?? 1 })) } }),
  });
  const seq = context.getSequence();
  // Step by step through controlledEvaluate: evaluate() would end at an end-of-generation token (llama.cpp's SentencePiece
  // default makes id 2 one even when the file names none), lorakit's Generator is told not to stop.
  const timed = async (prompt: number[], n: number) => {
    await seq.clearHistory();
    const tokens: number[] = [];
    let input: number[] = prompt;
    const t0 = performance.now();
    let prefillMs = 0;
    while (tokens.length < n) {
      const items = input.map((t, i) => (i === input.length - 1 ? [t as Token, { generateNext: { token: true, options: { temperature: 0 } } }] : (t as Token)));
      const res = await seq.controlledEvaluate(items as any);
      const next = res[input.length - 1]?.next?.token;
      if (next === undefined || next === null) throw new Error('node-llama-cpp returned no next token');
      if (!tokens.length) prefillMs = performance.now() - t0;
      tokens.push(next);
      input = [next];
    }
    return { tokens, prefillMs, decodeMs: performance.now() - t0 - prefillMs };
  };
  return {
    model, context, timed,
    greedy: async (prompt, n) => (await timed(prompt, n)).tokens,
    async nextLogits(prompt) {
      await seq.clearHistory();
      const items = prompt.map((t, i) => (i === prompt.length - 1 ? [t as Token, { generateNext: { logits: true } }] as const : (t as Token)));
      const res = await seq.controlledEvaluate(items as any);
      const logits = res[prompt.length - 1]?.next?.logits;
      if (!logits) throw new Error('node-llama-cpp returned no logits');
      let V = 0;
      for (const t of logits.keys()) V = Math.max(V, t + 1);
      const out = new Float32Array(V);
      for (const [t, v] of logits) out[t] = v;
      return out;
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}
