// A Hugging Face tokenizer.json as llama.cpp's vocabulary metadata
// (tokenizer.ggml.*; llama.cpp refuses a model without one). The token list is
// dense by id and as long as the embedding table (ids past the tokenizer's own
// are `[PAD<id>]`, type unused, as llama.cpp's converter pads). Which of
// llama.cpp's tokenizer models each tokenizer.json maps to:
// - BPE with byte_fallback (Llama 2, Mistral): "llama" (SentencePiece); a
//   token's score is minus the rank of the merge that makes it, so the highest
//   score merges first, as the BPE merges list orders them.
// - byte-level BPE (GPT-2 style: Llama 3, Qwen2): "gpt2", with the merges and
//   tokenizer.ggml.pre naming the pre-tokenizer regex, read from
//   tokenizer.json: GPT-2's built into ByteLevel → "gpt-2", Llama 3's split
//   regex → "llama-bpe", Qwen2's → "qwen2"; another regex falls back by
//   model_type (llama.cpp's converter recognizes it by hashing real tokenizer
//   outputs; a wrong guess changes how text splits, never the token ids the
//   model computes on).
// - Unigram: "llama" with the unigram scores.
// - WordPiece: "bert", with llama.cpp's phantom-space spelling (a word-initial
//   piece gets "▁", a "##" continuation loses its prefix).
// Token types: 1 normal, 2 unknown, 3 control (special added tokens), 4 user
// defined (other added tokens), 5 unused (padding), 6 byte (<0xNN>).

import type { GgufValue } from '../io/gguf.ts';
import { gguf } from '../io/gguf.ts';

const NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

export interface GgufVocabOptions {
  /** Length of the token list: the model's vocab_size (≥ the tokenizer's ids). */
  vocabSize: number;
  /** config.json's model_type (chooses the BPE pre-tokenizer name). */
  modelType: string;
  bosTokenId?: number;
  eosTokenId?: number;
  padTokenId?: number;
  /** tokenizer_config.json's add_bos_token / add_eos_token where given. */
  addBos?: boolean;
  addEos?: boolean;
}

/** tokenizer.ggml.* metadata from a parsed tokenizer.json. */
export function ggufVocabFromTokenizerJson(tok: Record<string, any>, o: GgufVocabOptions): Map<string, GgufValue> {
  const model = tok?.model;
  const type: string | undefined = model?.type;
  if (!model || !type) throw new Error('tokenizer.json: no model.type (BPE, WordPiece or Unigram expected)');
  const tokens: (string | undefined)[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const put = (id: number, text: string, score: number, t: number) => {
    if (!(Number.isInteger(id) && id >= 0)) throw new Error(`tokenizer.json: token '${text}' has id ${id}`);
    tokens[id] = text; scores[id] = score; types[id] = t;
  };
  const meta = new Map<string, GgufValue>();
  let ggmlModel: string;
  if (type === 'Unigram') {
    ggmlModel = 'llama';
    (model.vocab as [string, number][]).forEach(([piece, score], id) => put(id, piece, score, /^<0x[0-9A-Fa-f]{2}>$/.test(piece) ? BYTE : NORMAL));
    if (Number.isInteger(model.unk_id)) types[model.unk_id] = UNKNOWN;
  } else if (type === 'BPE' || type === 'WordPiece') {
    const vocab = model.vocab as Record<string, number>;
    if (type === 'WordPiece') {
      ggmlModel = 'bert';
      const prefix: string = model.continuing_subword_prefix ?? '##';
      for (const [text, id] of Object.entries(vocab)) put(id, text.startsWith(prefix) ? text.slice(prefix.length) : `\u2581${text}`, 0, NORMAL);
    } else {
      const merges: string[] = (model.merges ?? []).map((m: string | [string, string]) => (Array.isArray(m) ? m.join(' ') : m));
      if (model.byte_fallback) {
        ggmlModel = 'llama';
        const rankOf = new Map<string, number>();
        merges.forEach((m, r) => {
          const merged = m.replace(' ', '');
          if (!rankOf.has(merged)) rankOf.set(merged, r);
        });
        for (const [text, id] of Object.entries(vocab)) put(id, text, -(rankOf.get(text) ?? 0), /^<0x[0-9A-Fa-f]{2}>$/.test(text) ? BYTE : NORMAL);
      } else {
        ggmlModel = 'gpt2';
        for (const [text, id] of Object.entries(vocab)) put(id, text, 0, NORMAL);
        meta.set('tokenizer.ggml.pre', gguf.str(bpePreTokenizer(tok, o.modelType)));
        meta.set('tokenizer.ggml.merges', gguf.arr('string', merges));
      }
    }
    const unk = model.unk_token;
    if (typeof unk === 'string' && vocab[unk] !== undefined) types[vocab[unk]] = UNKNOWN;
  } else throw new Error(`tokenizer.json: model type '${type}' has no llama.cpp vocabulary here (BPE, WordPiece, Unigram)`);
  const unkBefore = types.indexOf(UNKNOWN);
  for (const a of tok.added_tokens ?? []) {
    if (tokens[a.id] === undefined || a.special) put(a.id, a.content, 0, a.id === unkBefore ? UNKNOWN : a.special ? CONTROL : USER_DEFINED);
  }
  if (tokens.length > o.vocabSize) throw new Error(`tokenizer.json has token ids up to ${tokens.length - 1}, but the model's vocab_size is ${o.vocabSize}`);
  for (let id = 0; id < o.vocabSize; id++) {
    if (tokens[id] === undefined) { tokens[id] = `[PAD${id}]`; scores[id] = 0; types[id] = UNUSED; }
  }
  // llama.cpp looks up the newline byte token of a SentencePiece vocabulary while loading and aborts the process without it.
  if (ggmlModel === 'llama' && !tokens.includes('<0x0A>')) throw new Error('tokenizer.json: a SentencePiece-style vocabulary without byte tokens (<0x0A> missing); llama.cpp cannot load it');
  meta.set('tokenizer.ggml.model', gguf.str(ggmlModel));
  meta.set('tokenizer.ggml.tokens', gguf.arr('string', tokens as string[]));
  if (ggmlModel !== 'gpt2') meta.set('tokenizer.ggml.scores', gguf.arr('f32', scores));
  meta.set('tokenizer.ggml.token_type', gguf.arr('i32', types));
  const unkId = types.indexOf(UNKNOWN);
  const ids: [string, number | undefined][] = [['bos', o.bosTokenId], ['eos', o.eosTokenId], ['unknown', unkId >= 0 ? unkId : undefined], ['padding', o.padTokenId]];
  for (const [k, v] of ids) if (v !== undefined && v >= 0 && v < o.vocabSize) meta.set(`tokenizer.ggml.${k}_token_id`, gguf.u32(v));
  const addBos = o.addBos ?? bosInTemplate(tok, o.bosTokenId);
  meta.set('tokenizer.ggml.add_bos_token', gguf.bool(addBos));
  meta.set('tokenizer.ggml.add_eos_token', gguf.bool(o.addEos ?? false));
  return meta;
}

/** The split regexes of llama.cpp's pre-tokenizer types that tokenizer.json spells out (Llama 3's, Qwen2's). */
const SPLIT_REGEX_PRE: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'llama-bpe',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'qwen2',
};

