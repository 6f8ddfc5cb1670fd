#!/usr/bin/env node
// Builds the package in the current directory to ESM (dist/esm) and CommonJS
// (dist/cjs), each with type declarations, from tsconfig.build.json.
// Usage (from a package's "build" script): node ../../scripts/build-package.mjs
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
rmSync('dist', { recursive: true, force: true });
const run = (args) => execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', ...args], { stdio: 'inherit' });
run(['--outDir', 'dist/esm']);
run([
  '--outDir', 'dist/cjs',
  '--module', 'commonjs',
  '--moduleResolution', 'node10',
  '--verbatimModuleSyntax', 'false',
  '--declarationMap', 'false',
]);
mkdirSync('dist/cjs', { recursive: true });
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n');
