// BEIR-style collections: corpus.jsonl {"_id", "title"?, "text", ...} and
// queries.jsonl {"_id", "text"}. A document's searchable text is its title and
// text joined by a space (BEIR's convention), or only the fields asked for.

import { readJsonLines } from '../data/records.ts';

export interface CorpusDoc {
  id: string;
  title: string;
  text: string;
}

export interface Query {
  id: string;
  text: string;
}

const CORPUS_LINE = '{"_id": "d1", "title": "...", "text": "..."}';
const QUERY_LINE = '{"_id": "q1", "text": "..."}';

const id = (o: any): string | null => (typeof o?._id === 'string' && o._id ? o._id : typeof o?._id === 'number' ? String(o._id) : typeof o?.id === 'string' ? o.id : null);

function noDuplicates<T extends { id: string }>(file: string, xs: T[], what: string): T[] {
  const seen = new Set<string>();
  for (const x of xs) {
    if (seen.has(x.id)) throw new Error(`${file}: ${what} id '${x.id}' appears twice`);
    if (/\s/.test(x.id)) throw new Error(`${file}: ${what} id '${x.id}' contains whitespace (TREC run files separate fields by whitespace)`);
    seen.add(x.id);
  }
  return xs;
}

export function readCorpus(file: string): CorpusDoc[] {
  const docs = readJsonLines(file, CORPUS_LINE, (o) => {
    const i = id(o);
    if (i === null) return 'expected an "_id" string';
    if (typeof o.text !== 'string') return 'expected a "text" string';
    if (o.title !== undefined && o.title !== null && typeof o.title !== 'string') return '"title" must be a string';
    return { id: i, title: o.title ?? '', text: o.text };
  });
  return noDuplicates(file, docs, 'document');
}

export function readQueries(file: string): Query[] {
  const qs = readJsonLines(file, QUERY_LINE, (o) => {
    const i = id(o);
    if (i === null) return 'expected an "_id" string';
    if (typeof o.text !== 'string') return 'expected a "text" string';
    return { id: i, text: o.text };
  });
  return noDuplicates(file, qs, 'query');
}

export type DocField = 'title' | 'text';

/** The text a document is searched and scored by: its fields joined by a space (empty fields dropped). */
export function docText(d: CorpusDoc, fields: readonly DocField[] = ['title', 'text']): string {
  return fields.map((f) => d[f]).filter((s) => s && s.trim()).join(' ');
}
