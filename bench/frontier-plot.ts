// The pure half of bench/frontier.ts: each variant of a model as one point, held-out loss against tokens per
// step on outputs that do not loop, drawn as an SVG scatter plot and listed as a markdown table.
import { axes, esc, type Frame } from '../src/cli/svg.js';

export interface FrontierPoint {
  name: string;
  natsPerToken: number;
  tokensPerStep: number;
  tokensPerStepClean: number | null;
}

/** The tolerances a base point draws: a variant is worth having below +6% loss and past 1.4x tokens per step. */
const LOSS_LIMIT = 1.06;
const SPEED_GOAL = 1.4;
const BLOCK = 16;

/** A point from `cllm eval --json` and `cllm bench --json` output; throws a one-line Error on the wrong files. */
export function frontierPoint(name: string, evalJson: unknown, benchJson: unknown): FrontierPoint {
  const natsPerToken = (evalJson as { natsPerToken?: unknown } | null)?.natsPerToken;
  if (typeof natsPerToken !== 'number') throw new Error(`${name}: the eval file has no natsPerToken: give cllm eval --json output`);
  const summary = (benchJson as { summary?: unknown } | null)?.summary;
  const row = Array.isArray(summary) ? (summary as { decoder: string; block: number; tokensPerStep: number; tokensPerStepClean?: number | null }[]).find((s) => s.decoder === 'jacobi' && s.block === BLOCK) : undefined;
  if (!row) throw new Error(`${name}: the bench file has no Jacobi block-${BLOCK} row: run cllm bench --json with --decoders jacobi --block ${BLOCK}`);
  // Bench files from before tokensPerStepClean existed lack it: they plot their raw tokens per step.
  return { name, natsPerToken, tokensPerStep: row.tokensPerStep, tokensPerStepClean: row.tokensPerStepClean ?? null };
}

/** What the plot's x axis shows: tokens per step on outputs that do not loop, or all of them when every output loops. */
export const speed = (p: FrontierPoint) => p.tokensPerStepClean ?? p.tokensPerStep;

/** About `count` round tick values (1, 2 or 5 times a power of ten) within [lo, hi]. */
function niceTicks(lo: number, hi: number, count = 5): { value: number; label: string }[] {
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].find((m) => m * magnitude >= raw)! * magnitude;
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  const ticks = [];
  for (let k = Math.ceil(lo / step); k * step <= hi + step * 1e-9; k++) ticks.push({ value: k * step, label: (k * step).toFixed(decimals) });
  return ticks;
}

/** [lo, hi] padded by a tenth of their span on each side (half a unit around a single value). */
function padded(values: number[]): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const pad = hi > lo ? (hi - lo) / 10 : Math.abs(lo) / 10 || 0.5;
  return [lo - pad, hi + pad];
}

const FRAME: Frame = { width: 640, height: 420, margin: { left: 64, right: 24, top: 24, bottom: 48 } };

export function frontierSvg(points: FrontierPoint[], base?: FrontierPoint): string {
  const { width: W, height: H, margin: M } = FRAME;
  const [x0, x1] = padded([...points.map(speed), ...(base ? [speed(base) * SPEED_GOAL] : [])]);
  const [y0, y1] = padded([...points.map((p) => p.natsPerToken), ...(base ? [base.natsPerToken * LOSS_LIMIT] : [])]);
  const px = (x: number) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="held-out loss against tokens per step">`,
    '<style>text { font: 12px system-ui, sans-serif; fill: #444; } .axis { stroke: #333; } .grid { stroke: #eceff1; } .limit { stroke: #c0392b; stroke-dasharray: 5 4; } .limit-label { fill: #c0392b; }</style>',
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    axes(
      FRAME,
      { ticks: niceTicks(x0, x1).map((t) => ({ at: px(t.value), label: t.label })), title: `tokens per step, non-degenerate outputs, block ${BLOCK}` },
      { ticks: niceTicks(y0, y1).map((t) => ({ at: py(t.value), label: t.label })), title: 'held-out loss (nats/token)' },
    ),
  ];
  if (base) {
    const y = py(base.natsPerToken * LOSS_LIMIT);
    const x = px(speed(base) * SPEED_GOAL);
    parts.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" class="limit"/><text x="${W - M.right - 4}" y="${y - 5}" text-anchor="end" class="limit-label">+6%</text>`,
      `<line x1="${x}" x2="${x}" y1="${M.top}" y2="${H - M.bottom}" class="limit"/><text x="${x + 4}" y="${M.top + 12}" class="limit-label">1.4x</text>`,
    );
  }
  for (const p of points) {
    const [x, y] = [px(speed(p)), py(p.natsPerToken)];
    parts.push(
      `<circle cx="${x}" cy="${y}" r="5" fill="${p === base ? '#333' : '#2f7ed8'}"><title>${esc(p.name)}: ${p.natsPerToken.toFixed(4)} nats/token, ${speed(p).toFixed(2)} tokens/step</title></circle>`,
      // Near the right edge a label would run out of the picture: it goes to the point's left.
      x > W - M.right - 120 ? `<text x="${x - 8}" y="${y - 8}" text-anchor="end">${esc(p.name)}</text>` : `<text x="${x + 8}" y="${y - 8}">${esc(p.name)}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

export function frontierTable(points: FrontierPoint[], base?: FrontierPoint): string {
  const signed = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(1); // -0 rounds to +0.0, not +-0.0
  const lossVsBase = (p: FrontierPoint) => (base ? `${signed(Number((100 * (p.natsPerToken / base.natsPerToken - 1)).toFixed(1)))}%` : '-');
  const speedVsBase = (p: FrontierPoint) => (base ? `${(speed(p) / speed(base)).toFixed(2)}x` : '-');
  return [
    `| variant | nats/token | vs base | tokens/step | tokens/step, non-degenerate | vs base |`,
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...points.map((p) => `| ${p.name} | ${p.natsPerToken.toFixed(4)} | ${lossVsBase(p)} | ${p.tokensPerStep.toFixed(2)} | ${p.tokensPerStepClean === null ? '-' : p.tokensPerStepClean.toFixed(2)} | ${speedVsBase(p)} |`),
  ].join('\n') + '\n';
}
