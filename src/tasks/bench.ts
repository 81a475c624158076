// The measuring loop of `cllm bench`: every prompt x decoder x block size, warmed up once, then timed
// `repeat` times in interleaved rounds (AR, auto, Jacobi 4, Jacobi 8, ..., AR, ...) so that machine drift
// hits every variant alike. Each output is checked against autoregressive output with the same sampling.
import { complete, firstDivergence, type DecoderName, type Divergence, type GenerateResult, type GenerationStats, type StepTrace } from '../engine/generate.js';
import type { SamplingOptions } from '../engine/sampling.js';
import type { Sequence } from '../engine/sequence.js';
import { isDegenerate } from './repetition.js';

export interface BenchVariant {
  decoder: DecoderName;
  /** Jacobi's block; 1 for AR; 0 for auto, which sizes each pass itself. */
  block: number;
}

export interface BenchRow extends Omit<GenerationStats, 'sampling'> {
  prompt: number;
  repeat: number;
  identical: boolean;
  firstDivergence?: Divergence;
  /** The output loops (see isDegenerate): its tokens per step says little about real text. */
  degenerate: boolean;
  /** acceptedPerStep[k] counts the steps that accepted k tokens. */
  acceptedPerStep: number[];
}

export interface BenchSummaryRow {
  decoder: DecoderName;
  block: number;
  runs: number;
  tokensPerStep: number;
  /** tokensPerStep over the runs whose output is not degenerate; null when every output is. */
  tokensPerStepClean: number | null;
  degenerateRuns: number;
  /** Mean tokens scored per pass, guesses included. */
  scoredPerStep: number;
  /** Share of the generated tokens by origin: "model" (one per pass) or a draft source. */
  sources: Record<string, number>;
  /** Share of decoding time spent outside the model's forward passes: JavaScript, N-API, drafting. */
  hostShare: number;
  tokensPerSecond: number;
  /** Median over prompts and repeats of this variant's tok/s over AR's in the same prompt and repeat. */
  speedupVsAr: number | null;
  speedupMin: number | null;
  speedupMax: number | null;
  identical: string;
  acceptedPerStep: number[];
}

export interface BenchOptions {
  variants: BenchVariant[];
  maxTokens: number;
  repeat: number;
  sampling: SamplingOptions;
  signal?: AbortSignal;
  onRun?: () => void;
}

export interface BenchRun {
  rows: BenchRow[];
  interrupted: boolean;
  /** The steps of prompt 0 at the largest Jacobi block, for the report's trajectory picture. */
  trajectory: { prompt: number; block: number; steps: StepTrace[] } | null;
}

type TimedRun = Awaited<ReturnType<typeof complete>> & { accepted: number[] };

export function runsPerPrompt(options: Pick<BenchOptions, 'variants' | 'repeat'>): number {
  return 1 + options.variants.length * (1 + options.repeat); // the AR reference, warm-ups, timed runs
}

export async function runBench(sequence: Sequence, prompts: number[][], options: BenchOptions): Promise<BenchRun> {
  const rows: BenchRow[] = [];
  const jacobiBlocks = options.variants.filter((v) => v.decoder === 'jacobi').map((v) => v.block);
  const trajectoryBlock = jacobiBlocks.length ? Math.max(...jacobiBlocks) : 0;
  let trajectory: BenchRun['trajectory'] = null;

  const once = async (tokens: number[], variant: BenchVariant, extra: { margins?: boolean; onStep?: (s: StepTrace) => void } = {}): Promise<TimedRun | undefined> => {
    const accepted: number[] = [];
    sequence.reset();
    const run = await complete(sequence, tokens, {
      decoder: variant.decoder,
      block: Math.max(1, variant.block),
      maxTokens: options.maxTokens,
      sampling: options.sampling,
      signal: options.signal,
      margins: extra.margins,
      onStep: (s) => {
        accepted[s.accepted] = (accepted[s.accepted] ?? 0) + 1;
        extra.onStep?.(s);
      },
    });
    options.onRun?.();
    return run.result.stopReason === 'interrupted' ? undefined : { ...run, accepted: Array.from(accepted, (n) => n ?? 0) };
  };

  for (const [p, tokens] of prompts.entries()) {
    const reference = await once(tokens, { decoder: 'ar', block: 1 }, { margins: true });
    if (!reference) return { rows, interrupted: true, trajectory };
    for (const v of options.variants) {
      const steps: StepTrace[] = [];
      const record = p === 0 && v.decoder === 'jacobi' && v.block === trajectoryBlock;
      if (!(await once(tokens, v, { onStep: record ? (s) => steps.push(s) : undefined }))) return { rows, interrupted: true, trajectory };
      if (record) trajectory = { prompt: p, block: v.block, steps };
    }
    for (let repeat = 0; repeat < options.repeat; repeat++) {
      for (const v of options.variants) {
        const run = await once(tokens, v);
        if (!run) return { rows, interrupted: true, trajectory };
        rows.push(row(p, v, repeat, run, reference.result));
      }
    }
  }
  return { rows, interrupted: false, trajectory };
}

