import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  listCheckpoints,
  loadCheckpoint,
  loadLatestCheckpoint,
  saveCheckpoint,
  CheckpointError,
} from "../src/train/checkpoint.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { MetricsLog, readMetrics } from "../src/train/metrics.ts";
import { AdamW, type AdamWStateDict } from "../src/optim/adamw.ts";
import { Rng, type RngState } from "../src/util/rng.ts";

const tmp = () => fs.mkdtempSync(join(tmpdir(), "lorakit-ckpt-"));

test("writeFileAtomic: writes, replaces, leaves no temp files, creates folders", () => {
  const dir = tmp();
  const f = join(dir, "sub", "a.json");
  writeFileAtomic(f, "one");
  writeFileAtomic(f, new Uint8Array([116, 119, 111]));
  assert.equal(fs.readFileSync(f, "utf8"), "two");
  assert.deepEqual(fs.readdirSync(join(dir, "sub")), ["a.json"]);
  // a failed write leaves the old content and no temp file
  assert.throws(() => writeFileAtomic(join(dir, "sub", "a.json", "x"), "y"));
  assert.equal(fs.readFileSync(f, "utf8"), "two");
});

function trainSome(steps: number, resumeFrom?: { params: Map<string, Float32Array>; opt: AdamWStateDict; rng: RngState }) {
  const params = resumeFrom
    ? new Map([...resumeFrom.params].map(([k, v]) => [k, v.slice()]))
    : new Map([
        ["lora_A", new Rng(1).fillNormal(new Float32Array(12))],
        ["lora_B", new Float32Array(6)],
      ]);
  const opt = new AdamW(params, { lr: 0.01, groups: [{ match: ["lora_B"], lrScale: 4, weightDecay: 0 }] });
  const rng = new Rng(7);
  if (resumeFrom) {
    opt.loadStateDict(resumeFrom.opt);
    rng.setState(resumeFrom.rng);
  }
  for (let s = 0; s < steps; s++) {
    const grads = new Map([...params].map(([k, v]) => [k, rng.fillNormal(new Float32Array(v.length))]));
    opt.step(grads);
  }
  return { params, opt, rng };
}

test("save/load round trip: params, AdamW state, rng state, trainer JSON, best, non-finite numbers", async () => {
  const dir = tmp();
  const run = trainSome(5);
  const trainer = { epoch: 1, batchInEpoch: 3, bestVal: -Infinity, lastLoss: NaN, history: [{ epoch: 0, acc: 0.5 }], note: null };
  const best = new Map([["lora_A", Float32Array.from([1, 2, 3])]]);
  const where = await saveCheckpoint(dir, {
    step: 5,
    params: run.params,
    optimizer: run.opt.stateDict(),
    rng: { data: run.rng.state(), dropout: new Rng(3).state() },
    trainer,
    best,
  });
  assert.equal(where, join(dir, "checkpoint-5"));
  assert.equal(fs.readFileSync(join(dir, "latest"), "utf8"), "checkpoint-5\n");
  const ck = (await loadLatestCheckpoint(dir))!;
  assert.equal(ck.step, 5);
  assert.deepEqual(ck.params, run.params);
  assert.deepEqual(ck.optimizer, run.opt.stateDict() as unknown);
  assert.deepEqual(ck.trainer, trainer);
  assert.deepEqual(ck.best, best);
  assert.deepEqual((ck.rng as Record<string, RngState>).data, run.rng.state());

  // resuming from the checkpoint replays the uninterrupted run bit for bit
  const full = trainSome(9);
  const resumed = trainSome(4, {
    params: ck.params,
    opt: ck.optimizer as unknown as AdamWStateDict,
    rng: (ck.rng as Record<string, RngState>).data!,
  });
  assert.deepEqual(resumed.params, full.params);
  assert.deepEqual(resumed.opt.stateDict(), full.opt.stateDict());
});

