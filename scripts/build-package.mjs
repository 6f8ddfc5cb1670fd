#!/usr/bin/env node
// Builds the package in the current directory to ESM (dist/esm) and CommonJS
// (dist/cjs), each with type declarations, from tsconfig.build.json.
// Usage (from a package's "build" script): node ../../scripts/build-package.mjs
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
rmSync('dist', { recursive: true, force: true });
const run = (args) => execFileSync(process.execPath, [tsc, ...args], { stdio: 'inherit' });
run(['-p', 'tsconfig.build.json', '--outDir', 'dist/esm']);

// The CommonJS pass resolves modules as `require` does (node10). A dependency
// that declares its entries only in an `exports` map (no top-level main or
// types) is invisible to that resolution, so it is mapped to the
// declarations beside its `require` entry.
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const requireHere = createRequire(resolve('package.json'));
const paths = {};
for (const dep of Object.keys(pkg.dependencies ?? {})) {
  let entry;
  try {
    entry = requireHere.resolve(dep);
  } catch {
    continue; // no `require` entry: leave it to node10 resolution
  }
  let dir = dirname(entry);
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (manifest.main || manifest.types || manifest.typings) continue;
  const types = entry.replace(/\.c?js$/, (ext) => (ext === '.cjs' ? '.d.cts' : '.d.ts'));
  if (existsSync(types)) paths[dep] = [types];
}
const cjsConfig = 'tsconfig.cjs.tmp.json';
writeFileSync(cjsConfig, JSON.stringify({ extends: './tsconfig.build.json', compilerOptions: { paths } }));
try {
  run([
    '-p', cjsConfig,
    '--outDir', 'dist/cjs',
    '--module', 'commonjs',
    '--moduleResolution', 'node10',
    '--verbatimModuleSyntax', 'false',
    '--declarationMap', 'false',
  ]);
} finally {
  rmSync(cjsConfig, { force: true });
}
mkdirSync('dist/cjs', { recursive: true });
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n');
rewriteCommonJsDefaultImports('dist/cjs');

// The sources default-import CommonJS packages (`import Long from 'long'`,
// `import pg from 'pg'`, `import http from 'node:http'`), which the build
// compiles with esModuleInterop. Their declarations keep that form, which an
// app compiled as CommonJS without esModuleInterop cannot read (TS1259,
// TS1192). In the CommonJS declarations, such an import is written the way
// CommonJS declares it: `import Long = require('long')`. A package whose
// CommonJS typings do have a default export keeps the default import.
function rewriteCommonJsDefaultImports(dir) {
  const ts = require('typescript');
  const options = { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 };
  const defaultImport = /^import (type )?([A-Za-z_$][\w$]*) from '([^'.][^']*)';$/gm;
  const hasDefaultExport = (file, spec) => {
    const resolved = ts.resolveModuleName(spec, resolve(file), options, ts.sys).resolvedModule;
    if (!resolved) return false; // an ambient module (node:http): declared with named exports
    return /^\s*export\s+default\b|\bas default\b/m.test(readFileSync(resolved.resolvedFileName, 'utf8'));
  };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
    const file = join(entry.parentPath ?? entry.path, entry.name);
    const text = readFileSync(file, 'utf8');
    const out = text.replace(defaultImport, (line, type, name, spec) =>
      hasDefaultExport(file, spec) ? line : `import ${type ?? ''}${name} = require('${spec}');`,
    );
    if (out !== text) writeFileSync(file, out);
  }
}
