// The norm monitor's records (metrics.jsonl events 'norms', src/train/norm_monitor.ts)
// as an SVG line chart: Γ/√(ln L) of every attention layer over the training
// steps, with the line Γ/√(ln L) = 1 where the paper's threshold sits (up to
// its constant). `lorakit train --monitor-norms` writes it as <out>/norms.svg.

import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { readMetrics } from './metrics.ts';
import type { LayerNorms } from './norm_monitor.ts';

export interface NormsPoint {
  step: number;
  layers: LayerNorms[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS = ['#4878a8', '#e0803a', '#3f9a52', '#c8443c', '#8c6bb1', '#8c564b', '#d673b8', '#7f7f7f', '#b5b533', '#2fb5c6'];

/** A line per layer of Γ/√(ln L) (Γ = max of its q, k, v entries) over the steps, and the ratio-1 line. */
export function normsSvg(points: NormsPoint[], title = 'Largest Q/K/V entry per attention layer, Γ / √(ln L)'): string {
  const pts = points.filter((p) => p.layers.length).sort((a, b) => a.step - b.step);
  if (!pts.length) throw new Error('norms plot: no norm records (was the run monitored, and does the model have attention projections lorakit recognizes?)');
  const layers = [...new Set(pts.flatMap((p) => p.layers.map((l) => l.layer)))];
  const W = 760, H = 420, left = 60, right = 220, top = 40, bottom = 50;
  const plotW = W - left - right, plotH = H - top - bottom;
  const ratios = pts.flatMap((p) => p.layers.map((l) => l.ratio)).filter(Number.isFinite);
  const hi = Math.max(1.2, ...ratios) * 1.05;
  const s0 = pts[0].step, s1 = Math.max(pts[pts.length - 1].step, s0 + 1);
  const x = (s: number) => left + (plotW * (s - s0)) / (s1 - s0);
  const y = (v: number) => top + plotH * (1 - v / hi);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left + plotW / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  const tick = niceStep(hi / 5);
  for (let v = 0; v <= hi + 1e-9; v += tick) {
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${+v.toFixed(3)}</text>`);
  }
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(1).toFixed(1)}" y2="${y(1).toFixed(1)}" stroke="#c00" stroke-dasharray="6 4"/>`);
  parts.push(`<text x="${left + plotW - 4}" y="${(y(1) - 5).toFixed(1)}" text-anchor="end" fill="#c00">Γ / √(ln L) = 1</text>`);
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(`<text x="${left}" y="${top + plotH + 18}" text-anchor="middle">${s0}</text>`);
  parts.push(`<text x="${left + plotW}" y="${top + plotH + 18}" text-anchor="middle">${s1}</text>`);
  parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 38}" text-anchor="middle">optimizer step</text>`);
  layers.forEach((layer, i) => {
    const color = COLORS[i % COLORS.length];
    const line = pts
      .map((p) => ({ step: p.step, r: p.layers.find((l) => l.layer === layer)?.ratio }))
      .filter((p): p is { step: number; r: number } => p.r !== undefined && Number.isFinite(p.r))
      .map((p) => `${x(p.step).toFixed(1)},${y(p.r).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${line.join(' ')}"/>`);
    const ly = top + 14 + 16 * i;
    if (ly < H - 10) {
      parts.push(`<line x1="${left + plotW + 14}" x2="${left + plotW + 34}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
      parts.push(`<text x="${left + plotW + 40}" y="${ly}" font-size="11">${esc(layer)}</text>`);
    }
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/**
 * Writes <outDir>/norms.svg from the 'norms' events of <outDir>/metrics.jsonl
 * (every run of the folder, resumed ones included); returns its path.
 */
export function writeNormsPlot(outDir: string): string {
  const file = path.join(outDir, 'metrics.jsonl');
  const points = readMetrics(file).filter((r) => r.event === 'norms') as unknown as NormsPoint[];
  if (!points.length) throw new Error(`${file}: no norm records: the model has no attention projection the monitor recognizes (q_proj/k_proj/v_proj, query/key/value, c_attn, qkv)`);
  // A resumed run repeats the steps after its checkpoint: the last record of a step wins.
  const byStep = new Map(points.map((p) => [p.step, p]));
  const out = path.join(outDir, 'norms.svg');
  writeFileAtomic(out, normsSvg([...byStep.values()]));
  return out;
}
