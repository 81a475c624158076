import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The native tests are CPU-bound on a 2-core machine; running files side by side only slows them down.
    fileParallelism: false,
  },
});
