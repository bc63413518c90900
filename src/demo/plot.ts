// The live training chart: loss per step (line, left axis) and validation
// accuracy per epoch (dots, right axis, 0–100%), as SVG markup. Small enough
// to write by hand; redrawn after every step.

export interface PlotData {
  /** [step, loss] */
  loss: [number, number][];
  /** [step, accuracy in 0..1] */
  accuracy: [number, number][];
  totalSteps: number;
}

const W = 640, H = 230, L = 48, R = 48, T = 26, B = 30;

const fmt = (x: number) => (x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2));

export function plotSvg(d: PlotData): string {
  const xMax = Math.max(1, d.totalSteps, ...d.loss.map(([s]) => s));
  const yMax = Math.max(1e-6, ...d.loss.map(([, l]) => (Number.isFinite(l) ? l : 0))) * 1.1;
  const x = (s: number) => L + ((W - L - R) * s) / xMax;
  const yL = (l: number) => T + (H - T - B) * (1 - l / yMax);
  const yA = (a: number) => T + (H - T - B) * (1 - a);
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const grid = ticks
    .map((f) => `<line x1="${L}" x2="${W - R}" y1="${yA(f)}" y2="${yA(f)}" class="grid"/>` +
      `<text x="${L - 6}" y="${yA(f) + 4}" class="axis loss" text-anchor="end">${fmt(yMax * f)}</text>` +
      `<text x="${W - R + 6}" y="${yA(f) + 4}" class="axis acc">${Math.round(100 * f)}%</text>`)
    .join('');
  const xTicks = Array.from(new Set([0, Math.round(xMax / 2), xMax]))
    .map((s) => `<text x="${x(s)}" y="${H - B + 16}" class="axis" text-anchor="middle">${s}</text>`)
    .join('');
  const line = d.loss.length ? `<polyline class="loss-line" points="${d.loss.map(([s, l]) => `${x(s).toFixed(1)},${yL(Math.min(l, yMax)).toFixed(1)}`).join(' ')}"/>` : '';
  const dots = d.accuracy.map(([s, a]) => `<circle class="acc-dot" cx="${x(s).toFixed(1)}" cy="${yA(a).toFixed(1)}" r="4"><title>validation accuracy ${(100 * a).toFixed(1)}% at step ${s}</title></circle>`).join('');
  return (
    `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="training loss and validation accuracy" xmlns="http://www.w3.org/2000/svg">` +
    grid + xTicks +
    `<text x="${(L + W - R) / 2}" y="${H - 2}" class="axis" text-anchor="middle">step</text>` +
    `<text x="${L}" y="12" class="axis loss" text-anchor="end">loss</text><text x="${W - 2}" y="12" class="axis acc" text-anchor="end">validation accuracy</text>` +
    line + dots + '</svg>'
  );
}
