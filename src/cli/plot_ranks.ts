// `lorakit plot-ranks <run>`: rank per module over training as an SVG (src/tasks/plot_ranks.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { rankSvg, readRankSeries } from '../tasks/plot_ranks.ts';

export function registerPlotRanks(program: Command): void {
  program
    .command('plot-ranks')
    .description("Draw each module's rank over training (from a run's metrics.jsonl) as an SVG")
    .argument('<run>', "a 'lorakit train' output folder (or its metrics.jsonl)")
    .option('--out <file.svg>', 'where to write the chart (default <run>/ranks.svg)')
    .option('--title <text>', 'chart title')
    .action((run: string, o) => {
      const series = readRankSeries(run);
      const out = o.out ?? path.join(fs.statSync(run).isDirectory() ? run : path.dirname(run), 'ranks.svg');
      fs.writeFileSync(out, rankSvg(series, o.title ?? `rank per module — ${run}`));
      const last = series.map((s) => `${s.module} ${s.ranks.at(-1)}`).join(', ');
      console.log(`wrote ${out} (${series.length} module${series.length > 1 ? 's' : ''}, ${series[0].steps.length} steps; final ranks: ${last})`);
    });
}
