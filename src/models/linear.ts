// The frozen projection of a linear site, with no adapter: what a model runs
// when nothing wraps its LinearFn.
import * as op from '../graph/ops.ts';
import type { LinearFn } from './types.ts';

export const plainLinear: LinearFn = (site, x, W, b) => (site.layout === 'in_out' ? op.linear(x, W, b) : op.linearT(x, W, b));
