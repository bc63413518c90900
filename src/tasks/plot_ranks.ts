// `lorakit plot-ranks runs/x`: the rank of every adapted module over training,
// from the per-step figures a rank-allocation method writes into metrics.jsonl
// (`adapter.rank`: a number per module, or one number shared by every layer as
// DyLoRA's drawn b), as an SVG line chart (drawn here, no plotting dependency).
import fs from 'node:fs';
import path from 'node:path';
import { readMetrics, type MetricsRecord } from '../train/metrics.ts';

export interface RankSeries {
  module: string;
  steps: number[];
  ranks: number[];
}

/** Rank over steps per module from metrics records (the last run after a resume wins for a repeated step). */
export function rankSeries(records: MetricsRecord[]): RankSeries[] {
  const byModule = new Map<string, Map<number, number>>();
  for (const r of records) {
    if (r.event !== 'step' || typeof r.step !== 'number') continue;
    const rank = (r.adapter as { rank?: unknown } | undefined)?.rank;
    const add = (m: string, v: unknown) => {
      if (typeof v !== 'number') return;
      if (!byModule.has(m)) byModule.set(m, new Map());
      byModule.get(m)!.set(r.step as number, v);
    };
    if (typeof rank === 'number') add('all layers', rank);
    else if (rank && typeof rank === 'object') for (const [m, v] of Object.entries(rank)) add(m, v);
  }
  return [...byModule].map(([module, pts]) => {
    const steps = [...pts.keys()].sort((a, b) => a - b);
    return { module, steps, ranks: steps.map((s) => pts.get(s)!) };
  });
}

/** Reads <run>/metrics.jsonl (or a metrics file). */
export function readRankSeries(run: string): RankSeries[] {
  const file = fs.existsSync(run) && fs.statSync(run).isDirectory() ? path.join(run, 'metrics.jsonl') : run;
  if (!fs.existsSync(file)) throw new Error(`${file} not found: plot-ranks reads the metrics.jsonl of a 'lorakit train' run`);
  const series = rankSeries(readMetrics(file));
  if (!series.length) throw new Error(`${file} has no per-step ranks: train with a rank-allocation method (sora, codyra, adalora, increlora, dylora, diffora, bayesian-lora)`);
  return series;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS = ['#4878a8', '#e07b39', '#5a9e4b', '#c44e52', '#8172b2', '#937860', '#da8bc3', '#8c8c8c', '#ccb974', '#64b5cd'];

/** A step-wise line per module: x = step, y = rank. */
export function rankSvg(series: RankSeries[], title: string): string {
  const W = 720, H = 360, left = 50, right = 260, top = 36, bottom = 40;
  const pw = W - left - right, ph = H - top - bottom;
  const maxStep = Math.max(1, ...series.flatMap((s) => s.steps));
  const maxRank = Math.max(1, ...series.flatMap((s) => s.ranks));
  const x = (s: number) => left + (pw * s) / maxStep, y = (r: number) => top + ph * (1 - r / maxRank);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left + pw / 2}" y="20" text-anchor="middle" font-size="13">${esc(title)}</text>`,
  ];
  const tick = Math.max(1, Math.ceil(maxRank / 8));
  for (let r = 0; r <= maxRank; r += tick) {
    parts.push(`<line x1="${left}" x2="${left + pw}" y1="${y(r).toFixed(1)}" y2="${y(r).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${left - 6}" y="${(y(r) + 4).toFixed(1)}" text-anchor="end">${r}</text>`);
  }
  parts.push(`<line x1="${left}" x2="${left + pw}" y1="${top + ph}" y2="${top + ph}" stroke="#333"/>`, `<line x1="${left}" x2="${left}" y1="${top}" y2="${top + ph}" stroke="#333"/>`);
  parts.push(`<text x="${left + pw / 2}" y="${H - 8}" text-anchor="middle">step (of ${maxStep})</text>`, `<text x="14" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${top + ph / 2})">rank</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts: string[] = [];
    s.steps.forEach((st, k) => {
      if (k > 0) pts.push(`${x(st).toFixed(1)},${y(s.ranks[k - 1]).toFixed(1)}`); // step-wise: the rank holds until it changes
      pts.push(`${x(st).toFixed(1)},${y(s.ranks[k]).toFixed(1)}`);
    });
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${pts.join(' ')}"/>`);
    parts.push(`<line x1="${left + pw + 12}" x2="${left + pw + 28}" y1="${top + 8 + 15 * i}" y2="${top + 8 + 15 * i}" stroke="${c}" stroke-width="2"/>`);
    parts.push(`<text x="${left + pw + 32}" y="${top + 12 + 15 * i}">${esc(s.module)} (${s.ranks.at(-1)})</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
