// The frozen projection of a linear site, with no adapter: what a model runs
// when nothing wraps its LinearFn (in int8 when the weight was loaded so: src/quant/).
import { frozenLinear } from '../quant/frozen_linear.ts';
import type { LinearFn } from './types.ts';

export const plainLinear: LinearFn = (site, x, W, b) => frozenLinear(site.layout, x, W, b);
