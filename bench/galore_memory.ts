// GaLore's claim, measured: full fine-tuning of the ~100M Llama-shaped bench
// model with AdamW vs with GaLore (rank 128, refresh every 200 steps, scale
// 0.25; AdamW on the embeddings and norms): optimizer-state bytes, peak RSS
// and the causal-LM loss after the same steps on the same batches. Each
// configuration runs in its own process (peak RSS is per process).
//
//   npx tsx bench/galore_memory.ts [--steps 6] [--batch 2] [--seq 128] [--layers 12] [--rank 128]
//     [--runs adamw@1e-3,galore@1e-3,galore@1e-2]   (optimizer@lr: GaLore's README pairs scale 0.25 with lr 0.01)
//   npx tsx bench/galore_memory.ts --smoke   (1 layer of width 64, 2 steps of 1×16, rank 8: seconds; the test suite runs it)
import { spawnSync } from 'node:child_process';
import { LLAMA_100M, LLAMA_SMOKE, llama100m } from './llama_like.ts';
import { projectionMatrices } from '../src/tasks/full.ts';
import { Trainer } from '../src/train/loop.ts';
import { CausalLmTask } from '../src/train/tasks/causal_lm.ts';

const smoke = process.argv.includes('--smoke');
const SMOKE: Record<string, string> = { '--steps': '2', '--batch': '1', '--seq': '16', '--layers': '1', '--rank': '8', '--runs': 'adamw@1e-3,galore@1e-3' };
const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? process.argv[i + 1] : smoke && k in SMOKE ? SMOKE[k] : d;
};
const dims = smoke ? LLAMA_SMOKE : LLAMA_100M;
const steps = Number(arg('--steps', '6')), B = Number(arg('--batch', '2')), T = Number(arg('--seq', '128'));
const layers = Number(arg('--layers', '12')), rank = Number(arg('--rank', '128'));
const runs = arg('--runs', 'adamw@1e-3,galore@1e-3,galore@1e-2').split(',').map((x) => {
  const [kind, lr] = x.split('@');
  if (kind !== 'adamw' && kind !== 'galore') throw new Error(`--runs: '${kind}' is not adamw or galore`);
  return { kind: kind as 'adamw' | 'galore', lr: Number(lr ?? '1e-3') };
});

/** A learnable stream: each sequence counts up from its own offset (mod 1000). */
function data(n: number) {
  return Array.from({ length: n }, (_, i) => ({ ids: Array.from({ length: T }, (_, t) => 3 + ((i * 37 + t) % 1000)), promptLength: 0 }));
}

async function one(kind: 'adamw' | 'galore', lr: number) {
  const model = llama100m({ layers, embedScale: 0.02, dims });
  const t0 = performance.now();
  const losses: number[] = [], stepMs: number[] = [];
  let last = performance.now();
  const trainer = new Trainer(new CausalLmTask(model, { padId: 0 }), null, {
    epochs: 1, lr, batchSize: B, seed: 0, weightDecay: 0, warmupRatio: 0, schedule: 'constant',
    optimizer: kind === 'galore' ? { kind, rank, updateProjGap: 200, scale: 0.25 } : { kind },
    full: { weights: model.weights, matrices: projectionMatrices(model) },
    onStep: (s) => {
      losses.push(s.loss);
      stepMs.push(performance.now() - last);
      last = performance.now();
    },
  });
  const r = await trainer.fit({ train: data(steps * B) });
  await trainer.release();
  const params = [...trainer.params().values()].reduce((s, p) => s + p.length, 0);
  return { kind, lr, params, losses, stepMs, optimizerStateBytes: r.optimizerStateBytes, peakRssBytes: process.resourceUsage().maxRSS * 1024, seconds: (performance.now() - t0) / 1000 };
}

if (process.argv.includes('--child')) {
  const [kind, lr] = arg('--child', 'adamw@1e-3').split('@');
  const res = await one(kind as 'adamw' | 'galore', Number(lr));
  console.log(JSON.stringify(res));
} else {
  const rows = [];
  for (const { kind, lr } of runs) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', process.argv[1], ...process.argv.slice(2), '--child', `${kind}@${lr}`], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${kind}@${lr}: ${r.stderr}`);
    rows.push(JSON.parse(r.stdout.trim().split('\n').pop()!));
  }
  console.log(`full fine-tuning of the Llama-shaped bench model (hidden ${dims.hidden}, ${layers} layers), ${steps} steps of ${B}×${T} tokens; GaLore rank ${rank}, gap 200, scale 0.25`);
  console.log('| optimizer | lr | parameters | optimizer state MB | peak RSS MB | loss at step 1 → last | median step s (first step: with the projector refreshes) | wall s |\n|---|---|---|---|---|---|---|---|');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const r of rows) {
    console.log(`| ${r.kind} | ${r.lr} | ${(r.params / 1e6).toFixed(1)}M | ${(r.optimizerStateBytes / 2 ** 20).toFixed(0)} | ${(r.peakRssBytes / 2 ** 20).toFixed(0)} | ${r.losses[0].toFixed(4)} → ${r.losses[r.losses.length - 1].toFixed(4)} | ${(median(r.stepMs.slice(1)) / 1000).toFixed(1)} (${(r.stepMs[0] / 1000).toFixed(1)}) | ${r.seconds.toFixed(0)} |`);
  }
}
