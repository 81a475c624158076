// 300 mutated copies of stories260K (types, dimensions, hyperparameters, vocabulary, chat templates,
// alignment, truncation, flipped header bytes) through `cllm info` and a short `cllm run`: each must end with
// its output or one clean line, never a signal, a hang, a stack trace or a crash caught by the guard.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mutate, tryMutant, writeMutant } from './gguf-mutate.js';
import { haveStories, storiesModel } from './models.js';

const MUTANTS = 300;
const SEED = 20261127;

describe.skipIf(!haveStories)('fuzzing cllm with mutated models', () => {
  it(`survives ${MUTANTS} mutants of stories260K`, async () => {
    const original = readFileSync(storiesModel);
    const dir = mkdtempSync(join(tmpdir(), 'cllm-fuzz-'));
    const failures: string[] = [];
    const outcomes: Record<string, number> = {};
    let next = 0;
    const worker = async () => {
      while (next < MUTANTS) {
        const index = next++;
        const mutant = mutate(original, SEED, index);
        const file = join(dir, `mutant-${index}.gguf`);
        writeMutant(file, mutant);
        const { outcome, stderr } = await tryMutant(file);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        if (outcome !== 'ok' && outcome !== 'clean error') failures.push(`mutant ${index} (${mutant.description}): ${outcome}: ${stderr.trim().slice(0, 300)}`);
        rmSync(file);
      }
    };
    await Promise.all([worker(), worker()]);
    rmSync(dir, { recursive: true, force: true });
    console.log(`fuzz: ${JSON.stringify(outcomes)}`);
    expect(failures).toEqual([]);
    // The mutants reach past the checks too: some still load and generate.
    expect(outcomes.ok).toBeGreaterThan(10);
  }, 600_000);
});
