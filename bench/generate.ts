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
//
// The llama.cpp peer (node-llama-cpp's prebuilt CPU binary, same process, same
// threads): llama-tiny and the Llama-shaped model exported with lorakit's GGUF
// writer (f32 weights, f32 KV cache, no flash attention: lorakit's precision),
// both sides timed alternately in one run (best of --peer-reps), prompt
// processing tokens/s (prompt tokens / time to the first new token) and
// generation tokens/s (tokens after the first / their time), the ratio, and
// whether the greedy tokens agree.
//   --peer-prompt 128 --peer-new 64 --peer-reps 3 | --no-peer

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Generator } from '../src/serve/generate.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { LLAMA_SMOKE, llama100m } from './llama_like.ts';
import { defaultThreads } from '../src/runtime/session.ts';
import { exportModelGguf } from '../src/peft/gguf_export.ts';
import { runExportGguf } from '../src/cli/export_gguf.ts';
import { placeholderGgufVocab } from '../src/tokenize/gguf_vocab.ts';

const { values: a } = parseArgs({
  options: {
    new: { type: 'string', default: '128' },
    'no-cache-new': { type: 'string' },
    prompt: { type: 'string', default: '16' },
    threads: { type: 'string' },
    'skip-large': { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    'peer-prompt': { type: 'string', default: '128' },
    'peer-new': { type: 'string', default: '64' },
    'peer-reps': { type: 'string', default: '3' },
    'no-peer': { type: 'boolean', default: false },
  },
});
if (a.smoke) Object.assign(a, { new: '4', 'no-cache-new': '2', 'peer-prompt': '8', 'peer-new': '4', 'peer-reps': '1' });
const PEER_PROMPT = Number(a['peer-prompt']), PEER_NEW = Number(a['peer-new']), PEER_REPS = Number(a['peer-reps']);
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

interface PeerRow { model: string; params: number; peer: 'llama.cpp'; promptTokens: number; newTokens: number; lorakitPromptTokPerSec: number; lorakitGenTokPerSec: number; peerPromptTokPerSec: number; peerGenTokPerSec: number; greedyEqual: number }

/** lorakit and llama.cpp (node-llama-cpp) on the same weights, alternately, best of PEER_REPS each. */
async function benchPeer(model: DecoderModel, writeGguf: (file: string) => Promise<unknown>): Promise<PeerRow | null> {
  let peerMod: typeof import('./peer_llama_cpp.ts');
  try {
    peerMod = await import('./peer_llama_cpp.ts');
    await peerMod.llamaCpp();
  } catch (e) {
    console.log(`llama.cpp peer skipped: node-llama-cpp did not load (${(e as Error).message.split('\n')[0]}); add it with: npm install --save-dev node-llama-cpp`);
    return null;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lorakit-bench-gguf-'));
  try {
    const file = path.join(dir, 'model.gguf');
    await writeGguf(file);
    const promptLen = Math.min(PEER_PROMPT, Math.floor(model.config.maxPositions / 2));
    const n = Math.min(PEER_NEW, model.config.maxPositions - promptLen);
    const prompt = Array.from({ length: promptLen }, (_, i) => 3 + ((i * 7) % (model.config.vocabSize - 3)));
    const gen = new Generator(model, null, { threads });
    const peer = await peerMod.loadLlamaCppPeer(file, { threads, contextSize: promptLen + n });
    try {
      await gen.warm(true);
      await gen.generate(prompt, { maxNewTokens: 4, stopTokens: [] }); // warm-up runs
      await peer.timed(prompt, 4);
      let best = { lkPre: Infinity, lkDec: Infinity, pPre: Infinity, pDec: Infinity };
      let lkTokens: number[] = [], peerTokens: number[] = [];
      for (let rep = 0; rep < PEER_REPS; rep++) {
        const r = await gen.generate(prompt, { maxNewTokens: n, stopTokens: [] });
        const p = await peer.timed(prompt, n);
        lkTokens = r.tokens; peerTokens = p.tokens;
        best = { lkPre: Math.min(best.lkPre, r.prefillMs), lkDec: Math.min(best.lkDec, r.decodeMs), pPre: Math.min(best.pPre, p.prefillMs), pDec: Math.min(best.pDec, p.decodeMs) };
      }
      let equal = 0;
      while (equal < n && lkTokens[equal] === peerTokens[equal]) equal++;
      const row: PeerRow = {
        model: model.name, params: paramCount(model), peer: 'llama.cpp', promptTokens: promptLen, newTokens: n,
        lorakitPromptTokPerSec: +(promptLen / (best.lkPre / 1000)).toFixed(1), lorakitGenTokPerSec: +((n - 1) / (best.lkDec / 1000)).toFixed(1),
        peerPromptTokPerSec: +(promptLen / (best.pPre / 1000)).toFixed(1), peerGenTokPerSec: +((n - 1) / (best.pDec / 1000)).toFixed(1), greedyEqual: equal,
      };
      console.log(
        `${row.model.padEnd(20)} ${(row.params / 1e6).toFixed(1).padStart(6)}M  prompt ${promptLen}, ${n} new:  ` +
          `lorakit prompt ${row.lorakitPromptTokPerSec} tok/s, generation ${row.lorakitGenTokPerSec} tok/s;  ` +
          `llama.cpp prompt ${row.peerPromptTokPerSec} tok/s, generation ${row.peerGenTokPerSec} tok/s;  ` +
          `ratio llama.cpp/lorakit prompt ${(row.peerPromptTokPerSec / row.lorakitPromptTokPerSec).toFixed(2)}×, generation ${(row.peerGenTokPerSec / row.lorakitGenTokPerSec).toFixed(2)}×;  ` +
          `greedy tokens equal ${equal}/${n}`,
      );
      return row;
    } finally {
      await gen.release();
      await peer.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`generation bench: prompt ${PROMPT} tokens, ${NEW} new tokens (no cache: ${NEW_PLAIN}), ${threads} threads, batch 1, fp32 CPU; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
const rows: (Row | PeerRow)[] = [];
const fixtures = new URL('../test/fixtures/hf/', import.meta.url).pathname;
for (const name of ['gpt2-tiny', 'llama-tiny']) rows.push(...(await bench(await loadDecoder(fixtures + name))));
const large = a['skip-large'] ? null : a.smoke ? llama100m({ dims: LLAMA_SMOKE }) : llama100m();
if (large) rows.push(...(await bench(large)));
if (!a['no-peer']) {
  console.log(`llama.cpp peer (node-llama-cpp, f32 weights and KV cache, ${threads} threads, greedy, best of ${PEER_REPS}):`);
  const tiny = await loadDecoder(fixtures + 'llama-tiny');
  const peerRows = [await benchPeer(tiny, (file) => runExportGguf({ model: fixtures + 'llama-tiny', out: file }))];
  if (large) peerRows.push(await benchPeer(large, async (file) => exportModelGguf(large, file, { vocab: placeholderGgufVocab(large.config.vocabSize), name: large.name })));
  for (const r of peerRows) if (r) rows.push(r);
}
if (!a.smoke) { // smoke runs leave no results behind
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/generate-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
  writeFileSync(file, rows.map((r) => JSON.stringify({ threads, loadavg: os.loadavg()[0], ...r })).join('\n') + '\n');
  console.log(`results: ${file}`);
}
