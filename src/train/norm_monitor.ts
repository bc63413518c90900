// The LoRA computational-limits monitor (Hu, Su, Kuo, Song, Liu, "Computational
// Limits of Low-Rank Adaptation (LoRA) Fine-Tuning for Transformer Models",
// ICLR 2025, arXiv 2406.03136): per attention layer, the largest entry of the
// adapted query, key and value projections, ‖X·W*‖_max with W* = W + s·B·A
// (the projection as the step computes it, bias included where the model has
// one), next to √(ln L), L the sequence length. The paper shows that LoRA's
// gradient computation admits almost-linear-time approximations only while
// these norms stay below a threshold of order √(ln L); at or above it no
// sub-quadratic algorithm exists (under SETH). Γ = max(q, k, v) and Γ/√(ln L)
// are what a user watches (docs/results/lora_limits.md).
//
// The monitor wraps the LinearFn of the training graph: every self-attention
// projection it recognizes by its module path (q_proj / k_proj / v_proj,
// BERT's query / key / value, T5's SelfAttention.q/k/v, fused c_attn / qkv
// split in three) gets one extra graph output, the per-row max |·| [rows]. The
// host then takes the max over the rows of real tokens (the batch's
// attention_mask, where the rows are its B·T tokens) and over the row's
// columns. No gradient flows through these outputs; they cost one Abs and one
// ReduceMax per projection. Cross-attention (T5 EncDecAttention, BART
// encoder_attn) is left out: its keys come from another sequence.

