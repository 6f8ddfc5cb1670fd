/**
 * Child processes for tests that need real ones (the CLI, a scheduler to
 * kill -9, an app): they run the compiled packages (dist/), so the tests
 * check that the build exists first and say how to make it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
/** `bin/dispatch.cjs` of @dispatch/scheduler. */
export const DISPATCH_BIN = join(ROOT, 'packages/scheduler/bin/dispatch.cjs');

/** Throws a clear error if the packages these tests start as processes are not built. */
export function requireBuilt(): void {
  const needed = ['packages/core/dist/esm/index.js', 'packages/scheduler/dist/cjs/cli/program.js', 'packages/scheduler/dist/esm/index.js'];
  const missing = needed.filter((p) => !existsSync(join(ROOT, p)));
  if (missing.length) {
    throw new Error(
      `these tests start the compiled packages as processes, and ${missing.join(', ')} is missing: run \`pnpm -r --filter './packages/*' build\` (or \`pnpm build\`) at the repository root first`,
    );
  }
}

/**
 * Overrides that remove the test runner's DISPATCH_* variables from a child's
 * environment (for `start`/`dispatchCli`, which add `process.env`).
 */
export const CLEAN_ENV: NodeJS.ProcessEnv = Object.fromEntries(
  Object.keys(process.env)
    .filter((k) => k.startsWith('DISPATCH_'))
    .map((k) => [k, undefined]),
);

/** A fresh temporary directory; removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `dispatch-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A child process whose output is kept line by line. */
export interface Proc {
  child: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  /** stdout and stderr lines in arrival order. */
  readonly all: string[];
  /** Resolves with the exit code (128 + n for a signal) once the process exited and its output ended. */
  exited: Promise<number>;
  /** Resolves with the first line (so far or to come) matching `re`; rejects after `ms` or if the process exits first. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  /** Sends a signal (ignored if it has exited). */
  kill(signal?: NodeJS.Signals): void;
  /** stdout + stderr as one text, for error messages. */
  text(): string;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/**
 * Starts a process (node by default) and follows its output.
 * @example
 * const p = start(process.execPath, [DISPATCH_BIN, 'serve', '--port', '0'], { cwd });
 */
export function start(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const all: string[] = [];
  const waiters = new Set<{ re: RegExp; resolve: (line: string) => void }>();
  const follow = (stream: NodeJS.ReadableStream, into: string[]) =>
    new Promise<void>((done) => {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        rest += chunk;
        let i = rest.indexOf('\n');
        while (i >= 0) {
          const line = rest.slice(0, i);
          rest = rest.slice(i + 1);
          into.push(line);
          all.push(line);
          for (const w of [...waiters]) {
            if (w.re.test(line)) {
              waiters.delete(w);
              w.resolve(line);
            }
          }
          i = rest.indexOf('\n');
        }
      });
      stream.on('end', () => {
        if (rest) {
          into.push(rest);
          all.push(rest);
        }
        done();
      });
    });
  const ended = Promise.all([follow(child.stdout!, stdout), follow(child.stderr!, stderr)]);
  let exitCode: number | null = null;
  const exited = new Promise<number>((resolveExit) => {
    child.once('exit', (code, signal) => {
      exitCode = code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0);
      void ended.then(() => resolveExit(exitCode as number));
    });
    child.once('error', () => {
      exitCode = 127;
      resolveExit(127);
    });
  });
  const text = () => all.join('\n');
  return {
    child,
    stdout,
    stderr,
    all,
    exited,
    text,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (exitCode === null) child.kill(signal);
    },
    waitFor(re: RegExp, ms = 30_000) {
      const seen = all.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolveLine, reject) => {
        const w = { re, resolve: resolveLine };
        waiters.add(w);
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no line matching ${re} within ${ms} ms; output so far:\n${text()}`));
        }, ms);
        w.resolve = (line) => {
          clearTimeout(timer);
          resolveLine(line);
        };
        void exited.then((code) => {
          if (!waiters.has(w)) return;
          waiters.delete(w);
          clearTimeout(timer);
          reject(new Error(`the process exited (${code}) before printing a line matching ${re}; output:\n${text()}`));
        });
      });
    },
  };
}

/** Runs the dispatch CLI to completion. */
export async function dispatchCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = start(process.execPath, [DISPATCH_BIN, ...args], options);
  const code = await p.exited;
  return { code, stdout: p.stdout.join('\n'), stderr: p.stderr.join('\n') };
}

/** Kills every process given (SIGKILL) and waits for them to exit. */
export async function killAll(procs: Array<Proc | undefined>): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      if (!p) return;
      p.kill('SIGKILL');
      await p.exited;
    }),
  );
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

/** Resolves once `predicate` holds, checking every 20 ms; rejects after `ms` naming `what`. */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
