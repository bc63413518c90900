// Every benchmark script in bench/ runs in its smoke mode (--smoke: a tiny
// config, seconds) as a child process, exits 0 and prints its figure lines, so
// a benchmark never breaks silently. The two training-step benches also run
// their PyTorch peer when torch is there (reference gate: CI fails without it;
// locally, without torch, they must say how to add the peer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { torchMissing, requireTorch } from './helpers/torch.ts';
import { inCI } from './helpers/reference.ts';

const BENCH = path.resolve(import.meta.dirname, '../bench');
/** Modules the scripts import (models, peers' environment, the roofline), not scripts themselves. */
const LIBRARIES = new Set(['bert_like.ts', 'llama_like.ts', 'peer_env.ts', 'peer_llama_cpp.ts', 'roofline.ts', 'tiny_world.ts']);
/**
 * Exempt: doc-table producers that run tens of minutes on ../shared/data (not in
 * CI), each with knobs for shorter runs (ir_cisi: --samples, --clusters,
 * --epochs, --only; ir_xquad: --task-epochs, --lang-epochs).
 */
const EXEMPT = new Set(['ir_cisi.ts', 'ir_xquad.ts']);
const num = String.raw`\d+(?:\.\d+)?`;
const pm = `${num} ± ${num}`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const withTorch = torchMissing === null;
const WITH_PEER = new Set(['train_step.ts', 'causal_lm_step.ts']);
/** Scripts that are nothing without torch (their whole point is a torch run). */
const NEEDS_TORCH = new Set(['recipe_replay.ts']);
const peerLines = (): RegExp[] =>
  withTorch
    ? [new RegExp(`ratio torch_ms / lorakit_ms = ${num}`), new RegExp(`fraction of the GEMM limit: lorakit ${num}%, torch ${num}%`), new RegExp(`; torch peak RSS ${num} MiB, saved for backward by autograd ${num} MiB`)]
    : [/PyTorch peer skipped: .*apt-get install python3-torch/];

