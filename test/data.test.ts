import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { cleanReview, loadImdb, IMDB_LABEL_NAMES } from "../src/data/imdb.ts";
import { JsonlError, parseJsonl, readJsonl, describeLabels } from "../src/data/jsonl.ts";
import { makeBatches, normalizeBuckets, padBatch, paddingFraction, pickBucket, planBatches } from "../src/data/batching.ts";
import { Rng } from "../src/util/rng.ts";

/* ---------------- IMDB ---------------- */

const counts = (xs: { label: number }[]) => [0, 1].map((k) => xs.filter((x) => x.label === k).length);

test("imdb: sizes, balance, no overlap, labels", () => {
  const d = loadImdb();
  assert.deepEqual(d.labelNames, [...IMDB_LABEL_NAMES]);
  assert.equal(d.info.seed, 1234);
  assert.equal(d.info.raw, 50000);
  assert.deepEqual(d.info.fullSizes, { train: 34392, validation: 5000, test: 10000 });
  assert.deepEqual(counts(d.train), [17196, 17196]);
  assert.deepEqual(counts(d.validation), [2500, 2500]);
  assert.deepEqual(counts(d.test), [5000, 5000]);
  const seen = new Set<string>();
  for (const e of [...d.train, ...d.validation, ...d.test]) {
    assert.ok(!seen.has(e.text), "a review is in two places");
    seen.add(e.text);
    assert.ok(!e.text.includes("<br"), "HTML left in text");
  }
  // every even prefix is exactly balanced
  for (const split of [d.train, d.validation, d.test]) {
    let diff = 0;
    for (let i = 0; i < 2000; i++) {
      diff += split[i]!.label === 1 ? 1 : -1;
      if (i % 2 === 1) assert.equal(diff, 0);
    }
  }
});

test("imdb: the split is stable (pinned), seeded, and asking for fewer gives a prefix", () => {
  const d = loadImdb();
  // pinned: the first validation and test reviews of seed 1234 never change
  assert.equal(d.validation[0]!.text.slice(0, 40), PINNED.validation);
  assert.equal(d.test[0]!.text.slice(0, 40), PINNED.test);
  assert.equal(d.train[0]!.text.slice(0, 40), PINNED.train);
  const small = loadImdb({ seed: 1234, trainSize: 100, validationSize: 10, testSize: 20 });
  assert.deepEqual(small.train, d.train.slice(0, 100));
  assert.deepEqual(small.validation, d.validation.slice(0, 10));
  assert.deepEqual(small.test, d.test.slice(0, 20));
  assert.deepEqual(counts(small.train), [50, 50]);
  const other = loadImdb({ seed: 99, testSize: 50 });
  assert.notDeepEqual(other.test, d.test.slice(0, 50));
  assert.deepEqual(other.info.fullSizes, d.info.fullSizes);
  assert.throws(() => loadImdb({ trainSize: 10 ** 6 }), /trainSize/);
  // returned arrays are fresh; the examples are frozen
  small.train.pop();
  assert.equal(loadImdb({ trainSize: 100 }).train.length, 100);
  assert.ok(Object.isFrozen(d.train[0]));
});
const PINNED = {
  train: "I was going to use 'The German Scream' a",
  validation: "I think this is the worst movie I have s",
  test: "I never really watched this program befo",
};

test("imdb: another file in the same format (path option); dedup; too small is an error", () => {
  const dir = mkdtempSync(join(tmpdir(), "lorakit-imdb-"));
  const rows = [];
  for (let i = 0; i < 16000; i++) rows.push({ t: `review ${i}<br /><br />text`, s: i % 2 });
  rows.push({ t: "review 0 <br />  text", s: 0 }); // the same text once cleaned
  const p = join(dir, "reviews.json");
  writeFileSync(p, JSON.stringify(rows));
  const a = loadImdb({ path: p, seed: 5 });
  assert.equal(a.info.duplicatesRemoved, 1);
  assert.deepEqual(a.info.fullSizes, { train: 1000, validation: 5000, test: 10000 });
  assert.equal(a.train[0]!.text.includes("<"), false);
  const small = join(dir, "small.json");
  writeFileSync(small, JSON.stringify(rows.slice(0, 100)));
  assert.throws(() => loadImdb({ path: small }), /too few examples per class/);
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify([{ t: "x", s: 2 }]));
  assert.throws(() => loadImdb({ path: bad }), /element 0 is not \{t: string, s: 0 \| 1\}/);
});

test("cleanReview: HTML tags, entities, whitespace", () => {
  assert.equal(cleanReview("Great.<br /><br />Really <i>great</i>!"), "Great. Really great!");
  assert.equal(cleanReview("a &amp; b &#8230; &lt;3 &#x41;"), "a & b … <3 A");
  assert.equal(cleanReview("keep <grin> and <SPOILER> and < Cough >"), "keep <grin> and <SPOILER> and < Cough >");
  assert.equal(cleanReview("  spaced\n\tout  "), "spaced out");
  assert.equal(cleanReview("odd &A; entity"), "odd &A; entity");
  assert.equal(cleanReview("<p>para<hr>x<BR/>y"), "para x y");
});

