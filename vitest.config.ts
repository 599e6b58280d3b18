import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One process: each creates a Dawn device, and the software adapter is slow to start.
    pool: 'forks',
    fileParallelism: false,
  },
});
