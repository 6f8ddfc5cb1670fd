#!/usr/bin/env node
// Checks the import boundaries of ARCHITECTURE.md (and docs/architecture.md):
// - the engine does no I/O and does not reach into the API, the endpoint or
//   the client;
// - the core imports no adapter, no scheduler and no web framework;
// - the scheduler imports the core only through `@dispatch/core/protocol`;
// - adapters do not import each other (NestJS may use the Express and
//   Fastify adapters) nor the scheduler; only @dispatch/testing may import it;
// - a package's src/ does not import files outside its src/ (tests, other
//   packages) by relative path;
// - examples import only @dispatch/core, the adapters and their frameworks.
//
// Usage: node scripts/check-boundaries.mjs [--root DIR]
// Prints one line per violation (file:line, the import, the rule) and exits 1
// when there is any. Part of `pnpm lint`.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const rootArg = process.argv.indexOf('--root');
const root = resolve(rootArg > 0 ? process.argv[rootArg + 1] : join(dirname(new URL(import.meta.url).pathname), '..'));

/** Node built-ins that do I/O (the engine may use async_hooks, crypto, util...). */
const IO_MODULES = ['http', 'https', 'http2', 'net', 'tls', 'dgram', 'dns', 'fs', 'fs/promises', 'child_process', 'cluster', 'worker_threads', 'readline', 'repl'];
const isIo = (spec) => IO_MODULES.includes(spec.replace(/^node:/, ''));
const ADAPTERS = ['@dispatch/express', '@dispatch/fastify', '@dispatch/nestjs'];
const FRAMEWORKS = /^(express|fastify|fastify-plugin|@nestjs\/.*|@fastify\/.*)$/;
const pkgOf = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);

/**
 * The rules: `applies(file)` picks the files (paths relative to the root, with
 * "/"), `check(spec, file)` returns why an import is refused, or undefined.
 */
const RULES = [
  {
    name: 'the engine does no I/O',
    applies: (f) => f.startsWith('packages/core/src/engine/'),
    check: (spec) => (isIo(spec) ? `${spec} does I/O; pass what the engine needs in (EngineOptions)` : undefined),
  },
  {
    name: 'the engine does not depend on the API, the endpoint or the client',
    applies: (f) => f.startsWith('packages/core/src/engine/'),
    check: (spec, f, target) =>
      target && /^packages\/core\/src\/(api|endpoint|client)\//.test(target)
        ? `${spec} is ${target.split('/')[3]}/ code; the engine is below it (move the shared contract into engine/)`
        : undefined,
  },
  {
    name: 'the core imports no adapter, no scheduler and no web framework',
    applies: (f) => f.startsWith('packages/core/src/'),
    check: (spec) =>
      spec.startsWith('@dispatch/') || FRAMEWORKS.test(pkgOf(spec)) ? `${spec} is above the core; the core knows no framework and no scheduler` : undefined,
  },
  {
    name: 'the scheduler imports the core only through @dispatch/core/protocol',
    applies: (f) => f.startsWith('packages/scheduler/src/'),
    check: (spec) => {
      if (spec === '@dispatch/core/protocol') return undefined;
      if (spec.startsWith('@dispatch/')) return `${spec}: the scheduler talks to apps through the protocol only; import from @dispatch/core/protocol`;
      if (FRAMEWORKS.test(pkgOf(spec))) return `${spec} is a web framework; the scheduler serves node:http`;
      return undefined;
    },
  },
  {
    name: 'adapters do not import each other (NestJS may use Express and Fastify) nor the scheduler',
    applies: (f) => /^packages\/(express|fastify|nestjs)\/src\//.test(f),
    check: (spec, f) => {
      const own = `@dispatch/${f.split('/')[1]}`;
      const pkg = pkgOf(spec);
      if (pkg === '@dispatch/scheduler' || pkg === '@dispatch/testing') return `${spec}: an adapter only converts requests; it never needs the scheduler`;
      if (ADAPTERS.includes(pkg) && pkg !== own && own !== '@dispatch/nestjs') return `${spec}: adapters do not import each other`;
      return undefined;
    },
  },
  {
    name: 'only @dispatch/testing imports the scheduler',
    applies: (f) => /^packages\/[^/]+\/src\//.test(f) && !/^packages\/(scheduler|testing)\//.test(f),
    check: (spec) => (pkgOf(spec) === '@dispatch/scheduler' ? `${spec}: apps and libraries never need the scheduler at run time` : undefined),
  },
  {
    name: "a package's src/ imports nothing outside its src/ by relative path",
    applies: (f) => /^packages\/[^/]+\/src\//.test(f),
    check: (spec, f, target) => {
      if (!target) return undefined;
      const src = f.split('/').slice(0, 3).join('/');
      return target.startsWith(`${src}/`) ? undefined : `${spec} leaves ${src}/ (published code cannot reach tests or other packages' files)`;
    },
  },
  {
    name: 'examples import only @dispatch/core, the adapters and their frameworks',
    applies: (f) => f.startsWith('examples/') && !f.includes('/test/'),
    check: (spec) => {
      if (spec.startsWith('.') || spec.startsWith('node:')) return undefined;
      if (spec.startsWith('@dispatch/')) return spec === '@dispatch/core' || ADAPTERS.includes(spec) ? undefined : `${spec}: an app needs @dispatch/core and an adapter only`;
      return undefined;
    },
  },
];

const SOURCE = /\.(ts|tsx|mts|cts|js|mjs|cjs)$/;
function walk(dir, out) {
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'dist' || entry.startsWith('.')) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (SOURCE.test(entry) && !/\.d\.[cm]?ts$/.test(entry)) out.push(path);
  }
  return out;
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]|(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g;
/** The import specifiers of a source text with their line numbers (comments are blanked first). */
function importsOf(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/[^\n]*/g, '$1');
  const found = [];
  for (const m of code.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    found.push({ spec, line: code.slice(0, m.index).split('\n').length + (m[0].startsWith('\n') ? 1 : 0) });
  }
  return found;
}

/** The repository-relative file a relative specifier points to (".js" written for ".ts" included). */
function targetOf(spec, file) {
  if (!spec.startsWith('.')) return undefined;
  const abs = resolve(dirname(join(root, file)), spec);
  const candidates = [abs, abs.replace(/\.js$/, '.ts'), abs.replace(/\.mjs$/, '.mts'), `${abs}.ts`, join(abs, 'index.ts')];
  const hit = candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? abs;
  return relative(root, hit).split(sep).join('/');
}

const files = ['packages', 'examples'].filter((d) => existsSync(join(root, d))).flatMap((d) => walk(join(root, d), []));
const violations = [];
for (const abs of files) {
  const file = relative(root, abs).split(sep).join('/');
  if (/\.test\.[cm]?[jt]s$/.test(file)) continue; // tests may cross boundaries to observe them
  const rules = RULES.filter((r) => r.applies(file));
  if (rules.length === 0) continue;
  for (const { spec, line } of importsOf(readFileSync(abs, 'utf8'))) {
    const target = targetOf(spec, file);
    for (const rule of rules) {
      const why = rule.check(spec, file, target);
      if (why) violations.push(`${file}:${line}: import '${spec}' breaks "${rule.name}": ${why}`);
    }
  }
}
if (violations.length > 0) {
  console.error(`${violations.length} import${violations.length > 1 ? 's break' : ' breaks'} the architecture's boundaries (docs/architecture.md):`);
  for (const v of violations) console.error(`  ${v}`);
  process.exit(1);
}
console.log(`boundaries: ${files.length} files checked, no import crosses a boundary`);
