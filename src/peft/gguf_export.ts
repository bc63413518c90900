// Llama-family decoders (Llama, Mistral, Qwen2) as GGUF for llama.cpp, and an
// adapter alone as a GGUF LoRA that llama.cpp applies at load time. Names and
// conventions are llama.cpp's (convert_hf_to_gguf.py / convert_lora_to_gguf.py):
// - tensors token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
//   ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm, output (absent when the
//   head is tied: llama.cpp then reads token_embd);
// - llama.cpp's "llama" architecture rotates interleaved pairs (x0,x1), HF the
//   two halves (rotate_half): Q and K rows are permuted within each head so the
//   two agree (row h·d + 2i + j takes HF row h·d + j·d/2 + i). "qwen2" rotates
//   halves itself (NeoX order): no permutation;
// - a LoRA pair is `<tensor>.lora_a` [r, in] and `<tensor>.lora_b` [out, r]
//   (PyTorch order), scaled by adapter.lora.alpha / r; lora_b of Q and K gets
//   the same row permutation. One alpha serves the whole file, so each module's
//   own scale (rank_pattern / alpha_pattern, rsLoRA, other methods' scales) is
//   folded into its lora_b.

import type { AdapterSet } from '../adapters/inject.ts';
import type { DecoderModel } from '../models/decoder.ts';
import { LLAMA_FAMILY, type LlamaConfig } from '../models/llama.ts';
import type { LinearSite } from '../models/types.ts';
import { gguf, writeGguf, type GgufDtype, type GgufTensorInput, type GgufValue } from '../io/gguf.ts';
import { float32Of, isStandIn } from '../quant/quantized_weights.ts';

export type GgufArch = 'llama' | 'qwen2';

/** llama.cpp's architecture for a lorakit decoder, or an error naming what is supported. */
export function ggufArchitecture(model: DecoderModel): GgufArch {
  const t = model.config.modelType;
  if (!LLAMA_FAMILY.includes(t)) throw new Error(`export-gguf: model_type '${t}' is not supported (Llama, Mistral and Qwen2 folders only); use export-onnx for other families`);
  const c = model.config as LlamaConfig;
  if (c.layerShapes) throw new Error('export-gguf: this model has layers of different widths (lorakit loram prune); llama.cpp needs every layer alike');
  return t === 'qwen2' ? 'qwen2' : 'llama';
}

const MODULE_NAMES: Record<string, string> = {
  'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
  input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
};

/** The GGUF name of a Hugging Face tensor key of a Llama-family model (`model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`). */
export function ggufTensorName(key: string): string {
  if (key === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (key === 'model.norm.weight') return 'output_norm.weight';
  if (key === 'lm_head.weight') return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(key);
  const name = m && MODULE_NAMES[m[2]];
  if (!m || !name) throw new Error(`export-gguf: tensor '${key}' has no llama.cpp counterpart`);
  return `blk.${m[1]}.${name}.${m[3]}`;
}

/**
 * Rows of a Q or K projection ([heads·d, cols] row-major) in llama.cpp's
 * interleaved rotary order: within each head, row 2i + j takes row j·d/2 + i.
 */
export function permuteRotaryRows(data: Float32Array, heads: number, cols: number): Float32Array {
  const rows = data.length / cols, d = rows / heads, half = d / 2;
  if (!Number.isInteger(d) || d % 2) throw new Error(`permuteRotaryRows: ${rows} rows do not split into ${heads} heads of even size`);
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const to = h * d + 2 * i + j, from = h * d + j * half + i;
        out.set(data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** Heads whose rows a tensor's Q/K permutation groups by, or undefined when the tensor is not permuted. */
function rotaryHeads(arch: GgufArch, c: LlamaConfig, key: string): number | undefined {
  if (arch !== 'llama') return undefined;
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(key)) return c.numHeads;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(key)) return c.numKvHeads;
  return undefined;
}

/** llama.<key> / qwen2.<key> hyper-parameters. */
export function ggufModelMetadata(model: DecoderModel, name: string): Map<string, GgufValue> {
  const arch = ggufArchitecture(model);
  const c = model.config as LlamaConfig;
  const m = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    ['general.type', gguf.str('model')],
    ['general.name', gguf.str(name)],
    ['general.file_type', gguf.u32(0)], // ALL_F32; F16 below
    [`${arch}.vocab_size`, gguf.u32(c.vocabSize)],
    [`${arch}.context_length`, gguf.u32(c.maxPositions)],
    [`${arch}.embedding_length`, gguf.u32(c.hiddenSize)],
    [`${arch}.block_count`, gguf.u32(c.numLayers)],
    [`${arch}.feed_forward_length`, gguf.u32(c.intermediateSize)],
    [`${arch}.attention.head_count`, gguf.u32(c.numHeads)],
    [`${arch}.attention.head_count_kv`, gguf.u32(c.numKvHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(c.rmsNormEps)],
    [`${arch}.rope.freq_base`, gguf.f32(c.ropeTheta)],
    [`${arch}.rope.dimension_count`, gguf.u32(c.headDim)],
  ]);
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    m.set(`${arch}.attention.key_length`, gguf.u32(c.headDim));
    m.set(`${arch}.attention.value_length`, gguf.u32(c.headDim));
  }
  return m;
}

export interface GgufModelExport {
  /** Float type of the matrices (norms stay F32, as llama.cpp's converter keeps 1-D tensors). Default F32. */
  dtype?: GgufDtype;
  /** tokenizer.ggml.* (src/tokenize/gguf_vocab.ts). */
  vocab: Map<string, GgufValue>;
  name: string;
}

