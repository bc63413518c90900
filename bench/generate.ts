// Generation throughput (tokens/s) with and without the KV cache, for the tiny
// fixture decoders and a Llama-shaped model of ~100M random parameters
// (hidden 768, 12 layers, 12 heads / 4 KV heads, SwiGLU 2048, vocab 32000,
// tied embeddings). Not part of the test suite.
//
//   npm run bench:generate -- [--new 128] [--prompt 16] [--threads N] [--skip-large] [--no-cache-new 64]
//   npm run bench:generate -- --smoke   (4 new tokens; the Llama-shaped model at a tiny width: seconds; the test suite runs it)
//
// Reports decode tokens/s (tokens after the first / their time), the prefill
// time, and the mean per-token time over the first and the last quarter of
// the generated tokens (flat with the cache; growing without it).

import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Generator } from '../src/serve/generate.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { LLAMA_SMOKE, llama100m } from './llama_like.ts';
import { defaultThreads } from '../src/runtime/session.ts';

const { values: a } = parseArgs({
  options: {
    new: { type: 'string', default: '128' },
    'no-cache-new': { type: 'string' },
    prompt: { type: 'string', default: '16' },
    threads: { type: 'string' },
    'skip-large': { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
  },
});
if (a.smoke) Object.assign(a, { new: '4', 'no-cache-new': '2' });
const NEW = Number(a.new), PROMPT = Number(a.prompt);
const NEW_PLAIN = Number(a['no-cache-new'] ?? a.new);
const threads = a.threads ? Number(a.threads) : defaultThreads();

function paramCount(m: DecoderModel): number {
  let n = 0;
  for (const v of m.weights.values()) n += v.data.length;
  return n;
}

interface Row { model: string; params: number; cache: boolean; promptTokens: number; newTokens: number; prefillMs: number; decodeTokPerSec: number; firstQuarterMs: number; lastQuarterMs: number }

async function bench(model: DecoderModel): Promise<Row[]> {
  const rows: Row[] = [];
  const prompt = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7) % (model.config.vocabSize - 3)));
  for (const cache of [true, false]) {
    const gen = new Generator(model, null, { threads });
    await gen.warm(cache);
    const n = Math.min(cache ? NEW : NEW_PLAIN, model.config.maxPositions - PROMPT);
    await gen.generate(prompt, { maxNewTokens: 4, stopTokens: [], useCache: cache }); // warm-up run
    const r = await gen.generate(prompt, { maxNewTokens: n, stopTokens: [], useCache: cache });
    await gen.release();
    const dec = r.stepMs.slice(1);
    const q = Math.max(1, Math.floor(dec.length / 4));
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const row: Row = {
      model: model.name, params: paramCount(model), cache, promptTokens: PROMPT, newTokens: r.tokens.length,
      prefillMs: +r.prefillMs.toFixed(2), decodeTokPerSec: +(dec.length / (r.decodeMs / 1000)).toFixed(1),
      firstQuarterMs: +mean(dec.slice(0, q)).toFixed(3), lastQuarterMs: +mean(dec.slice(-q)).toFixed(3),
    };
    console.log(
      `${row.model.padEnd(20)} ${(row.params / 1e6).toFixed(1).padStart(6)}M  ${cache ? 'KV cache' : 'no cache'}  ` +
        `prefill ${row.prefillMs.toFixed(1)} ms  decode ${row.decodeTokPerSec.toFixed(1)} tok/s  ` +
        `per token: first ¼ ${row.firstQuarterMs.toFixed(2)} ms, last ¼ ${row.lastQuarterMs.toFixed(2)} ms`,
    );
    rows.push(row);
  }
  return rows;
}

console.log(`generation bench: prompt ${PROMPT} tokens, ${NEW} new tokens (no cache: ${NEW_PLAIN}), ${threads} threads, batch 1, fp32 CPU`);
const rows: Row[] = [];
const fixtures = new URL('../test/fixtures/hf/', import.meta.url).pathname;
for (const name of ['gpt2-tiny', 'llama-tiny']) rows.push(...(await bench(await loadDecoder(fixtures + name))));
if (!a['skip-large']) rows.push(...(await bench(a.smoke ? llama100m({ dims: LLAMA_SMOKE }) : llama100m())));
if (!a.smoke) { // smoke runs leave no results behind
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/generate-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
  writeFileSync(file, rows.map((r) => JSON.stringify({ threads, ...r })).join('\n') + '\n');
  console.log(`results: ${file}`);
}