const FIGURES: Record<string, () => RegExp[]> = {
  'train_step.ts': () => [
    new RegExp(`lorakit: ${num} ms/step`),
    new RegExp(`roofline: ${num} GFLOP per step in \\d+ MatMul/Gemm .* ${num} ms = ${num} GFLOP/s`),
    new RegExp(`fraction of the GEMM limit: lorakit ${num}%`),
    new RegExp(`memory: lorakit peak RSS ${num} MiB \\(resident ${num} MiB with the model built, ${num} MiB compiled\\), activations kept for backward \\(planned, from the graph\\) ${num} MiB in \\d+ tensors`),
    ...peerLines(),
  ],
  'causal_lm_step.ts': () => [
    new RegExp(`lorakit: ${num} ms/step`),
    new RegExp(`fraction of the GEMM limit: lorakit ${num}%`),
    new RegExp(`memory: lorakit peak RSS ${num} MiB \\(resident ${num} MiB with the model built, ${num} MiB compiled\\), activations kept for backward`),
    ...peerLines(),
  ],
  'generate.ts': () => [
    ...['gpt2-tiny', 'llama-tiny', 'llama-like-64x1-random'].flatMap((m) =>
      ['KV cache', 'no cache'].map((c) => new RegExp(`${m} +${num}M  ${c}  prefill ${num} ms  decode ${num} tok/s`))),
    // The llama.cpp peer on the same weights (GGUF export): both speeds, the ratio, and every greedy token equal.
    ...['llama-tiny', 'llama-like-64x1-random'].map((m) => new RegExp(
      `${m} +${num}M  prompt \\d+, 4 new:  lorakit prompt ${num} tok/s, generation ${num} tok/s;  llama\\.cpp prompt ${num} tok/s, generation ${num} tok/s;  ` +
        `ratio llama\\.cpp/lorakit prompt ${num}×, generation ${num}×;  greedy tokens equal 4/4`)),
  ],
  'galore_memory.ts': () => ['adamw', 'galore'].map((k) => new RegExp(`\\| ${k} \\| 0\\.001 \\| ${num}M \\| \\d+ \\| \\d+ \\| ${num} → ${num} \\|`)),
  'lorapro_claim.ts': () => [
    /cumulative ΔW = W_t − W_0 of three runs/,
    ...[1, 2].map((s) => new RegExp(`\\| ${s} \\| ${num} \\| ${num} \\| -?${num} \\| -?${num} \\|$`, 'm')),
    /per step, each method's update to W against full fine-tuning's from the same W/,
    ...[1, 2].map((s) => new RegExp(`\\| ${s} \\| ${num} \\| ${num} \\| -?${num} \\| -?${num} \\| ${num} \\| ${num} \\| ${num} \\| ${num} \\|$`, 'm')),
    ...[1, 2].map((s) => new RegExp(`\\| ${s} \\| ${num} \\| ${num} \\| ${num} \\| ${num} \\| ${num} \\| ${num} \\| ${num} \\| ${num} \\| ${num} \\|$`, 'm')),
  ],
  'mixed_adapters.ts': () => ['mixed', 'switch', 'grouped', 'base'].map((k) => new RegExp(`│ ${k} +│ +${num} +│ +\\d+ +│ +${num} +│`)),
  'rank_allocation.ts': () => [new RegExp(`lora r=8 seed 42: ${num}%, \\d+ adapter params`), new RegExp(`sora seed 42: ${num}%`), /wrote .*rank_allocation\.md/],
  'summarization_table.ts': () => ['dialogsum', 'scitldr'].flatMap((set) =>
    ['lead-3', 'LexRank tf-idf', 'LexRank USE encoder'].map((sys) => new RegExp(`\\| ${set} test \\| ${sys}[^|]* \\| ${num} \\| ${num} \\|`))),
  'galore_refresh.ts': () => [new RegExp(`\\| 128×160 \\| ${num} \\| ${num} \\| ${num}× \\| ${num} \\|`)],
  'bm25_speed.ts': () => [new RegExp(`\\| build the index [^|]* \\| ${num} \\|`), new RegExp(`\\| 100 queries × top 100 \\| ${num} `), new RegExp(`\`lorakit index\` ${num} s, \`lorakit search --top 100\` over 100 queries ${num} s`)],
  'grpo_setwise.ts': () => [new RegExp(`after warm-up \\(2 steps\\): reward ${num}, label format ${num}`), new RegExp(`after GRPO \\(2 steps\\): reward ${num}, label format ${num}`)],
  'memory_options.ts': () => ['default', 'low-memory', 'grad-checkpoint', 'both'].map((v) => new RegExp(`\\| ${v} \\| ${num} \\| ${num} \\| ${num} \\| \\d+ \\| \\d+ \\| \\d+ \\|`)),
  'quant_step.ts': () => [new RegExp(`"speedup_fp32_over_int8": ${num}`), new RegExp(`"linear_weight_ratio": 0\\.2\\d+`), new RegExp(`"peak_rss_ratio": ${num}`),
    ...['nf4', 'int4'].flatMap((d) => [new RegExp(`"speedup_fp32_over_${d}": ${num}`), new RegExp(`"linear_weight_ratio_${d}": 0\\.1\\d+`), new RegExp(`"peak_rss_ratio_${d}": ${num}`)])],
  'quant_load.ts': () => ['fp32', ...['int8', 'nf4', 'int4'].flatMap((d) => [`${d}, quantized while read`, `${d}, from lorakit quantize's file`])].map((r) => new RegExp(`\\| ${esc(r)} \\| ${num} \\| ${num} \\| ${num} \\|`)),
  'quant_backward.ts': () => ['int8 forward DynamicQuantizeMatMul', 'int8 backward: QGemm transB \\(lorakit\\)', 'int4 tile 32 asym forward MatMulNBits \\(lorakit\\)',
    'int4 tile 32 asym backward: same codes packed along N \\(lorakit\\)', 'nf4 forward MatMulBnb4 \\(lorakit\\)', 'nf4 backward: dequantized at run time \\+ fp32 MatMul \\(lorakit\\)'].map((k) => new RegExp(`'${k}' +│ ${num} +│ ${num} `)),
  'loram_cost.ts': () => [new RegExp(`\\| full ~100M \\| ${num}M \\| ${num}M \\| \\d+ \\| \\d+ \\| \\d+ \\|`), new RegExp(`pruned / full: peak RSS ${num}, step time ${num}`)],
  'browser_step.ts': () => [new RegExp(`\\| node: onnxruntime-node, cpu \\(before\\) \\| 1 \\|  \\| \\d+ \\| ${num} \\|`), new RegExp(`\\| chromium wasm \\(onnxruntime-web [^|]*\\) \\| 1 \\| yes \\| \\d+ \\| ${num} \\| ${num} \\| ${num} \\|`)],
  'recipe_replay.ts': () => [new RegExp(`\\| train\\.py, 1 process, float32 \\| ${num}(?:e-\\d+)? \\| ${num}(?:e-\\d+)? \\|`), new RegExp(`\\| launch\\.sh \\(torchrun\\), 2 processes, gloo, float32 \\| ${num}(?:e-\\d+)? \\|`)],
  // The synthetic-world benches: loku_unlearn and loram_measure build their own tiny world with build_world's export.
  'build_world.ts': () => [new RegExp(`taught in \\d+ s: 40 facts, NLL/token ${num}, token accuracy ${num}%, exact ${num}%`)],
  'loku_unlearn.ts': () => [
    new RegExp(`taught model: forget exact ${num}%, retain exact ${num}%`),
    ...['gradient ascent (GA)', 'gradient difference (GD)', 'IHL, plain LoRA init', 'IHL + FILA (LoKU)'].map((m) =>
      new RegExp(`\\| ${esc(m)} \\| ${pm} \\| ${pm} \\| ${pm} \\| ${pm} \\| ${pm} \\| ${pm} \\| ${pm} \\| ${pm} \\|`)),
  ],
  'loram_measure.ts': () => [
    new RegExp(`\\| full model, no LoRA \\| ${num}M \\| ${num} \\| ${num} \\| ${num} \\| ${num} \\| – \\|`),
    ...['full + LoRA trained on full', ...['LoRAM-Stru', 'LoRAM-Rand'].flatMap((p) => [p, `${p} + alignment`].flatMap((v) => [`${v}: pruned + its LoRA`, `${v}: full + recovered LoRA`]))].map((r) =>
      new RegExp(`\\| ${esc(r)} \\| ${num}M \\| ${num} \\| ${num} \\| ${num} \\| ${num} \\| \\d+ \\|`)),
  ],
  'sg_lora.ts': () => [
    ...['imdb', 'amazon', 'spam'].map((t) => new RegExp(`expert ${t}: test accuracy ${num}`)),
    /\| adapter for the held-out task \| imdb \| amazon \| spam \|/,
    ...['SG-LoRA generator (CVAE, z = 0)', 'similarity-weighted ΔW average (τ 0.05)', 'nearest expert (by description)', 'uniform average of the experts', "the task's own expert (trained on it; its test split, mean of 1 seeds)"].map((r) =>
      new RegExp(`\\| ${esc(r)} \\| ${num} \\| ${num} \\| ${num} \\|`)),
  ],
  'summarize_memory.ts': () => ['LexRank tf-idf, k = 10', 'LexRank USE encoder, continuous, k = 10'].map((r) => new RegExp(`${r} \\| \\d+ \\| ${num} \\|`)),
};

test('every benchmark script has a smoke check here', () => {
  const scripts = fs.readdirSync(BENCH).filter((f) => f.endsWith('.ts') && !LIBRARIES.has(f) && !EXEMPT.has(f)).sort();
  assert.deepEqual(scripts, Object.keys(FIGURES).sort());
});

const run = promisify(execFile);
for (const [script, figures] of Object.entries(FIGURES)) {
  test(`bench/${script} --smoke exits 0 and prints its figures`, async (t) => {
    if (WITH_PEER.has(script) && inCI) requireTorch(); // CI installs torch: the peer must run there
    if (NEEDS_TORCH.has(script) && !withTorch) {
      if (inCI) requireTorch();
      t.skip(`needs PyTorch (${torchMissing}); locally skipped`);
      return;
    }
    const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(BENCH, script), '--smoke'], {
      cwd: path.resolve(BENCH, '..'), maxBuffer: 1 << 24, timeout: 180_000, env: { ...process.env, OPENBLAS_NUM_THREADS: '2' },
    });
    for (const re of figures()) assert.match(stdout, re, `bench/${script} --smoke printed no line matching ${re}:\n${stdout}`);
  });
}
