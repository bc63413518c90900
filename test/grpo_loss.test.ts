// The GRPO loss (src/train/grpo/loss.ts) and the group advantages against a
// PyTorch transcription of the standard objective (tools/reference/grpo_loss.py
// → test/fixtures/grpo_loss.json, inputs drawn there with seed 18): loss and
// ∂loss/∂logp to 1e-6, in float64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Graph } from '../src/graph/ir.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { grpoLoss } from '../src/train/grpo/loss.ts';
import { groupAdvantages } from '../src/train/grpo/advantages.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/grpo_loss.json', import.meta.url), 'utf8'));

for (const c of FIX.cases) {
  test(`GRPO loss and gradient equal PyTorch: ${c.name}`, async () => {
    const N = c.groups * c.G, T = c.T;
    const adv = groupAdvantages(c.rewards, c.G);
    adv.forEach((a, i) => assert.ok(Math.abs(a - c.advantages[i]) < 1e-6, `advantage ${i}: ${a} vs ${c.advantages[i]}`));
    const g = new Graph('grpo-check');
    const inp = (name: string, shape: (number | string)[]) => g.input(name, 'float64', shape);
    const logp = inp('logp', [N, T]);
    const { loss } = grpoLoss(logp, inp('old', [N, T]), inp('ref', [N, T]), inp('mask', [N, T]), inp('adv', [N]), { epsilon: c.epsilon, epsilonHigh: c.epsilonHigh, beta: c.beta });
    g.output('loss', loss);
    g.output('grad', grad(loss, [logp])[0]);
    const cg = await CompiledGraph.compile(g);
    const t = (xs: number[], dims: number[]) => ({ data: Float64Array.from(xs), dims });
    const out = await cg.run({ logp: t(c.logp, [N, T]), old: t(c.old, [N, T]), ref: t(c.ref, [N, T]), mask: t(c.mask, [N, T]), adv: t(Array.from(adv), [N]) });
    await cg.release();
    assert.ok(Math.abs(Number(out.loss.data[0]) - c.loss) < 1e-6, `loss ${out.loss.data[0]} vs ${c.loss}`);
    const gr = out.grad.data as Float64Array;
    let worst = 0;
    gr.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - c.grad[i]))));
    assert.ok(worst < 1e-6, `max |Δgrad| ${worst}`);
    assert.ok(c.grad.some((v: number) => Math.abs(v) > 1e-3), 'the reference gradient is not trivially zero');
  });
}

test('group advantages: zero for a group of equal rewards; refuse groups of one and partial groups', () => {
  assert.deepEqual(Array.from(groupAdvantages([1, 1, 0, 0], 2)), [0, 0, 0, 0]);
  const a = groupAdvantages([1, 0], 2);
  assert.ok(Math.abs(a[0] - 0.5 / (Math.SQRT1_2 + 1e-4)) < 1e-6 && Math.abs(a[0] + a[1]) < 1e-7);
  assert.throws(() => groupAdvantages([1, 0], 1), /at least 2/);
  assert.throws(() => groupAdvantages([1, 0, 1], 2), /whole groups/);
});