/* ---------------- JSONL ---------------- */

function tmpFile(name: string, content: string): string {
  const p = join(mkdtempSync(join(tmpdir(), "lorakit-jsonl-")), name);
  writeFileSync(p, content);
  return p;
}

test("jsonl: string labels map in order of first appearance; ints pass through", () => {
  const p = tmpFile("s.jsonl", '{"text":"x","label":"pos"}\r\n\n{"text":"y","label":"neg","id":7}\n{"text":"z","label":"pos"}\n');
  const d = readJsonl(p);
  assert.equal(d.labelKind, "string");
  assert.deepEqual(d.labelNames, ["pos", "neg"]);
  assert.deepEqual(d.examples, [
    { text: "x", label: 0 },
    { text: "y", label: 1 },
    { text: "z", label: 0 },
  ]);
  assert.deepEqual(d.labelCounts, [2, 1]);
  assert.match(describeLabels(d), /pos=2 \(id 0\), neg=1 \(id 1\)/);
  // a validation file reuses the training names
  const v = parseJsonl('{"text":"q","label":"neg"}\n', "v.jsonl", { labelNames: d.labelNames });
  assert.deepEqual(v.examples, [{ text: "q", label: 1 }]);
  const ints = parseJsonl('\uFEFF{"text":"a","label":2}\n{"text":"b","label":0}', "i.jsonl");
  assert.equal(ints.labelKind, "int");
  assert.deepEqual(ints.labelNames, ["0", "1", "2"]);
  assert.deepEqual(ints.labelCounts, [1, 0, 1]);
});

function jsonlError(content: string, opts = {}): JsonlError {
  try {
    parseJsonl(content, "data/train.jsonl", opts);
  } catch (e) {
    assert.ok(e instanceof JsonlError, String(e));
    return e;
  }
  assert.fail("expected a JsonlError");
}

test("jsonl: errors name the file, the line, the problem and a valid line", () => {
  const ok = '{"text":"fine","label":1}';
  const cases: [string, RegExp][] = [
    ['{"text":"no label"}', /missing "label"/],
    ['{"label":1}', /missing "text"/],
    ['{"text":42,"label":1}', /"text" must be a string, got number/],
    ['{"text":"a","label":-1}', /non-negative integer or a non-empty string, got -1/],
    ['{"text":"a","label":1.5}', /got 1\.5/],
    ['{"text":"a","label":null}', /got null/],
    ['{"text":"a",label:1}', /not valid JSON/],
    ['["text", 1]', /expected a JSON object, got array/],
    ['{"text":"a","label":"pos"}', /"label" is a string \("pos"\) but line 1 has an integer label/],
  ];
  for (const [bad, re] of cases) {
    const e = jsonlError(`${ok}\n\n${bad}\n${ok}\n`);
    assert.equal(e.file, "data/train.jsonl");
    assert.equal(e.line, 3, bad);
    assert.match(e.message, /^data\/train\.jsonl:3: /);
    assert.match(e.message, re);
    assert.match(e.message, /A valid line looks like: \{"text": "a fine film", "label": 1\}/);
  }
  // several problems are collected, with their lines
  const many = jsonlError(`${ok}\n{"text":1}\n${ok}\nnope\n`);
  assert.deepEqual(
    many.problems.map((p) => p.line),
    [2, 4],
  );
  assert.match(many.message, /data\/train\.jsonl:4: not valid JSON/);
  // fixed label names
  assert.match(jsonlError('{"text":"a","label":"maybe"}', { labelNames: ["neg", "pos"] }).message, /unknown label "maybe": expected one of "neg", "pos"/);
  assert.match(jsonlError('{"text":"a","label":3}', { numLabels: 2 }).message, /out of range: expected 0\.\.1/);
  assert.match(jsonlError("\n\n").message, /no examples/);
  assert.throws(() => readJsonl("/nonexistent/x.jsonl"), /\/nonexistent\/x\.jsonl: cannot read/);
});

/* ---------------- batching ---------------- */

const seqOf = (n: number, start = 1) => Array.from({ length: n }, (_, i) => start + i);

