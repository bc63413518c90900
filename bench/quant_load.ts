// Loading a BERT-base-size Hugging Face folder with an fp32 vs a quantized
// base (int8, nf4, int4): peak RSS and load time of a process that loads the
// folder and runs one forward (batch 8 × 128), each in its own child process:
//   fp32         the weights as read;
//   <dtype>      each linear weight quantized as it is read (its float32 array
//                dropped before the next tensor is read);
//   <dtype> saved  the codes from `lorakit quantize`'s file beside the model
//                (the float32 bytes of those weights never read).
// The folder (random weights, HF BERT names and config, ~420 MiB) is written
// to the system temp folder and removed at the end.
//
//   npx tsx bench/quant_load.ts [--threads 2] [--dtypes int8,nf4,int4] [--smoke]
//
// --smoke: a 2-layer 64-wide folder. Appends a JSON line to bench/results/quant_load.jsonl.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { loadModel } from '../src/models/load.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { BASE_DTYPES, type BaseDtype } from '../src/quant/base_dtype.ts';
import { runQuantizeJob } from '../src/tasks/quantize.ts';
import { peakRss } from '../src/tasks/train.ts';
import { randomFill } from './llama_like.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: v } = parseArgs({ options: { threads: { type: 'string', default: '2' }, dtypes: { type: 'string', default: 'int8,nf4,int4' }, smoke: { type: 'boolean', default: false }, child: { type: 'string' }, dir: { type: 'string' } } });
const dims = v.smoke ? { layers: 2, hidden: 64, heads: 4, ffn: 256, vocab: 1000, positions: 128 } : { layers: 12, hidden: 768, heads: 12, ffn: 3072, vocab: 30522, positions: 512 };
const B = 8, T = 128;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** A BERT folder with HF's tensor names and random weights (± √(3/in), LayerNorms 1 / 0). */
function writeFolder(dir: string): void {
  const { layers: L, hidden: H, heads, ffn: F, vocab: V, positions: P } = dims;
  const t = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  let seed = 1;
  const lin = (name: string, out: number, inF: number) => {
    t.set(`${name}.weight`, { dtype: 'F32', shape: [out, inF], data: randomFill(out * inF, Math.sqrt(3 / inF), seed++) });
    t.set(`${name}.bias`, { dtype: 'F32', shape: [out], data: new Float32Array(out) });
  };
  const norm = (name: string) => {
    t.set(`${name}.weight`, { dtype: 'F32', shape: [H], data: new Float32Array(H).fill(1) });
    t.set(`${name}.bias`, { dtype: 'F32', shape: [H], data: new Float32Array(H) });
  };
  for (const [n, rows] of [['word', V], ['position', P], ['token_type', 2]] as const) t.set(`bert.embeddings.${n}_embeddings.weight`, { dtype: 'F32', shape: [rows, H], data: randomFill(rows * H, 0.05, seed++) });
  norm('bert.embeddings.LayerNorm');
  for (let i = 0; i < L; i++) {
    const p = `bert.encoder.layer.${i}`;
    for (const q of ['query', 'key', 'value']) lin(`${p}.attention.self.${q}`, H, H);
    lin(`${p}.attention.output.dense`, H, H);
    norm(`${p}.attention.output.LayerNorm`);
    lin(`${p}.intermediate.dense`, F, H);
    lin(`${p}.output.dense`, H, F);
    norm(`${p}.output.LayerNorm`);
  }
  lin('bert.pooler.dense', H, H);
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, 'model.safetensors'), t, { format: 'pt' });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    architectures: ['BertModel'], model_type: 'bert', hidden_size: H, num_hidden_layers: L, num_attention_heads: heads, intermediate_size: F, hidden_act: 'gelu',
    max_position_embeddings: P, type_vocab_size: 2, layer_norm_eps: 1e-12, pad_token_id: 0, vocab_size: V, position_embedding_type: 'absolute',
  }));
}

