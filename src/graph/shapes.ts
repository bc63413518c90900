// Shape arithmetic with symbolic dims. A symbolic dim is a string such as 'B'
// or a product such as 'B*T'; equal strings are equal dims.

import { Dim, Shape, ShapeError } from './ir.ts';

export const fmt = (s: Shape) => `[${s.join(',')}]`;

/** numpy broadcasting of two shapes; throws with both shapes when they clash. */
export function broadcastShapes(op: string, a: Shape, b: Shape): Shape {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else if (typeof da === 'string' || typeof db === 'string') out.push(typeof da === 'number' ? da : db);
    else throw new ShapeError(`${op}: shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast (dim ${i}: ${da} vs ${db})`);
  }
  return out;
}

export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new ShapeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Multiply dims, keeping a symbolic product where needed. */
export function mulDims(dims: Dim[]): Dim {
  let n = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') n *= d;
    else syms.push(...d.split('*'));
  }
  if (syms.length === 0) return n;
  syms.sort();
  return n === 1 ? syms.join('*') : [String(n), ...syms].join('*');
}

function factors(d: Dim): { n: number; syms: string[] } {
  if (typeof d === 'number') return { n: d, syms: [] };
  let n = 1;
  const syms: string[] = [];
  for (const f of d.split('*')) {
    if (/^\d+$/.test(f)) n *= Number(f);
    else syms.push(f);
  }
  return { n, syms };
}

/** Divide dim products: total / part, cancelling symbolic factors. */
export function divDims(op: string, total: Dim[], part: Dim[]): Dim {
  let n = 1;
  const syms: string[] = [];
  for (const d of total) {
    const f = factors(d);
    n *= f.n;
    syms.push(...f.syms);
  }
  let m = 1;
  for (const d of part) {
    const f = factors(d);
    m *= f.n;
    for (const s of f.syms) {
      const i = syms.indexOf(s);
      if (i < 0) throw new ShapeError(`${op}: cannot infer -1: symbolic dim '${s}' of the target is not in the input`);
      syms.splice(i, 1);
    }
  }
  if (n % m !== 0) throw new ShapeError(`${op}: cannot infer -1: ${n} elements not divisible by ${m}`);
  return mulDims([n / m, ...syms]);
}

export function sameDim(a: Dim, b: Dim): boolean {
  if (a === b) return true;
  const fa = factors(a), fb = factors(b);
  return fa.n === fb.n && fa.syms.slice().sort().join('*') === fb.syms.slice().sort().join('*');
}

export function dimsCompatible(a: Dim, b: Dim): boolean {
  return typeof a === 'string' || typeof b === 'string' || a === b;
}