import type { Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { LinearFn, LinearSite } from '../models/types.ts';
import type { HostTensor } from '../runtime/session.ts';

export type ProjectionPart = 'q' | 'k' | 'v';

/** One attention projection the monitor reads: columns [offset, offset + width) of a site's output. */
export interface AttentionProjection {
  site: string;
  /** The attention module ('model.layers.0.self_attn'). */
  layer: string;
  part: ProjectionPart;
  offset: number;
  width: number;
  /** Rows are the tokens of input_ids / attention_mask (false for the decoder of an encoder-decoder). */
  tokenRows: boolean;
}

const SEPARATE: [RegExp, Record<string, ProjectionPart>][] = [
  [/^(.*)\.(q_proj|k_proj|v_proj)$/, { q_proj: 'q', k_proj: 'k', v_proj: 'v' }],
  [/^(.*)\.(query|key|value)$/, { query: 'q', key: 'k', value: 'v' }],
  [/^(.*SelfAttention)\.(q|k|v)$/, { q: 'q', k: 'k', v: 'v' }],
];
const FUSED = /^(.*)\.(c_attn|qkv)$/;
const CROSS = /(EncDecAttention|encoder_attn|crossattention)/i;
const DECODER_OF_ENCDEC = /(^|\.)decoder\./;

/** The self-attention projections of one site (none for other sites). */
export function attentionProjections(site: LinearSite): AttentionProjection[] {
  if (site.kind === 'embedding' || CROSS.test(site.name)) return [];
  const tokenRows = !DECODER_OF_ENCDEC.test(site.name);
  for (const [re, parts] of SEPARATE) {
    const m = re.exec(site.name);
    if (m) return [{ site: site.name, layer: m[1], part: parts[m[2]], offset: 0, width: site.outFeatures, tokenRows }];
  }
  const f = FUSED.exec(site.name);
  if (f && site.outFeatures % 3 === 0) {
    const w = site.outFeatures / 3;
    return (['q', 'k', 'v'] as const).map((part, i) => ({ site: site.name, layer: f[1], part, offset: i * w, width: w, tokenRows }));
  }
  return [];
}

/** The graph output holding a projection's per-row max |entry|. */
export function normOutputName(p: AttentionProjection): string {
  return `norms.${p.layer}.${p.part}`;
}

export interface LayerNorms {
  layer: string;
  q?: number;
  k?: number;
  v?: number;
  /** max(q, k, v) over those present. */
  gamma: number;
  /** Γ / √(ln L) (NaN when L < 2). */
  ratio: number;
}

export interface NormRecord {
  /** The sequence length: the longest real sequence of the batch. */
  L: number;
  /** √(ln L). */
  bound: number;
  layers: LayerNorms[];
}

/** The largest Γ/√(ln L) seen, where and when. */
export interface NormPeak {
  layer: string;
  gamma: number;
  ratio: number;
  step: number;
}

export class NormMonitor {
  /** Projections found while the graph was built, in build order. */
  readonly projections: AttentionProjection[] = [];

  /** `inner` with an output per recognized attention projection (its `embed` and `tensor` hooks kept). */
  wrap(inner: LinearFn): LinearFn {
    const fn: LinearFn = (site, x, W, bias) => {
      const y = inner(site, x, W, bias);
      for (const p of attentionProjections(site)) {
        const g = y.graph;
        const name = normOutputName(p);
        if (g.outputs.some((o) => o.name === name)) continue; // a site built twice (it is the same projection)
        const part: Value = p.width === site.outFeatures ? y : op.slice(y, [p.offset], [p.offset + p.width], [1]);
        g.output(name, op.reduceMax(op.abs(part), [1], false));
        if (!this.projections.some((q) => normOutputName(q) === name)) this.projections.push(p);
      }
      return y;
    };
    if (inner.embed) fn.embed = inner.embed;
    if (inner.tensor) fn.tensor = inner.tensor;
    return fn;
  }

  /**
   * The norms of one run from its outputs and feeds: each projection's max over
   * the rows of real tokens (attention_mask = 1 where the rows are the batch's
   * B·T tokens; every row otherwise), grouped by layer.
   */
  read(out: Record<string, HostTensor>, feeds: Record<string, HostTensor>): NormRecord {
    const mask = feeds.attention_mask;
    const ids = feeds.input_ids;
    let L = ids ? Number(ids.dims[ids.dims.length - 1]) : 0;
    if (mask && mask.dims.length === 2) {
      const [B, T] = mask.dims.map(Number);
      L = 0;
      for (let b = 0; b < B; b++) {
        let n = 0;
        for (let t = 0; t < T; t++) n += Number(mask.data[b * T + t]) > 0 ? 1 : 0;
        L = Math.max(L, n);
      }
    }
    const byLayer = new Map<string, LayerNorms>();
    for (const p of this.projections) {
      const rows = out[normOutputName(p)];
      if (!rows) throw new Error(`norm monitor: the run has no output '${normOutputName(p)}'`);
      const useMask = p.tokenRows && mask && mask.data.length === rows.data.length;
      let m = 0;
      for (let r = 0; r < rows.data.length; r++) {
        if (useMask && !(Number(mask.data[r]) > 0)) continue;
        const v = Number(rows.data[r]);
        if (v > m || Number.isNaN(v)) m = v;
      }
      const rec = byLayer.get(p.layer) ?? { layer: p.layer, gamma: 0, ratio: NaN };
      rec[p.part] = m;
      byLayer.set(p.layer, rec);
    }
    const bound = L >= 2 ? Math.sqrt(Math.log(L)) : NaN;
    const layers = [...byLayer.values()].map((r) => {
      const gamma = Math.max(...(['q', 'k', 'v'] as const).filter((k) => r[k] !== undefined).map((k) => r[k]!));
      return { ...r, gamma, ratio: gamma / bound };
    });
    return { L, bound, layers };
  }
}

/** The layer with the largest ratio (or Γ when L < 2) of a record, with its step. */
export function peakOf(rec: NormRecord, step: number): NormPeak | undefined {
  let best: NormPeak | undefined;
  for (const l of rec.layers) {
    const key = Number.isNaN(l.ratio) ? -Infinity : l.ratio;
    const bestKey = best ? (Number.isNaN(best.ratio) ? -Infinity : best.ratio) : -Infinity;
    if (!best || key > bestKey || (key === bestKey && l.gamma > best.gamma)) best = { layer: l.layer, gamma: l.gamma, ratio: l.ratio, step };
  }
  return best;
}