function row(prompt: number, v: BenchVariant, repeat: number, run: TimedRun, reference: GenerateResult): BenchRow {
  const divergence = firstDivergence(reference, run.result.tokens);
  const { sampling: _sameForEveryRun, ...stats } = run.stats;
  return {
    prompt,
    repeat,
    ...stats,
    decoder: v.decoder,
    block: v.block,
    identical: !divergence,
    ...(divergence ? { firstDivergence: divergence } : {}),
    degenerate: isDegenerate(run.result.tokens),
    acceptedPerStep: run.accepted,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The mean of the runs' own ratios, so that each prompt weighs alike however many tokens it produced. */
function meanTokensPerStep(rows: BenchRow[]): number {
  return rows.reduce((a, r) => a + r.tokensPerStep, 0) / rows.length;
}

export function summarize(rows: BenchRow[], variants: BenchVariant[]): { summary: BenchSummaryRow[]; bestBlock: number | null } {
  const arRuns = new Map(rows.filter((r) => r.decoder === 'ar').map((r) => [`${r.prompt}/${r.repeat}`, r]));
  const summary = variants.flatMap((v): BenchSummaryRow[] => {
    const mine = rows.filter((r) => r.decoder === v.decoder && r.block === v.block);
    if (mine.length === 0) return [];
    const speedups = mine.flatMap((r) => {
      const ar = arRuns.get(`${r.prompt}/${r.repeat}`);
      return ar && r.tokensPerSecond > 0 && ar.tokensPerSecond > 0 ? [r.tokensPerSecond / ar.tokensPerSecond] : [];
    });
    const accepted: number[] = [];
    for (const r of mine) r.acceptedPerStep.forEach((n, k) => (accepted[k] = (accepted[k] ?? 0) + n));
    const generated = mine.reduce((a, r) => a + r.generatedTokens, 0);
    const clean = mine.filter((r) => !r.degenerate);
    const sources: Record<string, number> = {};
    for (const r of mine) for (const [source, n] of Object.entries(r.sources)) sources[source] = (sources[source] ?? 0) + n / Math.max(1, generated);
    return [
      {
        decoder: v.decoder,
        block: v.block,
        runs: mine.length,
        tokensPerStep: meanTokensPerStep(mine),
        tokensPerStepClean: clean.length ? meanTokensPerStep(clean) : null,
        degenerateRuns: mine.length - clean.length,
        scoredPerStep: mine.reduce((a, r) => a + r.scoredPerStep, 0) / mine.length,
        sources,
        hostShare: mine.reduce((a, r) => a + (r.decodeMs > 0 ? 1 - r.forwardMs / r.decodeMs : 0), 0) / mine.length,
        tokensPerSecond: median(mine.map((r) => r.tokensPerSecond)),
        speedupVsAr: speedups.length ? median(speedups) : null,
        speedupMin: speedups.length ? Math.min(...speedups) : null,
        speedupMax: speedups.length ? Math.max(...speedups) : null,
        identical: `${mine.filter((r) => r.identical).length}/${mine.length}`,
        acceptedPerStep: Array.from(accepted, (n) => n ?? 0),
      },
    ];
  });
  const jacobi = summary.filter((s) => s.decoder === 'jacobi');
  const score = (s: BenchSummaryRow) => s.speedupVsAr ?? s.tokensPerSecond;
  const best = jacobi.reduce<BenchSummaryRow | null>((a, s) => (!a || score(s) > score(a) ? s : a), null);
  return { summary, bestBlock: best?.block ?? null };
}
