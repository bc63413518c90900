// The vocabulary export (src/tokenize/gguf_vocab.ts) checked on text: llama.cpp
// (node-llama-cpp) loads a model carrying the converted tokenizer and must
// split text into the same token ids as Hugging Face's tokenizer on the same
// tokenizer.json (@huggingface/tokenizers, the reference). Two small
// tokenizers are trained here by plain BPE (most frequent pair first) on a
// fixed corpus: a byte-level BPE (GPT-2's ByteLevel pre-tokenizer → llama.cpp
// "gpt2" with pre "gpt-2") and a byte-fallback SentencePiece-style BPE (Llama
// 2's normalizer → llama.cpp "llama" with merge ranks as scores).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ggufVocabFromTokenizerJson } from '../src/tokenize/gguf_vocab.ts';
import { exportModelGguf } from '../src/peft/gguf_export.ts';
import { LLAMA_SMOKE, llama100m } from '../bench/llama_like.ts';
import { llamaCpp } from '../bench/peer_llama_cpp.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-gguf-vocab-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const CORPUS = [
  'the cat sat on the mat and the cats ate the rat',
  "the dog's hat is on the mat; the hats are red",
  'a rat and a cat met the other cats at the mat 123 times',
];
const TEXTS = ['the cat sat on the mat', "The Cat's hat!! 123 rats", 'cats  and\ndogs\tat the mat', 'naïve café: ünïcödé ☃ 42', 'thecatsatethematrat', 'mathematics of hatters and tomatoes', 'atheatrematter'];

/** Plain BPE training: repeatedly merge the most frequent adjacent pair (first seen wins a tie). */
function trainMerges(words: string[][], count: number): [string, string][] {
  const merges: [string, string][] = [];
  for (let m = 0; m < count; m++) {
    const freq = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) { const k = `${w[i]}\u0000${w[i + 1]}`; freq.set(k, (freq.get(k) ?? 0) + 1); }
    let best = '', bestN = 1;
    for (const [k, n] of freq) if (n > bestN) { best = k; bestN = n; }
    if (!best) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
  }
  return merges;
}

/** GPT-2's byte → printable character table (bytes_to_unicode). */
function byteChars(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep(b) ? b : 256 + n++);
  return out;
}

function byteLevelTokenizer(): Record<string, any> {
  const chars = byteChars();
  const gpt2Split = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  const words = CORPUS.flatMap((s) => s.match(gpt2Split)!.map((w) => [...new TextEncoder().encode(w)].map((b) => chars[b])));
  const merges = trainMerges(words, 60);
  const vocab: Record<string, number> = {};
  chars.forEach((c, b) => (vocab[c] = b));
  for (const [a, b] of merges) vocab[a + b] ??= Object.keys(vocab).length;
  const eos = Object.keys(vocab).length;
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: eos, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
}

function sentencePieceTokenizer(): Record<string, any> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const norm = (s: string) => '▁' + s.replaceAll(' ', '▁');
  const seqs = CORPUS.map((s) => [...norm(s)]);
  for (const c of [...new Set(seqs.flat())].sort()) vocab[c] ??= Object.keys(vocab).length;
  const merges = trainMerges(seqs, 60);
  for (const [a, b] of merges) vocab[a + b] ??= Object.keys(vocab).length;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null, post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
}

describe('converted tokenizers split text in llama.cpp as Hugging Face tokenizers do', () => {
  const wordPiece = () => JSON.parse(fs.readFileSync(new URL('./fixtures/hf/llama-tiny/tokenizer.json', import.meta.url), 'utf8'));
  for (const [kind, make, ggmlModel] of [
    ['byte-level BPE', byteLevelTokenizer, 'gpt2'], ['byte-fallback BPE (SentencePiece)', sentencePieceTokenizer, 'llama'], ['WordPiece (the llama-tiny fixture)', wordPiece, 'bert'],
  ] as const) {
    test(kind, async () => {
      const json = make();
      const model = llama100m({ dims: LLAMA_SMOKE }); // vocab 512 ≥ the tokenizer's ids
      const vocab = ggufVocabFromTokenizerJson(json, { vocabSize: model.config.vocabSize, modelType: 'llama' });
      assert.equal(vocab.get('tokenizer.ggml.model')?.value, ggmlModel);
      if (ggmlModel === 'gpt2') assert.equal(vocab.get('tokenizer.ggml.pre')?.value, 'gpt-2');
      const file = path.join(tmp, `${ggmlModel}.gguf`);
      exportModelGguf(model, file, { vocab, name: kind });
      const hf = new Tokenizer(json, {});
      const lm = await (await llamaCpp()).loadModel({ modelPath: file, gpuLayers: 0 });
      try {
        // llama.cpp's WordPiece always normalizes as BERT uncased (accents stripped); this fixture's tokenizer.json only lowercases: ASCII text only.
        for (const text of ggmlModel === 'bert' ? TEXTS.filter((t) => /^[\x00-\x7f]*$/.test(t)) : TEXTS) {
          const want = hf.encode(text, { add_special_tokens: false }).ids;
          assert.ok(want.length > 0);
          assert.deepEqual([...lm.tokenize(text)], want, `${kind}: '${text}'`);
        }
      } finally {
        await lm.dispose();
      }
    });
  }
});
