// The HTML report of `cllm bench --report`: one self-contained file (inline CSS and SVG, no scripts, no
// network) with the summary, charts against block size, the accepted-tokens distribution, and one
// prompt's Jacobi trajectory drawn as in the CLLM paper's figure.
import { basename } from 'node:path';
import type { BenchRow, BenchSummaryRow } from '../tasks/bench.js';
import type { StepTrace } from '../engine/generate.js';
import type { ModelInfo } from '../engine/model.js';
import { describeSampling, type SamplingOptions } from '../engine/sampling.js';
import { axes, esc, type Frame } from './svg.js';

export interface BenchResult {
  schema: string;
  date: string;
  command: string;
  interrupted: boolean;
  model: ModelInfo;
  machine: { cpu: string; cores: number; backend: string; gpu: string | null };
  llamaCppCommit: string;
  settings: { prompts: string; promptCount: number; decoders: string[]; blocks: number[]; maxTokens: number; repeat: number; threads: number; contextSize: number; sampling: SamplingOptions; exactKernels: boolean };
  results: BenchRow[];
  summary: BenchSummaryRow[];
  bestBlock: number | null;
  trajectory: { prompt: number; block: number; steps: (StepTrace & { fedText: string[]; predictedText: string[] })[] } | null;
}

const W = 420;
const H = 260;
const M = { left: 52, right: 16, top: 16, bottom: 44 };
const FRAME: Frame = { width: W, height: H, margin: M };

interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  points: { x: number; y: number; low?: number; high?: number }[];
}

/**
 * A line chart over block sizes (log2 x axis), with optional min-max whiskers. The scale follows the
 * medians: a whisker past the top (one stalled run on a busy machine) is cut, with an arrow.
 */
