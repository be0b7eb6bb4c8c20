import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/harness/global-setup.ts"],
    // two test files at a time: most of them wait on brokers, sockets and emulated boards, so a
    // 2-core machine runs `make test` in about 8 minutes instead of 13 (every wait is bounded and
    // no test asserts on elapsed time, so a busy machine slows them, it does not fail them)
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