/** The model's tensors under llama.cpp's names, Q/K rows permuted where the architecture needs it. */
export function ggufModelTensors(model: DecoderModel, dtype: GgufDtype = 'F32'): GgufTensorInput[] {
  const arch = ggufArchitecture(model);
  const c = model.config as LlamaConfig;
  const tensors: GgufTensorInput[] = [];
  for (const [key, t] of model.weights) {
    if (/\.mlp\.\w+\.bias$/.test(key) || key === 'lm_head.bias') throw new Error(`export-gguf: '${key}': MLP / head biases have no place in llama.cpp's ${arch} graph`);
    if (key === 'lm_head.weight' && c.tieWordEmbeddings) continue;
    if (!(t.data instanceof Float32Array) || isStandIn(t.data)) throw new Error(`export-gguf: '${key}' is not float32 (load the model with --base-dtype fp32)`);
    const heads = rotaryHeads(arch, c, key);
    const cols = t.shape.length === 2 ? t.shape[1] : 1;
    const data = heads ? permuteRotaryRows(t.data, heads, cols) : t.data;
    tensors.push({ name: ggufTensorName(key), shape: t.shape, data, dtype: t.shape.length >= 2 ? dtype : 'F32' });
  }
  return tensors;
}

/** Writes the model (with whatever weights it holds: merge adapters first) as one GGUF file. */
export function exportModelGguf(model: DecoderModel, file: string, o: GgufModelExport): { bytes: number; tensors: number } {
  const meta = ggufModelMetadata(model, o.name);
  if ((o.dtype ?? 'F32') === 'F16') meta.set('general.file_type', gguf.u32(1)); // MOSTLY_F16
  for (const [k, v] of o.vocab) meta.set(k, v);
  const tensors = ggufModelTensors(model, o.dtype);
  return { bytes: writeGguf(file, meta, tensors), tensors: tensors.length };
}

/**
 * The adapter alone as a GGUF LoRA (general.type adapter): every method whose
 * ΔW is scale·B·A (LoRA and its variants with low-rank factors), on linear
 * modules. Refused with the reason: methods without low-rank factors (DoRA,
 * sparse or spectral ones), residual inits that change the base (PiSSA/OLoRA),
 * trained biases or saved modules, embedding or tied-head targets — all of
 * which `export-gguf --adapter` merges exactly into the base instead.
 */
export function exportLoraGguf(model: DecoderModel, set: AdapterSet, file: string, o: { name: string; dtype?: GgufDtype }): { bytes: number; modules: number; alpha: number } {
  const arch = ggufArchitecture(model);
  const c = model.config as LlamaConfig;
  const method = set.method.name;
  const mergeHint = 'export the merged model with --adapter instead (without --adapter-only)';
  if (!set.method.factors) throw new Error(`export-gguf --adapter-only: method '${method}' has no low-rank ΔW = s·B·A, which is all llama.cpp's LoRA applies; ${mergeHint}`);
  if (set.baseOverrides.size) throw new Error(`export-gguf --adapter-only: '${method}' changed the base weights (residual init such as PiSSA/OLoRA); ${mergeHint}`);
  if (set.baseCopyKeys().length) throw new Error(`export-gguf --adapter-only: the adapter trains copies of base tensors (${set.baseCopyKeys().slice(0, 3).join(', ')}); llama.cpp's LoRA holds only A and B: ${mergeHint}`);
  const pairs: { site: LinearSite; A: Float32Array; B: Float32Array; r: number; scaleR: number }[] = [];
  for (const site of set.targets) {
    if (site.kind === 'embedding' || (site.name === 'lm_head' && c.tieWordEmbeddings)) {
      throw new Error(`export-gguf --adapter-only: the adapter targets '${site.name}' (${site.kind === 'embedding' ? 'an embedding table' : 'a head tied to the embedding table'}); ${mergeHint}`);
    }
    const f = set.factorsFor(site, () => float32Of(model.weights.get(site.weightKey)!.data as Float32Array));
    if (f.r === 0) continue; // a closed gate (SoRA, CoDyRA): no ΔW
    pairs.push({ site, A: f.A, B: f.B, r: f.r, scaleR: f.scale * f.r });
  }
  if (!pairs.length) throw new Error('export-gguf --adapter-only: the adapter has no module with rank ≥ 1');
  // The alpha most modules already have (plain LoRA: its lora_alpha), so their B is written unchanged.
  const counts = new Map<number, number>();
  for (const p of pairs) counts.set(p.scaleR, (counts.get(p.scaleR) ?? 0) + 1);
  const alpha = [...counts].sort((a, b) => b[1] - a[1])[0][0];
  const tensors: GgufTensorInput[] = [];
  for (const { site, A, B, r, scaleR } of pairs) {
    const name = ggufTensorName(site.weightKey);
    const fold = scaleR / alpha;
    let b = fold === 1 ? B : B.map((v) => v * fold);
    const heads = rotaryHeads(arch, c, site.weightKey);
    if (heads) b = permuteRotaryRows(b, heads, r);
    tensors.push({ name: `${name}.lora_a`, shape: [r, site.inFeatures], data: A, dtype: o.dtype });
    tensors.push({ name: `${name}.lora_b`, shape: [site.outFeatures, r], data: b, dtype: o.dtype });
  }
  const meta = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    ['general.type', gguf.str('adapter')],
    ['general.name', gguf.str(o.name)],
    ['adapter.type', gguf.str('lora')],
    ['adapter.lora.alpha', gguf.f32(alpha)],
  ]);
  return { bytes: writeGguf(file, meta, tensors), modules: pairs.length, alpha };
}
