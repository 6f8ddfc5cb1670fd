// Tests run against the TypeScript sources: each workspace package's entries,
// as its package.json `exports` map names them (`@dispatch/core`,
// `@dispatch/core/protocol`, ...), are aliased to the matching file under
// src/, so `pnpm test` needs no build for unit tests. (Examples and CLIs
// started as child processes use the built dist/.)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = fileURLToPath(new URL('./packages/', import.meta.url));
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const alias = readdirSync(packages)
  .filter((dir) => existsSync(`${packages}${dir}/package.json`))
  .flatMap((dir) => {
    const pkg = JSON.parse(readFileSync(`${packages}${dir}/package.json`, 'utf8')) as {
      name: string;
      exports?: Record<string, string | { import?: { default?: string } }>;
    };
    return Object.entries(pkg.exports ?? {}).flatMap(([subpath, target]) => {
      const file = typeof target === 'string' ? target : target.import?.default;
      const source = file?.match(/^\.\/dist\/esm\/(.+)\.js$/)?.[1];
      if (!source) return [];
      return [{ find: new RegExp(`^${escapeRegExp(pkg.name + subpath.slice(1))}$`), replacement: `${packages}${dir}/src/${source}.ts` }];
    });
  });

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
