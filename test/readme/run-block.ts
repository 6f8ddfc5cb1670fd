/**
 * Runs TypeScript written for the README as a user would: transpiled to an
 * ES module (type annotations stripped, nothing else changed) and started
 * with plain node on the built packages, under the real `dispatch run`.
 * @module
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { DISPATCH_BIN, dispatchCli, freePort, type Proc, start, tempDir, until } from '../e2e/helpers/processes.js';

/**
 * Where transpiled programs go: under test/node_modules, so that they import
 * `@dispatch/core`, `zod`... as the tests' own files do, and stay out of git
 * and of the linter.
 */
const OUT = fileURLToPath(new URL('../node_modules/.cache/dispatch-readme/', import.meta.url));

/**
 * Transpiles `code` (TypeScript) to `<name>.mjs` and answers its path; the
 * caller removes it with {@link removeRunnable}.
 * @example
 * const file = writeRunnable(block.code, `readme-${block.line}`);
 */
export function writeRunnable(code: string, name: string): string {
  const { outputText } = ts.transpileModule(code, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, experimentalDecorators: true, emitDecoratorMetadata: true },
    fileName: `${name}.ts`,
  });
  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, `${name}-${process.pid}.mjs`);
  writeFileSync(file, outputText);
  return file;
}

/** Removes a file written by {@link writeRunnable}. */
export function removeRunnable(file: string): void {
  rmSync(file, { force: true });
}

/** The environment without DISPATCH_* variables of the machine running the tests. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DISPATCH_')) env[k] = v;
  return env;
}

/** Counts of calls per state, as `dispatch ls --json` answers them. */
export type StateCounts = Record<'pending' | 'running' | 'suspended' | 'succeeded' | 'failed' | 'cancelled', number>;

/**
 * Runs `node <file>` under `dispatch run` (embedded scheduler, SQLite in a
 * temporary directory), waits until it has dispatched calls and every call
 * has finished, stops it with SIGTERM, and answers the counts, the exit code
 * and everything printed.
 * @example
 * const r = await runUnderDispatch(file);
 * expect(r.counts.failed).toBe(0);
 */
export async function runUnderDispatch(file: string, ms = 60_000): Promise<{ counts: StateCounts; code: number; output: string }> {
  const tmp = tempDir('readme-run');
  const env = cleanEnv();
  let proc: Proc | undefined;
  try {
    // A free endpoint address: 127.0.0.1:8000, dispatch run's default, is the packaging test's.
    const endpointAddr = `127.0.0.1:${await freePort()}`;
    proc = start(process.execPath, [DISPATCH_BIN, 'run', '--port', '0', '--endpoint-addr', endpointAddr, '--', process.execPath, file], { cwd: tmp.dir, env });
    const p = proc;
    await p.waitFor(/scheduler http:\/\/127\.0\.0\.1:\d+/, ms);
    let counts: StateCounts | undefined;
    const ls = async () => {
      const r = await dispatchCli(['ls', '--json', '--limit', '1'], { cwd: tmp.dir, env });
      if (r.code !== 0) throw new Error(`dispatch ls failed (${r.code}): ${r.stderr}\n${p.text()}`);
      counts = (JSON.parse(r.stdout) as { counts: StateCounts }).counts;
      return counts;
    };
    await until(
      async () => {
        const c = await ls();
        return c.succeeded + c.failed + c.cancelled > 0 && c.pending + c.running + c.suspended === 0;
      },
      'the program to dispatch calls and every call to finish',
      ms,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nlast counts: ${JSON.stringify(counts)}\noutput:\n${p.text()}`);
    });
    p.kill('SIGTERM');
    const code = await p.exited;
    return { counts: counts!, code, output: p.text() };
  } finally {
    if (proc) {
      proc.kill('SIGKILL');
      await proc.exited;
    }
    tmp.remove();
  }
}
