// A seeded synthetic world for the workflow measurements (bench/loku_unlearn.ts,
// bench/loram_measure.ts), built the way TOFU builds its benchmark at small
// scale: fictitious people (names made of random syllables, so no model
// could know them) with four attributes each, written as question/answer
// facts; a word-level tokenizer over the world's words; and a small
// Llama-shaped decoder that lorakit first teaches the facts by full
// fine-tuning from random weights (the "pretrained" model of the demos).
//
// Everything is derived from the seed: rerunning gives the same people, the
// same tokenizer, the same initial weights and (with the same thread count) the
// same taught model.

import fs from 'node:fs';
import path from 'node:path';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { Rng } from '../src/util/rng.ts';

export interface Person {
  name: string;
  city: string;
  job: string;
  year: string;
  color: string;
}

export const ATTRIBUTES = ['city', 'job', 'year', 'color'] as const;
export type Attribute = (typeof ATTRIBUTES)[number];

const CITIES = ['Tellaport', 'Brimmarsh', 'Quenholt', 'Vastrun', 'Olmesk', 'Dravin', 'Pellucca', 'Hasterby', 'Ruvenna', 'Caldmoor', 'Ysolde', 'Marrowgate', 'Fennick', 'Sulaway', 'Gorvath', 'Lindquay', 'Noxbury', 'Amberlit', 'Treskel', 'Wyncombe'];
const JOBS = ['sculptor', 'cartographer', 'glassblower', 'astronomer', 'beekeeper', 'luthier', 'archivist', 'tanner', 'navigator', 'herbalist', 'stonemason', 'clockmaker', 'weaver', 'falconer', 'brewer'];
const COLORS = ['teal', 'crimson', 'ochre', 'violet', 'amber', 'slate', 'coral', 'olive', 'indigo', 'ivory', 'maroon', 'saffron'];
const SYLLABLES = ['zor', 'van', 'kel', 'mir', 'tha', 'dro', 'bel', 'ix', 'quo', 'ren', 'sa', 'lu', 'gor', 'ph', 'ae', 'tin', 'mor', 'vek', 'ul', 'dan', 'shi', 'ra', 'ko', 'nel', 'bri', 'os', 'ven', 'tal', 'hu', 'cy'];

/** Question templates (the taught form, T1) and statement templates (a new form, T2: LoRAM's downstream task). */
export const QUESTIONS: Record<Attribute, (n: string) => string> = {
  city: (n) => `Q : Where was ${n} born ? A :`,
  job: (n) => `Q : What is the profession of ${n} ? A :`,
  year: (n) => `Q : In which year was ${n} born ? A :`,
  color: (n) => `Q : What is the favorite color of ${n} ? A :`,
};
export const STATEMENTS: Record<Attribute, (n: string) => string> = {
  city: (n) => `the birthplace of ${n} is`,
  job: (n) => `by trade , ${n} works as a`,
  year: (n) => `the birth year of ${n} is`,
  color: (n) => `the color that ${n} likes most is`,
};

function word(rng: Rng, parts: number): string {
  const w = Array.from({ length: parts }, () => SYLLABLES[rng.int(SYLLABLES.length)]).join('');
  return w[0].toUpperCase() + w.slice(1);
}

/** `n` people with distinct names (first + last, each 2-3 syllables) and random attributes. */
export function makePeople(n: number, seed: number | string): Person[] {
  const rng = new Rng(`tiny-world-${seed}`);
  const names = new Set<string>();
  const out: Person[] = [];
  while (out.length < n) {
    const name = `${word(rng, 2 + rng.int(2))} ${word(rng, 2 + rng.int(2))}`;
    if (names.has(name)) continue;
    names.add(name);
    out.push({ name, city: CITIES[rng.int(CITIES.length)], job: JOBS[rng.int(JOBS.length)], year: String(1900 + rng.int(100)), color: COLORS[rng.int(COLORS.length)] });
  }
  return out;
}

export interface Fact {
  prompt: string;
  completion: string;
}

export function facts(people: Person[], form: 'question' | 'statement' = 'question', attrs: readonly Attribute[] = ATTRIBUTES): Fact[] {
  const t = form === 'question' ? QUESTIONS : STATEMENTS;
  return people.flatMap((p) => attrs.map((a) => ({ prompt: t[a](p.name), completion: p[a] })));
}

export function writeJsonl(file: string, rows: object[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** tokenizer.json (a WordLevel model over whitespace/punctuation-split words) and tokenizer_config.json. */
export function tokenizerFiles(people: Person[]): { tokenizer: object; config: object; vocabSize: number } {
  const words = new Set<string>();
  const add = (s: string) => s.split(/\s+/).filter(Boolean).forEach((w) => words.add(w));
  for (const f of [...facts(people, 'question'), ...facts(people, 'statement')]) add(`${f.prompt} ${f.completion}`);
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2, '<pad>': 3 };
  for (const w of [...words].sort()) vocab[w] = Object.keys(vocab).length;
  const specials = ['<unk>', '<s>', '</s>', '<pad>'];
  const tokenizer = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: specials.map((t) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
  return { tokenizer, config: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<pad>', model_max_length: 64, tokenizer_class: 'PreTrainedTokenizerFast' }, vocabSize: Object.keys(vocab).length };
}

export interface WorldModelShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
}

export const WORLD_MODEL: WorldModelShape = { hidden: 128, layers: 4, heads: 4, kvHeads: 2, intermediate: 384 };

/** A Llama folder with seeded random weights (N(0, 0.02) as transformers initializes, norms 1) for the world's vocabulary. */
export function writeRandomLlama(dir: string, people: Person[], shape: WorldModelShape = WORLD_MODEL, seed = 0): void {
  const tok = tokenizerFiles(people);
  const V = tok.vocabSize, H = shape.hidden, hd = H / shape.heads, kv = shape.kvHeads * hd, I = shape.intermediate;
  const config = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: V, hidden_size: H, intermediate_size: I, num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads, num_key_value_heads: shape.kvHeads, head_dim: hd, hidden_act: 'silu', max_position_embeddings: 64,
    rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false, attention_bias: false, bos_token_id: 1, eos_token_id: 2, pad_token_id: 3, torch_dtype: 'float32',
  };
  const rng = new Rng(`tiny-world-weights-${seed}`);
  const w = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  const normal = (shape: number[]) => ({ dtype: 'F32' as const, shape, data: rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), 0, 0.02) });
  const ones = (n: number) => ({ dtype: 'F32' as const, shape: [n], data: new Float32Array(n).fill(1) });
  w.set('model.embed_tokens.weight', normal([V, H]));
  for (let i = 0; i < shape.layers; i++) {
    const p = `model.layers.${i}`;
    w.set(`${p}.input_layernorm.weight`, ones(H));
    w.set(`${p}.post_attention_layernorm.weight`, ones(H));
    for (const [m, o, n] of [['self_attn.q_proj', H, H], ['self_attn.k_proj', kv, H], ['self_attn.v_proj', kv, H], ['self_attn.o_proj', H, H], ['mlp.gate_proj', I, H], ['mlp.up_proj', I, H], ['mlp.down_proj', H, I]] as const) {
      w.set(`${p}.${m}.weight`, normal([o, n]));
    }
  }
  w.set('model.norm.weight', ones(H));
  w.set('lm_head.weight', normal([V, H]));
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, 'model.safetensors'), w, { format: 'pt' });
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileAtomic(path.join(dir, 'tokenizer.json'), JSON.stringify(tok.tokenizer) + '\n');
  writeFileAtomic(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tok.config, null, 2) + '\n');
}