test("crash simulation: a leftover .tmp dir is ignored; latest wins; pruning keeps the last K", async () => {
  const dir = tmp();
  const params = (x: number) => new Map([["w", Float32Array.from([x, x + 1])]]);
  for (const step of [10, 20, 30, 40]) await saveCheckpoint(dir, { step, params: params(step) }, { keepLast: 2 });
  assert.deepEqual(
    listCheckpoints(dir).map((c) => c.step),
    [30, 40],
  );
  // a save that crashed mid-way: a half-written temp folder with a newer step
  const crashed = join(dir, ".tmp-ckpt-12345-deadbeef");
  fs.mkdirSync(crashed);
  fs.writeFileSync(join(crashed, "state.json"), '{"format":"lorakit-checkpoint","version":1,"step":50,"tens');
  fs.writeFileSync(join(crashed, "tensors.safetensors"), new Uint8Array(3));
  let ck = (await loadLatestCheckpoint(dir))!;
  assert.equal(ck.step, 40);
  assert.equal(ck.warnings, undefined);
  assert.deepEqual([...ck.params.get("w")!], [40, 41]);
  // the next save cleans the leftover up
  await saveCheckpoint(dir, { step: 50, params: params(50) }, { keepLast: 2 });
  assert.ok(!fs.existsSync(crashed));
  assert.deepEqual(fs.readdirSync(dir).sort(), ["checkpoint-40", "checkpoint-50", "latest"]);

  // latest names a corrupted checkpoint: fall back to the newest good one
  const bin = join(dir, "checkpoint-50", "tensors.safetensors");
  const bytes = fs.readFileSync(bin);
  bytes[bytes.length - 1]! ^= 0xff; // a flipped bit in tensor data: only the sha256 can see it
  fs.writeFileSync(bin, bytes);
  assert.throws(() => loadCheckpoint(join(dir, "checkpoint-50")), (e: unknown) => e instanceof CheckpointError && /sha256/.test(e.message));
  ck = (await loadLatestCheckpoint(dir))!;
  assert.equal(ck.step, 40);
  assert.match(ck.warnings![0]!, /checkpoint-50: .*sha256 mismatch/);

  // no latest pointer at all: newest loadable by step
  fs.rmSync(join(dir, "latest"));
  fs.rmSync(join(dir, "checkpoint-50"), { recursive: true });
  assert.equal((await loadLatestCheckpoint(dir))!.step, 40);
  // nothing there
  assert.equal(await loadLatestCheckpoint(join(dir, "nope")), null);
});

test("re-saving the same step replaces it; bad inputs are rejected", async () => {
  const dir = tmp();
  await saveCheckpoint(dir, { step: 3, params: new Map([["w", Float32Array.from([1])]]) });
  await saveCheckpoint(dir, { step: 3, params: new Map([["w", Float32Array.from([2])]]) });
  assert.deepEqual([...(await loadLatestCheckpoint(dir))!.params.get("w")!], [2]);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["checkpoint-3", "latest"]);
  await assert.rejects(saveCheckpoint(dir, { step: -1, params: new Map() }), /step must be an integer/);
  await assert.rejects(
    saveCheckpoint(dir, { step: 4, params: new Map(), trainer: { x: new Float64Array(2) } }),
    /trainer\.x is a Float64Array/,
  );
  await assert.rejects(saveCheckpoint(dir, { step: 4, params: new Map(), trainer: { $tensor: "t0" } }), /reserved key/);
});

test("metrics: one JSON object per line with a timestamp, flushed per write, torn lines tolerated", () => {
  const dir = tmp();
  const f = join(dir, "run", "metrics.jsonl");
  const log = new MetricsLog(f);
  log.write({ event: "step", step: 1, loss: 0.69 });
  // flushed: visible to a reader before close
  const lines = fs.readFileSync(f, "utf8").trim().split("\n");
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(Object.keys(rec)[0], "time");
  assert.ok(!Number.isNaN(Date.parse(rec.time as string)));
  log.write({ event: "step", step: 2, loss: NaN, lr: Infinity });
  log.close();
  assert.throws(() => log.write({}), /after close/);
  // a crash mid-line, then a new run appends
  fs.appendFileSync(f, '{"time":"2024-01-01T00:00:00Z","event":"st');
  const log2 = new MetricsLog(f, { fsync: true });
  log2.write({ event: "resume", step: 2 });
  log2.close();
  const bad: number[] = [];
  const recs = readMetrics(f, { onBadLine: (n) => bad.push(n) });
  assert.deepEqual(bad, [3]);
  assert.throws(() => readMetrics(f, { strict: true }), /metrics\.jsonl:3: not valid JSON/);
  assert.deepEqual(
    recs.map((r) => r.event),
    ["step", "step", "resume"],
  );
  assert.ok(Number.isNaN(recs[1]!.loss));
  assert.equal(recs[1]!.lr, Infinity);
});
