// What the page's user gives (a JSONL file, or lines in two text boxes) as a
// labeled set the trainer takes, checked before anything trains: an empty
// file, a malformed line (file:line, as `lorakit train` reports it), a single
// label, too few examples. Each problem is an InputError whose message is
// shown as is.

import { JsonlError, parseJsonl, VALID_LINE_EXAMPLE } from '../data/jsonl.ts';

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

export interface LabeledSet {
  /** Where the examples came from (a file name, or 'text boxes'); recorded in the adapter's lorakit block as `data`. */
  source: string;
  examples: { text: string; label: number }[];
  /** Label name of each class id. */
  labelNames: string[];
  /** 'int': the file's labels were class ids (names '0', '1', ...); 'string': names, ids in order of first appearance. */
  labelKind: 'int' | 'string';
  labelCounts: number[];
}

/** The split needs a validation and a test example and at least three to train on. */
export const MIN_EXAMPLES = 5;

/** A JSONL file's text, as `lorakit train --data <file>` reads it (the same ids for the same labels). */
export function labeledSetFromJsonl(text: string, fileName: string): LabeledSet {
  if (text.trim() === '') throw new InputError(`${fileName} is empty: give one JSON object a line, e.g. ${VALID_LINE_EXAMPLE}`);
  let ds;
  try {
    ds = parseJsonl(text, fileName);
  } catch (e) {
    if (e instanceof JsonlError) throw new InputError(e.message);
    throw e;
  }
  return checked({ source: fileName, examples: ds.examples, labelNames: ds.labelNames, labelKind: ds.labelKind, labelCounts: ds.labelCounts });
}

/** Two labels, each with its examples one a line (blank lines skipped). */
export function labeledSetFromBoxes(boxes: { label: string; text: string }[]): LabeledSet {
  const names = boxes.map((b) => b.label.trim());
  names.forEach((n, i) => {
    if (!n) throw new InputError(`Label ${i + 1} has no name: name each label (e.g. positive, negative)`);
  });
  if (new Set(names).size !== names.length) throw new InputError(`Two boxes have the same label '${names.find((n, i) => names.indexOf(n) !== i)}': give each box its own label`);
  const examples = boxes.flatMap((b, label) => b.text.split('\n').map((t) => t.trim()).filter(Boolean).map((text) => ({ text, label })));
  const labelCounts = names.map((_, i) => examples.filter((e) => e.label === i).length);
  return checked({ source: 'text boxes', examples, labelNames: names, labelKind: 'string', labelCounts });
}

function checked(set: LabeledSet): LabeledSet {
  const present = set.labelNames.filter((_, i) => set.labelCounts[i] > 0);
  const counts = set.labelNames.map((n, i) => `${n}: ${set.labelCounts[i]}`).join(', ');
  if (present.length < 2) {
    const only = present.length === 1 ? `only one label ('${present[0]}', ${set.examples.length} example${set.examples.length === 1 ? '' : 's'})` : 'no examples';
    throw new InputError(`${set.source} has ${only}: a classifier learns to tell labels apart, so give examples of at least two labels`);
  }
  const empty = set.labelNames.filter((_, i) => set.labelCounts[i] === 0);
  if (empty.length) throw new InputError(`${set.source}: label${empty.length > 1 ? 's' : ''} ${empty.join(', ')} ha${empty.length > 1 ? 've' : 's'} no examples (integer labels are class ids 0..K-1; counts ${counts})`);
  if (set.examples.length < MIN_EXAMPLES) {
    throw new InputError(`${set.source} has ${set.examples.length} examples; training needs at least ${MIN_EXAMPLES} (10% validate, 10% test, the rest train)`);
  }
  return set;
}

/**
 * The set as a JSONL file, in its order (string labels then get the same ids
 * again): what `lorakit train --data` and `lorakit eval --data` read to
 * reproduce the page's split and run.
 */
export function labeledSetToJsonl(set: LabeledSet): string {
  const label = (id: number) => (set.labelKind === 'int' ? id : set.labelNames[id]);
  return set.examples.map((e) => JSON.stringify({ text: e.text, label: label(e.label) })).join('\n') + '\n';
}
