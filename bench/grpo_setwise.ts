// Learning is real: GRPO raises the mean reward of a tiny decoder on a seeded
// synthetic setwise task. A prompt names a key letter and four labelled
// one-letter documents; exactly one document is the key letter:
//
//   "key g . p k q g r e s j ."   → the answer is the label before it: "q"
//
// (The tiny Llama fixture's WordPiece vocabulary has letters but no digits or
// brackets, so the labels [1]…[4] are the letters p q r s.) Reward, Rank-R1's
// rule in this compact format: 1 iff the completion is exactly one label and it
// is the right one, else 0.
//
//   1. warm-up: a short supervised run (causal-LM loss on "prompt → label") with
//      a LoRA, merged into the weights afterwards (the GRPO base);
//   2. GRPO with a fresh LoRA on that base (the reference = the warm-up model),
//      G completions per prompt at temperature 1;
//   3. the mean reward of sampled completions on held-out prompts, before and
//      after GRPO, and the training reward curve (SVG).
//
//   npx tsx bench/grpo_setwise.ts [--steps 300] [--warm-steps 100] [--warm-epochs 5] [--lr 2e-3] [--doc docs/results/grpo.md]
//   npx tsx bench/grpo_setwise.ts --smoke   (2 + 2 steps, 1 epoch, 8 held-out prompts, the doc into a temporary
//     folder: seconds; the test suite runs it)
//
// About two minutes on a loaded 2-core machine. The settings were chosen by
// trying lr 1e-3 / 2e-3 / 5e-3 / 1e-2 (1e-2 did not learn; the reward
// plateaus near 0.6 after about 200 steps at 1e-3 and 2e-3).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { loadModel } from '../src/models/load.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { Generator } from '../src/serve/generate.ts';
import { fit } from '../src/train/loop.ts';
import { CausalLmTask } from '../src/train/tasks/causal_lm.ts';
import { GrpoTask, type GrpoPrompt } from '../src/train/tasks/grpo.ts';
import { Rng } from '../src/util/rng.ts';

const argv = process.argv.slice(2);
const smoke = argv.includes('--smoke');
const SMOKE: Record<string, string> = { steps: '2', 'warm-steps': '2', 'warm-epochs': '1' };
const smokeDir = smoke ? fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-grpo-smoke-')) : '';
if (smoke) process.on('exit', () => fs.rmSync(smokeDir, { recursive: true, force: true }));
const arg = (name: string, d: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : smoke && name in SMOKE ? SMOKE[name] : smoke && name === 'doc' ? path.join(smokeDir, 'grpo.md') : d;
};
const STEPS = Number(arg('steps', '300'));
const WARM_STEPS = Number(arg('warm-steps', '100'));
const DOC = arg('doc', 'docs/results/grpo.md');
const SEED = 18;
const G = 8, PROMPTS_PER_STEP = 4;
const LABELS = ['p', 'q', 'r', 's'];
const KEYS = ['e', 'f', 'g', 'h', 'j', 'k', 'l', 'm'];

interface Item { prompt: string; answer: string }

/** Seeded items: a key letter, four distinct documents (one of them the key) in a shuffled order. */
function makeItems(n: number, label: string): Item[] {
  const rng = new Rng(SEED).fork(label);
  return Array.from({ length: n }, () => {
    const docs = rng.shuffle(KEYS.slice()).slice(0, 4);
    const key = docs[rng.int(4)];
    return { prompt: `key ${key} . ${docs.map((d, i) => `${LABELS[i]} ${d}`).join(' ')} .`, answer: LABELS[docs.indexOf(key)] };
  });
}

const m = await loadModel(path.resolve(import.meta.dirname, '../test/fixtures/hf/llama-tiny'), 'decoder');
const tok = m.tokenizer!;
const EOS = m.model.config.eosTokenIds[0];
const decode = (ids: number[]) => tok.decode(ids, { skipSpecialTokens: true }).trim();
const reward = (completion: string, record: Record<string, unknown>) => (completion.trim() === record.answer ? 1 : 0);
const lora = (model: DecoderModel, r: number, seed: number) => {
  const method = getMethod('lora');
  return new AdapterSet(method, method.schema.parse({ r, lora_alpha: 2 * r }), model.sites, model.weights, { targetModules: 'all-linear', headNames: model.headNames, seed });
};
const toPrompt = (it: Item): GrpoPrompt => ({ ids: tok.encode(it.prompt), record: { answer: it.answer } });

