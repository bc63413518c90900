// The frozen-encoder baseline: a softmax-regression head trained on fixed
// sentence embeddings (what a USE user does today without fine-tuning).
// Embeddings are small, so the head trains in plain TS with AdamW; the epoch
// with the best validation accuracy is kept.

import { AdamW } from '../optim/adamw.ts';
import { Rng } from '../util/rng.ts';
import { HEAD_B, HEAD_W, initHead } from './classifier.ts';

export interface ProbeData { x: Float32Array; labels: number[] }

export function probeLogits(head: Map<string, Float32Array>, x: Float32Array, n: number, h: number, c: number): Float32Array {
  const W = head.get(HEAD_W)!, b = head.get(HEAD_B)!;
  const out = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) {
      let s = b[k];
      for (let j = 0; j < h; j++) s += x[i * h + j] * W[k * h + j];
      out[i * c + k] = s;
    }
  }
  return out;
}

export function accuracy(logits: Float32Array, labels: number[], c: number): number {
  let ok = 0;
  labels.forEach((y, i) => {
    let best = 0;
    for (let k = 1; k < c; k++) if (logits[i * c + k] > logits[i * c + best]) best = k;
    if (best === y) ok++;
  });
  return ok / Math.max(1, labels.length);
}

export function trainLinearProbe(train: ProbeData, val: ProbeData, h: number, c: number, opts: { seed: number; epochs?: number; lr?: number; batchSize?: number; weightDecay?: number }) {
  const head = initHead(h, c, opts.seed);
  const opt = new AdamW(head, { lr: opts.lr ?? 1e-2, weightDecay: opts.weightDecay ?? 1e-4 });
  const n = train.labels.length, bs = opts.batchSize ?? 64;
  const rng = new Rng(opts.seed).fork('probe');
  let best = { acc: -1, head: new Map<string, Float32Array>() };
  const gW = new Float32Array(c * h), gB = new Float32Array(c);
  for (let epoch = 0; epoch < (opts.epochs ?? 60); epoch++) {
    const order = rng.permutation(n);
    for (let s = 0; s < n; s += bs) {
      const idx = order.slice(s, s + bs);
      gW.fill(0);
      gB.fill(0);
      const W = head.get(HEAD_W)!, b = head.get(HEAD_B)!;
      const logit = new Float64Array(c);
      for (const i of idx) {
        let max = -Infinity;
        for (let k = 0; k < c; k++) {
          let z = b[k];
          for (let j = 0; j < h; j++) z += train.x[i * h + j] * W[k * h + j];
          logit[k] = z;
          max = Math.max(max, z);
        }
        let sum = 0;
        for (let k = 0; k < c; k++) sum += (logit[k] = Math.exp(logit[k] - max));
        for (let k = 0; k < c; k++) {
          const d = (logit[k] / sum - (k === train.labels[i] ? 1 : 0)) / idx.length;
          gB[k] += d;
          for (let j = 0; j < h; j++) gW[k * h + j] += d * train.x[i * h + j];
        }
      }
      opt.step(new Map([[HEAD_W, gW], [HEAD_B, gB]]));
    }
    const acc = accuracy(probeLogits(head, val.x, val.labels.length, h, c), val.labels, c);
    if (acc > best.acc) best = { acc, head: new Map([...head].map(([k, v]) => [k, Float32Array.from(v)])) };
  }
  return { head: best.head, valAccuracy: best.acc };
}
