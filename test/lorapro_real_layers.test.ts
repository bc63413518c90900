// LoRA-Pro on real layers of the BERT fixture (not only the small random
// matrices of test/optimizers.test.ts): three steps of a LoRA-Pro run, each
// with the full gradient g = ∂L/∂W from the full-fine-tuning graph at
// W = W0 + s·B·A (same batch, same head), dumped and checked by the float64
// PyTorch script tools/reference/lorapro_real_layers.py against the paper's
// equations and the official code: g_A = s·Bᵀg and g_B = s·g·Aᵀ (lorakit's two
// graphs agree), the paper's equivalent gradient is the orthogonal projection
// of g onto {B·X + Y·A} (residual ⊥ col(B) and row(A); no random tangent move
// gets closer), LoRA-Pro's ‖g̃ − g‖ ≤ plain LoRA's, and lorakit's g̃ and A, B
// after each step equal the official update on the same tensors. A second run
// (SGD, the paper's exact inverses: shift 0) checks that g̃ is then the projection
// itself, on both sides (Python, and the bench's own exact-projector floor). The tensors
// are lorakit's because the point is real layers; the properties checked hold
// for any inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { perStepDistances } from '../bench/lorapro_claim.ts';
import { loadModel } from '../src/models/load.ts';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';

const BERT = new URL('./fixtures/hf/bert', import.meta.url).pathname;

test('LoRA-Pro on the BERT fixture: the equivalent gradient is the projection of the full gradient, closer than LoRA\'s, and the step is the official one (PyTorch float64)', { skip: torchSkip }, async () => {
  requireTorch();
  const m = await loadModel(BERT, 'encoder');
  const texts = ['a fine film', 'dull and long', 'the cast shines', 'nothing works here', 'warm and funny', 'a mess', 'great score', 'flat'];
  const data = texts.map((t, i) => ({ ids: m.tokenizer!.encode(t).slice(0, 12), label: i % 2 }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorapro-real-'));
  const checked = (file: string) => {
    const py = spawnSync(PY, [new URL('../tools/reference/lorapro_real_layers.py', import.meta.url).pathname, file], { encoding: 'utf8' });
    assert.equal(py.status, 0, `${py.stdout}\n${py.stderr}`);
    assert.match(py.stdout, /all checks passed/);
    assert.equal((py.stdout.match(/^step \d+: chain rule/gm) ?? []).length, 3, py.stdout);
    return py.stdout;
  };
  try {
    const opts = { steps: 3, lr: 1e-3, r: 4, alpha: 8, batchSize: 2, seed: 0, targets: ['query', 'value'] };
    const file = path.join(dir, 'adamw.safetensors');
    const rows = await perStepDistances(m.model, data, { ...opts, regime: 'adamw' }, { file, steps: 3 });
    assert.equal(rows.length, 3);
    // Step 1: both runs stand at the same point (B = 0, the same A): the projection is closer than s²·g·AᵀA.
    assert.ok(rows[0].lorapro.grad <= rows[0].lora.grad, `step 1: LoRA-Pro ${rows[0].lorapro.grad} vs LoRA ${rows[0].lora.grad}`);
    for (const r of rows) for (const v of [r.lora, r.lorapro]) for (const x of Object.values(v)) assert.ok(Number.isFinite(x), `step ${r.step}: a figure is not finite`);
    checked(file);
    // The paper's exact inverses (shift 0), SGD: lorakit's g̃ must then be the projection itself, and its
    // gradient distance the floor the bench computes on its own (exact projectors, no shift).
    const exact = path.join(dir, 'sgd-shift0.safetensors');
    const sgd = await perStepDistances(m.model, data, { ...opts, regime: 'sgd', shift: 0 }, { file: exact, steps: 3 });
    for (const r of sgd) assert.ok(Math.abs(r.lorapro.grad - r.lorapro.gradFloor) < 1e-4 * Math.max(r.lorapro.gradFloor, 1e-3), `step ${r.step}: g̃ distance ${r.lorapro.grad} vs floor ${r.lorapro.gradFloor}`);
    assert.match(checked(exact), /shift 0, 3 steps/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
