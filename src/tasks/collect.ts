// Jacobi trajectories for consistency training, as the CLLM paper collects them: each block of n tokens
// starts from tokens drawn at random from the prompt and is re-scored in one pass per iteration until it
// stops changing. Every state on the way is recorded; the fixed point is appended and the next block follows.
import { seededRandom } from '../engine/drafters/fill.js';
import type { Evaluator } from '../engine/evaluator.js';
import { generate } from '../engine/generate.js';
import { Sequence } from '../engine/sequence.js';

/** One block's record, with the field names of the reference implementation (hao-ai-lab/Consistency_LLM). */
export interface TrajectoryRecord {
  data_id: string;
  jacobian_itr_id: string;
  /** Length of the original prompt. */
  prompt_ids_len: number;
  /** The prompt plus the fixed points of the earlier blocks: the text this block was decoded after. */
  prompt_ids: number[];
  /** Every state of the n-token block, from the random start to the fixed point (the last one). */
  answer_trajectory_ids: number[][];
  /** prompt_ids followed by this block's fixed point. */
  teacher_output_ids: number[];
  /** The prompt followed by every fixed point of this prompt: the whole greedy output. */
  complete_teacher_output_ids: number[];
}

export interface CollectOptions {
  block: number;
  /** Blocks are decoded until they hold at least this many tokens (ceil(maxTokens / block) blocks), or EOS. */
  maxTokens: number;
  /** Seed of the random start of every block. */
  seed: number;
  /** Decode the same prompt autoregressively and compare it with the fixed points. */
  verify: boolean;
  signal?: AbortSignal;
}

export interface PromptTrajectories {
  records: TrajectoryRecord[];
  /** Forward passes over all blocks: the number of states recorded. */
  iterations: number;
  /** Index in the output of the first token where the fixed points differ from greedy decoding (verify only). */
  divergence?: number;
  stopReason: 'eos' | 'length' | 'context';
}

/** Thrown when the signal aborts a prompt; nothing of that prompt is returned. */
export class CollectInterrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

/** Collects the trajectories of one prompt (its tokens, BOS included) in the evaluator's only sequence. */
export async function collectPrompt(evaluator: Evaluator, prompt: readonly number[], dataId: number, options: CollectOptions): Promise<PromptTrajectories> {
  const n = options.block;
  // Each prompt gets its own stream of draws, so that a resumed run collects what an uninterrupted one would.
  const random = seededRandom(options.seed * 1_000_003 + dataId);
  // Ctrl-C may stop a pass half way: the prompt is then given up as a whole.
  const stoppable = <T>(pass: Promise<T>) => pass.catch((err: unknown) => {
    throw options.signal?.aborted ? new CollectInterrupted() : err;
  });
  const sequence = new Sequence(evaluator);
  sequence.reset();
  await stoppable(sequence.append(prompt));
  const blocks: { promptIds: number[]; states: number[][] }[] = [];
  let iterations = 0;
  let stopReason: PromptTrajectories['stopReason'] = 'length';

  for (let generated = 0; generated < options.maxTokens; generated += n) {
    if (sequence.position + n > evaluator.size) {
      stopReason = 'context';
      break;
    }
    let state = Array.from({ length: n }, () => prompt[Math.floor(random() * prompt.length)]);
    const states = [state];
    for (;;) {
      if (options.signal?.aborted) throw new CollectInterrupted();
      // Position j of the block takes the model's token after position j - 1: the pending token, then the state.
      const { chosen } = await stoppable(evaluator.decode([sequence.pending, ...state.slice(0, n - 1)], sequence.position));
      iterations++;
      const next = Array.from(chosen);
      // At the fixed point the pass just made cached exactly the tokens to keep, so nothing is rolled back.
      if (next.every((t, i) => t === state[i])) break;
      evaluator.rollback(sequence.position);
      state = next;
      states.push(state);
    }
    blocks.push({ promptIds: [...sequence.tokens], states });
    sequence.commit(state);
    if (state.some((t) => evaluator.isEndOfGeneration(t))) {
      stopReason = 'eos';
      break;
    }
  }

  const complete = [...sequence.tokens];
  let divergence: number | undefined;
  if (options.verify) {
    const output = complete.slice(prompt.length);
    sequence.reset();
    await stoppable(sequence.append(prompt));
    const greedy = await generate(sequence, { decoder: 'ar', maxTokens: output.length, signal: options.signal });
    if (greedy.stopReason === 'interrupted') throw new CollectInterrupted();
    // Greedy decoding stops at EOS while a block runs past it; compare up to and including the first EOS.
    const eos = output.findIndex((t) => evaluator.isEndOfGeneration(t));
    const compared = eos >= 0 ? eos + 1 : output.length;
    const first = output.slice(0, compared).findIndex((t, i) => t !== greedy.tokens[i]);
    if (first >= 0) divergence = first;
  }

  const records = blocks.map(({ promptIds, states }, k) => ({
    data_id: `data_${dataId}`,
    jacobian_itr_id: `itr_${k}`,
    prompt_ids_len: prompt.length,
    prompt_ids: promptIds,
    answer_trajectory_ids: states,
    teacher_output_ids: [...promptIds, ...states[states.length - 1]],
    complete_teacher_output_ids: complete,
  }));
  return { records, iterations, divergence, stopReason };
}

/**
 * The reference's cleaning rule: a teacher output in which one token repeats `run` times in a row is a
 * degenerate generation. Like the reference, the scan stops at an end-of-generation token after the first.
 */
export function isRepetitive(tokens: readonly number[], isEndOfGeneration: (token: number) => boolean, run = 10): boolean {
  let count = 1;
  for (let i = 1; i < tokens.length; i++) {
    if (isEndOfGeneration(tokens[i])) break;
    count = tokens[i] === tokens[i - 1] ? count + 1 : 1;
    if (count >= run) return true;
  }
  return false;
}
