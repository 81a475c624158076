// How much of each sweep a run covers. `npm test` runs a sample of every sweep, enough to catch a broken
// feature in minutes; `npm run test:full` (CLLM_TEST_FULL=1) runs them whole, before a release or after a
// change to the kernels, the decoder or the sampler.
export const full = process.env.CLLM_TEST_FULL === '1';

/** The whole sweep's value under test:full, the sample's otherwise. */
export function scaled<T>(whole: T, sample: T): T {
  return full ? whole : sample;
}

/** Every k-th item, so that a sample still spans the whole list; all of them under test:full. */
export function spread<T>(items: readonly T[], k: number): T[] {
  return full ? [...items] : items.filter((_, i) => i % k === 0);
}
