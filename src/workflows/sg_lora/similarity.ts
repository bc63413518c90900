// SG-LoRA's deterministic pieces (what lorakit defines and tests against
// PyTorch; the paper's own values of these are not verified): the experts'
// weights for a new task from its description, w = softmax(cos(e, eᵢ) / τ)
// over the experts' description embeddings, and the weighted merge of expert
// LoRAs, ΔW = Σ wᵢ·ΔWᵢ exactly, written as PEFT's add_weighted_adapter 'cat'
// writes it (A = [w₁s₁A₁; w₂s₂A₂; …], B = [B₁ | B₂ | …], r = lora_alpha = Σ rᵢ,
// so its own scaling is 1), and every other tensor (a classification head
// saved as modules_to_save) as Σ wᵢ·tᵢ.

import type { StoredTensor } from '../../adapters/types.ts';

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa && bb ? ab / Math.sqrt(aa * bb) : 0;
}

/** softmax(cos(query, eᵢ) / τ) over the experts. */
export function similarityWeights(query: ArrayLike<number>, experts: ArrayLike<number>[], temperature: number): { cosines: number[]; weights: number[] } {
  if (!(temperature > 0)) throw new Error(`SG-LoRA: the temperature must be positive, got ${temperature}`);
  const cosines = experts.map((e) => cosine(query, e));
  const m = Math.max(...cosines);
  const ex = cosines.map((c) => Math.exp((c - m) / temperature));
  const z = ex.reduce((a, b) => a + b, 0);
  return { cosines, weights: ex.map((x) => x / z) };
}

/**
 * The 'cat' merge of LoRA tensor maps (PEFT keys) with weights wᵢ and scalings
 * sᵢ: per module A = [wᵢsᵢAᵢ], B = [Bᵢ]; other tensors Σ wᵢ·tᵢ. Returns the
 * tensors and the merged rank.
 */
export function weightedMerge(adapters: Map<string, StoredTensor>[], weights: number[], scalings: number[]): { tensors: Map<string, StoredTensor>; r: number } {
  const out = new Map<string, StoredTensor>();
  let rank = 0;
  for (const key of adapters[0].keys()) {
    if (key.endsWith('.lora_B.weight')) continue;
    if (key.endsWith('.lora_A.weight')) {
      const keyB = key.replace(/lora_A\.weight$/, 'lora_B.weight');
      const As = adapters.map((a) => a.get(key)!), Bs = adapters.map((a) => a.get(keyB)!);
      const n = As[0].shape[1], m = Bs[0].shape[0];
      const R = As.reduce((s, A) => s + A.shape[0], 0);
      const A = new Float32Array(R * n), B = new Float32Array(m * R);
      let off = 0;
      As.forEach((Ai, i) => {
        const ri = Ai.shape[0], f = weights[i] * scalings[i];
        for (let k = 0; k < ri * n; k++) A[off * n + k] = f * Ai.data[k];
        for (let row = 0; row < m; row++) for (let k = 0; k < ri; k++) B[row * R + off + k] = Bs[i].data[row * ri + k];
        off += ri;
      });
      out.set(key, { shape: [R, n], data: A });
      out.set(keyB, { shape: [m, R], data: B });
      rank = Math.max(rank, R);
      continue;
    }
    const t = adapters[0].get(key)!;
    const data = new Float32Array(t.data.length);
    adapters.forEach((a, i) => {
      const x = a.get(key)!.data;
      for (let k = 0; k < data.length; k++) data[k] += weights[i] * x[k];
    });
    out.set(key, { shape: t.shape, data });
  }
  return { tensors: out, r: rank };
}
