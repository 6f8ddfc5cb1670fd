/**
 * The import-boundary check of `pnpm lint` (scripts/check-boundaries.mjs):
 * it passes on the repository, and fails, naming the file, the line and the
 * rule, on a tree with a deliberate bad import across each boundary.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const script = join(repo, 'scripts', 'check-boundaries.mjs');
let tree: string | undefined;

afterEach(() => {
  if (tree) rmSync(tree, { recursive: true, force: true });
  tree = undefined;
});

function check(root: string) {
  const r = spawnSync(process.execPath, [script, '--root', root], { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A small repository tree: the given files (path → content), plus a clean engine and core. */
function makeTree(files: Record<string, string>): string {
  tree = mkdtempSync(join(tmpdir(), 'dispatch-boundaries-'));
  const all: Record<string, string> = {
    'packages/core/src/engine/engine.ts': "import { AsyncLocalStorage } from 'node:async_hooks';\nimport { Journal } from './journal.js';\n",
    'packages/core/src/engine/journal.ts': 'export class Journal {}\n',
    'packages/core/src/api/call.ts': "import { Journal } from '../engine/journal.js';\n",
    ...files,
  };
  for (const [path, content] of Object.entries(all)) {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    writeFileSync(join(tree, path), content);
  }
  return tree;
}

describe('check-boundaries', () => {
  it('passes on this repository', () => {
    const { code, out } = check(repo);
    expect(out).toMatch(/no import crosses a boundary/);
    expect(code).toBe(0);
  });

  it('passes on a clean tree', () => {
    expect(check(makeTree({})).code).toBe(0);
  });

  const bad: Array<[string, string, string, RegExp]> = [
    ['an engine doing I/O', 'packages/core/src/engine/timer.ts', "import http from 'node:http';", /engine\/timer\.ts:1: import 'node:http' breaks "the engine does no I\/O"/],
    ['an engine importing the API', 'packages/core/src/engine/run.ts', "\n\nimport { DurableCall } from '../api/call.js';", /engine\/run\.ts:3: import '\.\.\/api\/call\.js' breaks "the engine does not depend on the API/],
    ['the core importing the scheduler', 'packages/core/src/client/x.ts', "export { Scheduler } from '@dispatch/scheduler';", /breaks "the core imports no adapter, no scheduler and no web framework"/],
    ['the core importing a framework', 'packages/core/src/endpoint/x.ts', "const express = await import('express');", /import 'express' breaks "the core imports no adapter/],
    ['the scheduler importing the core root', 'packages/scheduler/src/run/x.ts', "import { Dispatch } from '@dispatch/core';", /breaks "the scheduler imports the core only through @dispatch\/core\/protocol"/],
    ['the scheduler importing the engine by path', 'packages/scheduler/src/run/y.ts', "import { Engine } from '../../../core/src/engine/engine.js';", /leaves packages\/scheduler\/src\//],
    ['an adapter importing another', 'packages/express/src/x.ts', "import { dispatchPlugin } from '@dispatch/fastify';", /breaks "adapters do not import each other/],
    ['an adapter importing the scheduler', 'packages/fastify/src/x.ts', "import { Scheduler } from '@dispatch/scheduler';", /an adapter only converts requests/],
    ['src importing test support', 'packages/scheduler/src/x.ts', "import { startPgCluster } from '../test/support/pg-cluster.js';", /leaves packages\/scheduler\/src\//],
    ['an example importing the scheduler', 'examples/shop/app.mjs', "import { Scheduler } from '@dispatch/scheduler';", /breaks "examples import only @dispatch\/core, the adapters and their frameworks"/],
    ['an example importing the protocol entry', 'examples/shop/src/main.ts', "import { proto } from '@dispatch/core/protocol';", /examples import only/],
  ];
  for (const [what, file, source, message] of bad) {
    it(`fails on ${what}`, () => {
      const { code, out } = check(makeTree({ [file]: `${source}\n` }));
      expect(out).toMatch(message);
      expect(out).toMatch(/^\d+ imports? breaks? the architecture's boundaries/);
      expect(code).toBe(1);
    });
  }

  it('allows what the rules allow: NestJS on both adapters, the scheduler on the protocol entry, tests anywhere', () => {
    const root = makeTree({
      'packages/nestjs/src/endpoint.ts': "import { dispatchMiddleware } from '@dispatch/express';\nimport { dispatchPlugin } from '@dispatch/fastify';\n",
      'packages/scheduler/src/run/loop.ts': "import { proto } from '@dispatch/core/protocol';\n// import { Dispatch } from '@dispatch/core';\n",
      'packages/scheduler/src/run/loop.test.ts': "import { Dispatch } from '@dispatch/core';\n",
      'examples/shop/app.mjs': "import * as dispatch from '@dispatch/core';\nimport { dispatchMiddleware } from '@dispatch/express';\nimport express from 'express';\n",
    });
    const { code, out } = check(root);
    expect(out).toMatch(/no import crosses a boundary/);
    expect(code).toBe(0);
  });
});