test("batching: buckets, padding, mask, labels layout", () => {
  assert.deepEqual(normalizeBuckets([128, 32, 64, 32], 100), [32, 64, 100]);
  assert.deepEqual(normalizeBuckets([32, 64]), [32, 64]);
  assert.equal(pickBucket(33, [32, 64]), 64);
  assert.throws(() => pickBucket(65, [32, 64]), /no bucket/);
  const { ids, mask, lengths } = padBatch([[5, 6], [7]], 3, 0);
  assert.deepEqual([...ids], [5n, 6n, 0n, 7n, 0n, 0n]);
  assert.deepEqual([...mask], [1, 1, 0, 1, 0, 0]);
  assert.deepEqual([...lengths], [2, 1]);
  const left = padBatch([[5, 6], [7]], 3, 9, "left");
  assert.deepEqual([...left.ids], [9n, 5n, 6n, 9n, 9n, 7n]);
  assert.deepEqual([...left.mask], [0, 1, 1, 0, 0, 1]);

  const seqs = [seqOf(3), seqOf(40), seqOf(10), seqOf(70), seqOf(200)];
  const batches = makeBatches(seqs, [0, 1, 2, 3, 4], { batchSize: 2, buckets: [8, 16, 32, 64], maxLength: 128, padId: 0 });
  // no seed: dataset order, sorted by length within the chunk (longest first)
  assert.deepEqual(
    batches.map((b) => [b.index, b.T]),
    [
      [[4, 3], 128],
      [[1, 2], 64],
      [[0], 8],
    ],
  );
  const b0 = batches[0]!;
  assert.equal(b0.B, 2);
  assert.equal(b0.ids.length, 2 * 128);
  assert.deepEqual([...b0.lengths], [128, 70], "200 truncated to maxLength");
  assert.deepEqual([...b0.labels], [4n, 3n]);
  assert.equal(b0.ids[127], 128n); // first 128 tokens kept
  assert.equal(b0.mask[128 + 69], 1);
  assert.equal(b0.mask[128 + 70], 0);
  assert.throws(
    () => makeBatches(seqs, null, { batchSize: 2, buckets: [64], maxLength: 128, padId: 0, truncation: "error" }),
    /sequence 4 has length 200 > maxLength 128/,
  );
  const lt = makeBatches([seqOf(5)], null, { batchSize: 1, buckets: [4], padId: 0, truncation: "left" });
  assert.deepEqual([...lt[0]!.ids], [2n, 3n, 4n, 5n]);
});

test("batching: every example exactly once, smallest bucket, seeded and reproducible", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 300 }),
      fc.integer({ min: 1, max: 17 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer(),
      (lens, batchSize, chunkBatches, seed) => {
        const seqs = lens.map((n) => seqOf(n));
        const opts = { batchSize, chunkBatches, buckets: [32, 64, 128, 256], maxLength: 256, padId: 0, seed };
        const bs = makeBatches(seqs, null, opts);
        const all = bs.flatMap((b) => b.index).sort((a, b) => a - b);
        assert.deepEqual(all, lens.map((_, i) => i));
        for (const b of bs) {
          const longest = Math.max(1, ...b.index.map((i) => Math.min(lens[i]!, 256)));
          assert.equal(b.T, [32, 64, 128, 256].find((x) => x >= longest));
          assert.ok(b.B === batchSize || b === bs.find((x) => x.B !== batchSize), "only one short batch");
        }
        assert.ok(bs.filter((b) => b.B < batchSize).length <= 1);
        // same seed: same batches; an Rng with the same seed: same batches too
        assert.deepEqual(planBatches(lens, opts), bs.map((b) => ({ index: b.index, T: b.T })));
        assert.deepEqual(
          makeBatches(seqs, null, { ...opts, seed: undefined, rng: new Rng(seed) }).map((b) => b.index),
          bs.map((b) => b.index),
        );
      },
    ),
    { numRuns: 100 },
  );
});

test("batching: shuffling changes with the seed; bucketing cuts padding; dropLast", () => {
  const rng = new Rng(0);
  const lens = Array.from({ length: 1000 }, () => 1 + rng.int(250));
  const seqs = lens.map((n) => seqOf(n));
  const opts = { batchSize: 16, buckets: [32, 64, 128, 256], padId: 0 };
  const a = makeBatches(seqs, null, { ...opts, seed: 1 });
  const b = makeBatches(seqs, null, { ...opts, seed: 2 });
  assert.notDeepEqual(a.map((x) => x.index), b.map((x) => x.index));
  const grouped = paddingFraction(a);
  const random = paddingFraction(makeBatches(seqs, null, { ...opts, seed: 1, chunkBatches: 1 }));
  assert.ok(grouped < random * 0.7, `padding with grouping ${grouped.toFixed(3)} vs without ${random.toFixed(3)}`);
  const dropped = makeBatches(seqs, null, { ...opts, seed: 1, dropLast: true });
  assert.equal(dropped.length, Math.floor(1000 / 16));
  assert.ok(dropped.every((x) => x.B === 16));
  assert.throws(() => makeBatches(seqs, null, { ...opts, shuffle: true }), /needs `rng` or `seed`/);
  assert.throws(() => makeBatches(seqs, [1], opts), /1000 sequences but 1 labels/);
});