/** What a child prints: its peak RSS, load time, and the first output (a saved base must give the same). */
interface ChildResult {
  mode: string;
  load_s: number;
  peak_rss_mib: number;
  read_quantized: number;
  out0: number;
}

/** One load + forward in this process; prints its peak RSS and load time. */
async function child(mode: string, dir: string) {
  const t0 = performance.now();
  const [dtype, saved] = mode.split('-') as [BaseDtype, string | undefined];
  const m = await loadModel(dir, 'encoder', { baseDtype: dtype, useSavedBase: saved === 'saved' });
  const loadS = (performance.now() - t0) / 1000;
  if ((saved === 'saved') !== (m.savedBase !== undefined)) throw new Error(`${mode}: saved base used: ${m.savedBase}`);
  const pm = new PeftModel(m.model, { threads: Number(v.threads) });
  const ids = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, i) => 1 + ((b * 7919 + i * 104729) % (dims.vocab - 1))));
  const out = (await pm.run(padBatch(ids))).data as Float32Array;
  await pm.release();
  const r: ChildResult = { mode, load_s: round(loadS, 2), peak_rss_mib: round(peakRss() / 2 ** 20), read_quantized: m.quantizedWhileReading ?? 0, out0: out[0] };
  console.log(JSON.stringify(r));
}

async function main() {
  if (v.child) return child(v.child, v.dir!);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-quant-load-'));
  try {
    writeFolder(dir);
    const size = fs.statSync(path.join(dir, 'model.safetensors')).size;
    const run = (mode: string): ChildResult => {
      const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', mode, '--dir', dir, '--threads', String(v.threads), ...(v.smoke ? ['--smoke'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    const loadavg = os.loadavg()[0];
    const dtypes = v.dtypes.split(',') as BaseDtype[];
    for (const d of dtypes) if (d === 'fp32' || !BASE_DTYPES.includes(d)) throw new Error(`--dtypes: '${d}' is not a quantized --base-dtype (int8, nf4, int4)`);
    const fp32 = run('fp32');
    const runs: Record<string, { read: ChildResult; saved: ChildResult; quantize_s: number; file_mib: number }> = {};
    for (const d of dtypes) {
      const read = run(d);
      const q = await runQuantizeJob({ model: dir, baseDtype: d });
      const saved = run(`${d}-saved`);
      if (saved.out0 !== read.out0) throw new Error(`${d}: the saved form gives another output (${saved.out0} vs ${read.out0})`);
      runs[d] = { read, saved, quantize_s: round(q.seconds, 1), file_mib: round(q.bytes / 2 ** 20) };
    }
    console.log(`BERT-base-size folder (${dims.layers} layers, ${dims.hidden} wide, model.safetensors ${round(size / 2 ** 20)} MiB), load + one forward of ${B} × ${T}, ${v.threads} threads, load average ${loadavg.toFixed(1)}:`);
    console.log('| load | peak RSS MiB | / fp32 | load s |');
    console.log('|---|---:|---:|---:|');
    const rows: [string, ChildResult][] = [['fp32', fp32], ...dtypes.flatMap((d): [string, ChildResult][] => [[`${d}, quantized while read`, runs[d].read], [`${d}, from lorakit quantize's file`, runs[d].saved]])];
    for (const [name, r] of rows) console.log(`| ${name} | ${r.peak_rss_mib} | ${(r.peak_rss_mib / fp32.peak_rss_mib).toFixed(2)} | ${r.load_s} |`);
    for (const d of dtypes) console.log(`lorakit quantize --base-dtype ${d}: ${runs[d].file_mib} MiB file, ${runs[d].quantize_s} s`);
    if (!v.smoke) {
      fs.mkdirSync(path.join(here, 'results'), { recursive: true });
      fs.appendFileSync(path.join(here, 'results', 'quant_load.jsonl'), JSON.stringify({ bench: 'quant_load', date: new Date().toISOString(), dims, loadavg, fp32, ...runs }) + '\n');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