/** tokenizer.ggml.pre for a byte-level BPE tokenizer.json. */
function bpePreTokenizer(tok: Record<string, any>, modelType: string): string {
  const pt = tok.pre_tokenizer;
  const parts: any[] = pt?.type === 'Sequence' ? pt.pretokenizers ?? [] : [pt];
  const split = parts.find((p) => p?.type === 'Split' && typeof p.pattern?.Regex === 'string');
  if (split) return SPLIT_REGEX_PRE[split.pattern.Regex] ?? (modelType === 'qwen2' ? 'qwen2' : modelType === 'llama' ? 'llama-bpe' : 'default');
  if (parts.some((p) => p?.type === 'ByteLevel' && p.use_regex !== false)) return 'gpt-2';
  return 'default';
}

/** Whether tokenizer.json's post-processor puts the BOS token first (TemplateProcessing). */
function bosInTemplate(tok: Record<string, any>, bos?: number): boolean {
  const pp = tok.post_processor;
  const procs: any[] = pp?.type === 'Sequence' ? pp.processors ?? [] : [pp];
  for (const p of procs) {
    const first = p?.type === 'TemplateProcessing' ? p.single?.[0]?.SpecialToken?.id : undefined;
    if (first !== undefined && bos !== undefined && p.special_tokens?.[first]?.ids?.[0] === bos) return true;
  }
  return false;
}

/**
 * A vocabulary of placeholder tokens (`[tok<id>]`) for a model without a
 * tokenizer (the bench's random Llama): llama.cpp then loads it and runs on
 * token ids; text in or out means nothing. Declared as llama.cpp's "bert"
 * (WordPiece) model, which needs no byte tokens (its SentencePiece model looks
 * up <0x0A> at load and aborts without it).
 */
export function placeholderGgufVocab(vocabSize: number): Map<string, GgufValue> {
  const tokens = Array.from({ length: vocabSize }, (_, i) => `[tok${i}]`);
  return new Map<string, GgufValue>([
    ['tokenizer.ggml.model', gguf.str('bert')],
    ['tokenizer.ggml.tokens', gguf.arr('string', tokens)],
    ['tokenizer.ggml.scores', gguf.arr('f32', tokens.map(() => 0))],
    ['tokenizer.ggml.token_type', gguf.arr('i32', tokens.map(() => NORMAL))],
    ['tokenizer.ggml.add_bos_token', gguf.bool(false)],
  ]);
}
