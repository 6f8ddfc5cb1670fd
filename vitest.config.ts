// Tests run against the TypeScript sources: each workspace package name is
// aliased to its src/ entry, so `pnpm test` needs no build for unit tests.
// (Examples and CLIs started as child processes use the built dist/.)
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = fileURLToPath(new URL('./packages/', import.meta.url));
const alias = readdirSync(packages)
  .filter((dir) => existsSync(`${packages}${dir}/src/index.ts`))
  .flatMap((dir) => [
    ...readdirSync(`${packages}${dir}/src`)
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'index.ts')
      .map((f) => ({
        find: new RegExp(`^@dispatch/${dir}/${f.slice(0, -3)}$`),
        replacement: `${packages}${dir}/src/${f}`,
      })),
    { find: new RegExp(`^@dispatch/${dir}$`), replacement: `${packages}${dir}/src/index.ts` },
  ]);

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
