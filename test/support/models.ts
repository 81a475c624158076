// Paths of the models the tests use. stories260K comes from ../shared (CI has it); tests that need it are
// skipped, saying so, where it is missing. The random fixture is written by test/support/global-setup.ts.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { FIXTURE_PATH } from '../../scripts/make-fixture.js';

export const fixtureModel = FIXTURE_PATH;
export const storiesModel = process.env.CLLM_TEST_MODEL ?? resolve(import.meta.dirname, '../../../shared/models/stories260K.gguf');
export const haveStories = existsSync(storiesModel);
if (!haveStories) console.warn(`stories260K not found at ${storiesModel}: its tests are skipped`);
export const pycoderModel = resolve(import.meta.dirname, '../../../shared/models/pycoder-16m.gguf');
export const havePycoder = existsSync(pycoderModel);
export const codePrompts = resolve(import.meta.dirname, '../../../shared/data/code-prompts-heldout.jsonl');
