/**
 * Labeled text from JSON Lines: one `{"text": ..., "label": ...}` object a
 * line. Labels are either all non-negative integers (used as class ids) or
 * all strings (mapped to ids 0, 1, 2 ... in order of first appearance, or by
 * a given `labelNames` list so that a validation file shares the training
 * file's ids). Other fields are ignored; blank lines are skipped.
 *
 * Every problem is reported with the file, the 1-based line number, what is
 * wrong and what a valid line looks like. Up to `maxErrors` problems (default
 * 10) are collected before throwing one {@link JsonlError}.
 */
import { readText } from "../io/files.ts";
import { z } from "zod";
import { FileFormatError } from "../util/errors.ts";
import type { Example } from "./imdb.ts";

export type { Example };

export const VALID_LINE_EXAMPLE = '{"text": "a fine film", "label": 1}  or  {"text": "a fine film", "label": "positive"}';

export interface JsonlProblem {
  line: number;
  problem: string;
}

export class JsonlError extends FileFormatError {
  constructor(
    file: string,
    readonly problems: JsonlProblem[],
    truncated = false,
  ) {
    super(file, "");
    const first = problems[0]!;
    const list = problems.map((p) => `  ${file}:${p.line}: ${p.problem}`).join("\n");
    // file:line: problem, as compilers print it.
    this.message =
      `${file}:${first.line}: ${first.problem}\n` +
      (problems.length > 1 ? `${problems.length}${truncated ? "+" : ""} problems:\n${list}\n` : "") +
      `A valid line looks like: ${VALID_LINE_EXAMPLE}`;
    this.name = "JsonlError";
  }
  /** Line number of the first problem. */
  get line(): number {
    return this.problems[0]!.line;
  }
}

export interface JsonlOptions {
  /**
   * Fixed names for string labels (id = index). A string label not in the
   * list is an error. Without it, names are collected in order of first
   * appearance.
   */
  labelNames?: readonly string[];
  /** For integer labels: labels must be < numLabels. */
  numLabels?: number;
  /** Stop collecting problems after this many (default 10). */
  maxErrors?: number;
}

export interface JsonlDataset {
  examples: Example[];
  /** "int": labels were integers; "string": labels were names mapped to ids. */
  labelKind: "int" | "string";
  /**
   * For string labels: the name of each id. For integer labels: the ids seen,
   * as strings, "0" .. max (so labelNames.length is the class count).
   */
  labelNames: string[];
  /** Examples per label id. */
  labelCounts: number[];
}

/** The largest integer class id (labels are ids 0..K-1; the label list is allocated up to the largest). */
export const MAX_CLASS_ID = 99_999;

const typeName = (x: unknown): string => (x === null ? "null" : Array.isArray(x) ? "array" : typeof x);

const LineSchema = z.object({
  text: z.string({
    error: (iss) => (iss.input === undefined ? 'missing "text"' : `"text" must be a string, got ${typeName(iss.input)}`),
  }),
  label: z.union([z.number(), z.string()], {
    error: (iss) =>
      iss.input === undefined
        ? 'missing "label"'
        : `"label" must be a non-negative integer or a non-empty string, got ${JSON.stringify(iss.input)}`,
  }),
});

function describeZodError(err: z.ZodError): string {
  return err.issues.map((i) => i.message).join("; ");
}