/** Mean reward of `samples` sampled completions (temperature 1) per held-out prompt, and how many were a label at all. */
async function meanReward(model: DecoderModel, set: AdapterSet | null, items: Item[], samples = 4): Promise<{ reward: number; format: number }> {
  const gen = new Generator(model, set, { threads: 1 }, { merge: false });
  let r = 0, f = 0;
  try {
    for (const [i, it] of items.entries()) {
      for (let s = 0; s < samples; s++) {
        const out = await gen.generate(tok.encode(it.prompt), { doSample: true, temperature: 1, maxNewTokens: 3, seed: 1000 * i + s });
        const c = decode(out.tokens);
        r += reward(c, { answer: it.answer });
        f += LABELS.includes(c) ? 1 : 0;
      }
    }
  } finally {
    await gen.release();
  }
  return { reward: r / (items.length * samples), format: f / (items.length * samples) };
}

const t0 = performance.now();
const evalItems = makeItems(smoke ? 8 : 100, 'eval');
const before = await meanReward(m.model, null, evalItems);

// 1. Warm-up: a few supervised steps teach the format and part of the task.
const warmItems = makeItems(WARM_STEPS * 16, 'warm-up');
const warmSet = lora(m.model, 16, 1);
const sft = new CausalLmTask(m.model, { padId: 0 });
const warmData = warmItems.map((it) => {
  const p = tok.encode(it.prompt);
  return { ids: [...p, ...tok.encode(it.answer, { addSpecialTokens: false }), EOS], promptLength: p.length };
});
// The 2-layer, 32-wide random-init fixture learns the warm-up too slowly through a LoRA: it is fully fine-tuned (--lora-warm-up to compare).
const FULL = !argv.includes('--lora-warm-up');
const warmFit = await fit(sft, FULL ? null : warmSet, { train: warmData }, { ...(FULL && { full: { weights: m.model.weights } }), epochs: Number(arg("warm-epochs", "5")), lr: Number(arg("warm-lr", "3e-3")), batchSize: 16, seed: SEED, warmupRatio: 0, schedule: 'constant', maxGradNorm: 1, threads: 1 });
console.log(`warm-up loss per epoch ${warmFit.epochLosses.map((l) => l.toFixed(3)).join(" → ")}`);
// Full fine-tuning trained m.model's weights in place; a LoRA warm-up is merged into a copy.
const base = FULL ? m.model : m.model.withWeights(warmSet.mergeInto(m.model.weights));
const warm = await meanReward(base, null, evalItems);
console.log(`untrained: reward ${before.reward.toFixed(3)}; after warm-up (${WARM_STEPS} steps): reward ${warm.reward.toFixed(3)}, label format ${warm.format.toFixed(3)}  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);

// 2. GRPO on the warm-up model with a fresh LoRA.
const grpoItems = makeItems(STEPS * PROMPTS_PER_STEP, 'grpo');
const set = lora(base, 8, 2);
const curve: number[] = [];
const task = new GrpoTask(base, { numGenerations: G, maxNewTokens: 3, temperature: 1, beta: 0.04, epsilon: 0.2, padId: 0, decode, reward, threads: 1 });
await fit(task, set, { train: grpoItems.map(toPrompt) }, {
  epochs: 1, lr: Number(arg("lr", "2e-3")), batchSize: PROMPTS_PER_STEP, seed: SEED, warmupRatio: 0, schedule: 'constant', maxGradNorm: 1, threads: 1,
  onStep: (s) => {
    curve.push(s.task!.reward);
    if (s.step % 10 === 0) console.log(`step ${s.step}: reward ${(curve.slice(-10).reduce((a, b) => a + b, 0) / Math.min(10, curve.length)).toFixed(3)} (last 10), kl ${s.task!.kl?.toFixed(4)}`);
  },
});
const after = await meanReward(base, set, evalItems);
const seconds = (performance.now() - t0) / 1000;
console.log(`after GRPO (${STEPS} steps): reward ${after.reward.toFixed(3)}, label format ${after.format.toFixed(3)}  (${seconds.toFixed(0)} s)`);

// 3. The reward curve (a moving mean over 10 steps) and the write-up.
function curveSvg(ys: number[], title: string): string {
  const W = 640, H = 320, L = 50, R = 20, T = 30, B = 40;
  const smooth = ys.map((_, i) => { const w = ys.slice(Math.max(0, i - 9), i + 1); return w.reduce((a, b) => a + b, 0) / w.length; });
  const x = (i: number) => L + ((W - L - R) * i) / Math.max(1, ys.length - 1);
  const y = (v: number) => T + (H - T - B) * (1 - v);
  const pts = (vs: number[]) => vs.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((v) => `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${v}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${title}</text>${ticks}
<polyline fill="none" stroke="#9cc3e6" stroke-width="1" points="${pts(ys)}"/>
<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${pts(smooth)}"/>
<line x1="${L}" x2="${W - R}" y1="${y(warm.reward)}" y2="${y(warm.reward)}" stroke="#d62728" stroke-dasharray="4 3"/>
<text x="${W - R}" y="${y(warm.reward) - 4}" text-anchor="end" font-size="11" fill="#d62728">after warm-up (held-out) ${warm.reward.toFixed(2)}</text>
<text x="${W / 2}" y="${H - 8}" text-anchor="middle" font-size="11">GRPO step (${PROMPTS_PER_STEP} prompts × ${G} completions)</text>
</svg>
`;
}
fs.mkdirSync(path.dirname(DOC), { recursive: true });
writeFileAtomic(path.join(path.dirname(DOC), 'grpo_reward.svg'), curveSvg(curve, 'GRPO on the synthetic setwise task: mean reward per step (thin) and over 10 steps (thick)'));
const first10 = curve.slice(0, 10).reduce((a, b) => a + b, 0) / Math.min(10, curve.length);
const last10 = curve.slice(-10).reduce((a, b) => a + b, 0) / Math.min(10, curve.length);
writeFileAtomic(path.join(path.dirname(DOC), 'grpo.json'), JSON.stringify({ seed: SEED, steps: STEPS, warmSteps: WARM_STEPS, before, warm, after, curve, seconds }, null, 1) + '\n');
console.log(JSON.stringify({ before, warm, after, first10, last10, seconds }));
const pct = (x: number) => x.toFixed(3);
writeFileAtomic(DOC, `# GRPO learns: a tiny decoder on a synthetic setwise task

\`npx tsx bench/grpo_setwise.ts${argv.length ? " " + argv.join(" ") : ""}\` (seed ${SEED}; ${seconds.toFixed(0)} s on a shared 2-core machine). Figures: grpo.json beside this file.

The task (made by the script, seeded): a prompt names a key letter and four
labelled one-letter documents, exactly one of which is the key letter —
\`key g . p k q g r e s j .\` → \`q\` (the tiny Llama fixture's vocabulary has
letters but no digits or brackets, so the labels [1]…[4] are p q r s). Reward,
Rank-R1's rule in this compact format: 1 iff the completion is exactly one
label and it is the right one. Chance with a perfect format is 0.25.

1. Warm-up: ${WARM_STEPS} batches of 16 × ${arg('warm-epochs', '5')} epochs of supervised
   causal-LM loss on "prompt → label" (${FULL ? 'full fine-tuning of the 2-layer, 32-wide random-init fixture: a LoRA on it learned too slowly to be a short warm-up' : 'a LoRA, merged'}),
   stopped while the task is half learned.
2. GRPO on the warm-up model with a fresh LoRA (r 8, α 16, every linear layer):
   ${STEPS} steps of ${PROMPTS_PER_STEP} prompts × G = ${G} completions at temperature 1,
   β = 0.04 (KL to the warm-up model = the adapter disabled), ε = 0.2,
   lr ${arg('lr', '2e-3')} constant, clipping 1.
3. Mean reward of 4 sampled completions (temperature 1) on each of 100
   held-out prompts (standard error about 0.025).

| | mean reward (held out) | completions that are a label |
|---|---|---|
| untrained fixture | ${pct(before.reward)} | ${pct(before.format)} |
| after the warm-up | ${pct(warm.reward)} | ${pct(warm.format)} |
| after GRPO | **${pct(after.reward)}** | ${pct(after.format)} |

Training reward (the step's own samples): first 10 steps ${pct(first10)}, last 10 steps ${pct(last10)}.

Settings tried before these (separate runs, same seed, held-out reward after
GRPO from 0.425): lr 1e-2 did not learn (0.26, 400 steps); 5e-3 gave 0.46
(300 steps); 2e-3 gave 0.595 (400 steps) and 0.652 (600 steps); 1e-3 0.613
(600 steps). A LoRA warm-up (r 16) on the random-init fixture reached only a
16% label format in 150 steps, hence the full fine-tuning warm-up.

![reward curve](grpo_reward.svg)

The format was already learned by the warm-up; GRPO raised the share of
right answers, i.e. it learned the matching itself from the 0/1 reward.
What this does not show: Rank-R1's retrieval numbers, which need a pretrained
instruction model (see docs/RETRIEVAL.md).
`);
