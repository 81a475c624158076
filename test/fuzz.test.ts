// Mutated copies of stories260K (types, dimensions, hyperparameters, vocabulary, chat templates, alignment,
// truncation, flipped header bytes; 60 in npm test, 300 under test:full) through `cllm info` and a short
// `cllm run`: each must end with its output or one clean line, never a signal, a hang, a stack trace or a
// crash caught by the guard.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fuzz } from './support/gguf-mutate.js';
import { haveStories, storiesModel } from './support/models.js';
import { scaled } from './support/scale.js';

const MUTANTS = scaled(300, 60);
const SEED = 20261127;

describe.skipIf(!haveStories)('fuzzing cllm with mutated models', () => {
  it(`survives ${MUTANTS} mutants of stories260K`, async () => {
    const { outcomes, bad } = await fuzz(readFileSync(storiesModel), SEED, MUTANTS);
    console.log(`fuzz: ${JSON.stringify(outcomes)}`);
    expect(bad).toEqual([]);
    // The mutants reach past the checks too: some still load and generate.
    expect(outcomes.ok).toBeGreaterThan(MUTANTS / 30);
  }, 600_000);
});