function lineChart(title: string, yLabel: string, series: Series[], baseline?: number): string {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  if (xs.length === 0) return '';
  const yMax = Math.max(...ys, baseline ?? 0) * 1.3 || 1;
  const lx = (x: number) => Math.log2(x);
  const [x0, x1] = [lx(xs[0]), lx(xs[xs.length - 1])];
  const px = (x: number) => M.left + (x1 === x0 ? 0.5 : (lx(x) - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - (y / yMax) * (H - M.top - M.bottom);
  const yTicks = Array.from({ length: 5 }, (_, i) => (yMax / 5) * (i + 1));
  const parts = [
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`,
    axes(FRAME, { ticks: xs.map((x) => ({ at: px(x), label: String(x) })), title: 'block size' }, { ticks: yTicks.map((t) => ({ at: py(t), label: t.toFixed(t < 10 ? 2 : 0) })), title: yLabel }),
  ];
  if (baseline !== undefined) parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(baseline)}" y2="${py(baseline)}" class="baseline"/>`);
  for (const s of series) {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${pts.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}"/>`);
    for (const p of pts) {
      if (p.low !== undefined && p.high !== undefined) {
        parts.push(`<line x1="${px(p.x)}" x2="${px(p.x)}" y1="${py(p.low)}" y2="${py(Math.min(p.high, yMax))}" stroke="${s.color}" stroke-width="1.5"><title>min ${p.low.toFixed(2)}, max ${p.high.toFixed(2)}</title></line>`);
        if (p.high > yMax) parts.push(`<path d="M${px(p.x) - 4},${py(yMax) + 6} L${px(p.x)},${py(yMax)} L${px(p.x) + 4},${py(yMax) + 6}" fill="none" stroke="${s.color}"><title>max ${p.high.toFixed(2)}</title></path>`);
      }
      parts.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="4" fill="${s.color}"><title>${esc(s.label)} block ${p.x}: ${p.y.toFixed(3)}</title></circle>`);
    }
  }
  parts.push('</svg>');
  return `<figure><figcaption>${esc(title)}</figcaption>${parts.join('')}</figure>`;
}

/** Bars of the share of steps that accepted k tokens, one small chart per block size. */
function acceptedCharts(summary: BenchSummaryRow[]): string {
  return summary
    .filter((s) => s.decoder === 'jacobi')
    .map((s) => {
      const counts = Array.from({ length: s.block }, (_, k) => s.acceptedPerStep[k + 1] ?? 0);
      const total = counts.reduce((a, b) => a + b, 0) || 1;
      const w = 260;
      const h = 150;
      const barW = (w - 40) / Math.max(counts.length, 1);
      const max = Math.max(...counts, 1) / total;
      const bars = counts
        .map((n, i) => {
          const share = n / total;
          const bh = (share / max) * (h - 40);
          return `<rect x="${30 + i * barW}" y="${h - 24 - bh}" width="${Math.max(1, barW - 1)}" height="${bh}" class="bar"><title>${i + 1} accepted: ${(share * 100).toFixed(1)}% of steps</title></rect>`;
        })
        .join('');
      const labels = [1, counts.length].map((k) => `<text x="${30 + (k - 0.5) * barW}" y="${h - 10}" text-anchor="middle">${k}</text>`).join('');
      return `<figure class="small"><figcaption>block ${s.block}: accepted tokens per step</figcaption><svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}"><line x1="28" y1="${h - 24}" x2="${w}" y2="${h - 24}" class="axis"/>${bars}${labels}<text x="${w - 2}" y="12" text-anchor="end">max ${(max * 100).toFixed(0)}% of steps</text></svg></figure>`;
    })
    .join('');
}

/** Each step's block: the converged (accepted) tokens highlighted, the still-changing guesses dimmed. */
function trajectoryTable(trajectory: NonNullable<BenchResult['trajectory']>): string {
  const rows = trajectory.steps.slice(0, 60).map((s) => {
    const cells = s.predictedText.map((text, j) => `<span class="${j < s.accepted ? 'fixed' : 'moving'}">${esc(text.replace(/\n/g, '⏎')) || '&nbsp;'}</span>`);
    return `<tr><td>${s.step}</td><td>${s.position}</td><td>${s.accepted}</td><td class="block">${cells.join('')}</td></tr>`;
  });
  return `<table class="trajectory"><thead><tr><th>step</th><th>position</th><th>accepted</th><th>predicted block (green: reached its fixed point)</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function bestNote(r: BenchResult): string {
  const best = r.summary.find((s) => s.decoder === 'jacobi' && s.block === r.bestBlock);
  if (!best) return '';
  const slower = best.speedupVsAr !== null && best.speedupVsAr < 1 ? ` Autoregressive decoding is faster here: that block runs at ${best.speedupVsAr.toFixed(2)}x.` : '';
  return `<p>Best Jacobi block on this machine: <strong>${best.block}</strong>.${slower}</p>`;
}

export function benchReport(r: BenchResult): string {
  const jacobi = r.summary.filter((s) => s.decoder === 'jacobi');
  const speedup = jacobi.filter((s) => s.speedupVsAr !== null).map((s) => ({ x: s.block, y: s.speedupVsAr!, low: s.speedupMin!, high: s.speedupMax! }));
  const perStep = jacobi.map((s) => ({ x: s.block, y: s.tokensPerStep }));
  const perStepClean = jacobi.flatMap((s) => (s.tokensPerStepClean === null ? [] : [{ x: s.block, y: s.tokensPerStepClean }]));
  const summaryRows = r.summary
    .map(
      (s) =>
        `<tr${s.decoder === 'jacobi' && s.block === r.bestBlock ? ' class="best"' : ''}><td>${s.decoder}</td><td>${s.block}</td><td>${s.tokensPerStep.toFixed(2)}</td><td>${s.tokensPerStepClean === null ? '-' : s.tokensPerStepClean.toFixed(2)}</td><td>${s.degenerateRuns}/${s.runs}</td><td>${s.tokensPerSecond.toFixed(1)}</td><td>${s.speedupVsAr === null ? '-' : `${s.speedupVsAr.toFixed(2)}x (${s.speedupMin!.toFixed(2)}–${s.speedupMax!.toFixed(2)})`}</td><td>${s.identical}</td></tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cllm bench: ${esc(basename(r.model.path))}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #1d232a; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #5b6570; } code { background: #f1f3f5; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; margin: 8px 0; } th, td { padding: 4px 10px; border-bottom: 1px solid #e3e6e9; text-align: right; }
th:first-child, td:first-child { text-align: left; } tr.best td { background: #e6f6ea; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; } figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg text { font-size: 11px; fill: #444; } .axis { stroke: #333; } .grid { stroke: #eceff1; } .baseline { stroke: #c0392b; stroke-dasharray: 4 3; }
.bar { fill: #2f7ed8; } figure.small svg text { font-size: 10px; }
table.trajectory td.block { text-align: left; font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }
.fixed { background: #2e9e4f; color: #fff; border-radius: 2px; margin-right: 1px; } .moving { background: #f6e7a8; color: #6b5800; border-radius: 2px; margin-right: 1px; }
</style></head><body>
<h1>cllm bench: ${esc(basename(r.model.path))}</h1>
<p class="meta">${esc(r.model.name)} · ${esc(r.model.architecture)}, ${(r.model.parameterCount / 1e6).toFixed(2)}M parameters, ${esc(r.model.quantization)} · ${esc(r.date)} · ${esc(r.machine.cpu)}, ${r.machine.cores} cores, ${esc(r.machine.backend)}${r.machine.gpu ? `, ${esc(r.machine.gpu)}` : ''} · llama.cpp <code>${esc(r.llamaCppCommit.slice(0, 10))}</code><br>
<code>${esc(r.command)}</code><br>
${r.settings.promptCount} prompts (${esc(r.settings.prompts)}) × ${r.settings.repeat} repeats, ${r.settings.maxTokens} tokens each, ${r.settings.threads} threads, ${esc(describeSampling(r.settings.sampling))}${r.interrupted ? ' · <strong>interrupted: partial results</strong>' : ''}</p>
<h2>Summary</h2>
<table><thead><tr><th>decoder</th><th>block</th><th>tokens/step</th><th>tokens/step, outputs that do not loop</th><th>looping outputs</th><th>tok/s (median)</th><th>speedup vs AR (min–max)</th><th>identical to AR</th></tr></thead><tbody>${summaryRows}</tbody></table>
<p class="meta">A looping output is one where more than half of the tokens complete a 16-token span seen earlier in it: a loop is easy to guess ahead, so tokens per step on loops overstate the gain on real text.</p>
${bestNote(r)}
<h2>Against block size</h2>
<div class="charts">
${lineChart('Speedup vs autoregressive (median, min–max)', 'speedup (x)', [{ label: 'jacobi', color: '#2e9e4f', points: speedup }], 1)}
${lineChart('Tokens per step (mean; dashed: outputs that do not loop)', 'tokens / step', [{ label: 'jacobi', color: '#2f7ed8', points: perStep }, { label: 'jacobi, outputs that do not loop', color: '#2f7ed8', dashed: true, points: perStepClean }], 1)}
</div>
<h2>Accepted tokens per step</h2>
<div class="charts">${acceptedCharts(r.summary)}</div>
${r.trajectory ? `<h2>Jacobi trajectory: prompt ${r.trajectory.prompt}, block ${r.trajectory.block}</h2>${trajectoryTable(r.trajectory)}` : ''}
</body></html>
`;
}