/** Parses JSONL text; `file` is used in error messages. */
export function parseJsonl(content: string, file: string, opts: JsonlOptions = {}): JsonlDataset {
  const maxErrors = opts.maxErrors ?? 10;
  const problems: JsonlProblem[] = [];
  let truncated = false;
  const report = (line: number, problem: string) => {
    if (problems.length < maxErrors) problems.push({ line, problem });
    else truncated = true;
  };

  const fixedNames = opts.labelNames ? [...opts.labelNames] : undefined;
  const nameToId = new Map<string, number>((fixedNames ?? []).map((n, i) => [n, i]));
  const names: string[] = fixedNames ?? [];
  let kind: "int" | "string" | undefined;
  let kindLine = 0;
  let maxInt = -1;
  const examples: Example[] = [];

  const text = content.charCodeAt(0) === 0xfeff ? content.slice(1) : content;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.endsWith("\r") ? lines[i]!.slice(0, -1) : lines[i]!;
    if (raw.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      const snippet = raw.length > 60 ? `${raw.slice(0, 60)}...` : raw;
      report(lineNo, `not valid JSON (${(e as Error).message}): ${snippet}`);
      continue;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      report(lineNo, `expected a JSON object, got ${typeName(value)}`);
      continue;
    }
    const parsed = LineSchema.safeParse(value);
    if (!parsed.success) {
      report(lineNo, describeZodError(parsed.error));
      continue;
    }
    const { text: t, label } = parsed.data;
    if (typeof label === "number" ? !(Number.isInteger(label) && label >= 0) : label.length === 0) {
      report(lineNo, `"label" must be a non-negative integer or a non-empty string, got ${JSON.stringify(label)}`);
      continue;
    }
    const thisKind = typeof label === "number" ? "int" : "string";
    if (kind === undefined) {
      kind = thisKind;
      kindLine = lineNo;
    } else if (kind !== thisKind) {
      report(
        lineNo,
        `"label" is ${thisKind === "int" ? "an integer" : "a string"} (${JSON.stringify(label)}) but line ${kindLine} ` +
          `has ${kind === "int" ? "an integer" : "a string"} label: use one kind in a file`,
      );
      continue;
    }
    let id: number;
    if (typeof label === "number" && label > MAX_CLASS_ID) {
      report(lineNo, `"label" ${label} is too large: class ids run from 0 up to ${MAX_CLASS_ID} (map your ids to 0..K-1, or use string labels)`);
      continue;
    }
    if (typeof label === "number") {
      if (opts.numLabels !== undefined && label >= opts.numLabels) {
        report(lineNo, `"label" ${label} is out of range: expected 0..${opts.numLabels - 1}`);
        continue;
      }
      if (fixedNames && label >= fixedNames.length) {
        report(lineNo, `"label" ${label} is out of range: expected 0..${fixedNames.length - 1} (${fixedNames.join(", ")})`);
        continue;
      }
      id = label;
      maxInt = Math.max(maxInt, label);
    } else {
      const known = nameToId.get(label);
      if (known !== undefined) id = known;
      else if (fixedNames) {
        report(lineNo, `unknown label ${JSON.stringify(label)}: expected one of ${fixedNames.map((n) => JSON.stringify(n)).join(", ")}`);
        continue;
      } else {
        id = names.length;
        names.push(label);
        nameToId.set(label, id);
      }
    }
    examples.push({ text: t, label: id });
  }
  if (problems.length) throw new JsonlError(file, problems, truncated);
  if (examples.length === 0) throw new JsonlError(file, [{ line: 1, problem: "no examples: the file is empty or blank" }]);

  const labelNames =
    kind === "string"
      ? names
      : fixedNames ?? Array.from({ length: Math.max(maxInt + 1, opts.numLabels ?? 0) }, (_, i) => String(i));
  const labelCounts = new Array<number>(labelNames.length).fill(0);
  for (const e of examples) labelCounts[e.label]!++;
  return { examples, labelKind: kind!, labelNames, labelCounts };
}

/** Reads and parses a JSONL file (see {@link parseJsonl}). */
export function readJsonl(path: string, opts: JsonlOptions = {}): JsonlDataset {
  let content: string;
  try {
    content = readText(path);
  } catch (e) {
    throw new FileFormatError(path, `cannot read: ${(e as Error).message}`);
  }
  return parseJsonl(content, path, opts);
}

/** A one-line summary, e.g. `3 labels: negative=120 (id 0), positive=80 (id 1), ...`. */
export function describeLabels(ds: JsonlDataset): string {
  return (
    `${ds.labelNames.length} labels (${ds.labelKind}): ` +
    ds.labelNames.map((n, i) => `${n}=${ds.labelCounts[i]} (id ${i})`).join(", ")
  );
}
