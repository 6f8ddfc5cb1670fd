/**
 * The packages as a newcomer meets them (issue 13's "Must show"): every
 * package packed from the working tree and installed with npm into a fresh
 * project outside the workspace; a strict ESM app and a strict CommonJS app
 * importing every package typecheck without skipLibCheck or
 * esModuleInterop; the Express app of its README, with `app.listen(8000)`,
 * runs under the packed `dispatch run` and completes calls, the CLI guiding
 * the way; and a fresh copy of the repository installs without warnings and
 * packs a package by building it first.
 *
 * This is the one test file that uses port 8000 (the SDK's default endpoint
 * address, which `dispatch run` uses): its tests run one after the other,
 * and every other test passes `--endpoint-addr`. It needs the registry
 * (npm install) and builds better-sqlite3 from source: a few minutes.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, requireBuilt } from '../e2e/helpers/processes.js';

const exec = promisify(execFile);
const PACKAGES = ['core', 'express', 'fastify', 'nestjs', 'scheduler', 'testing'] as const;
const PNPM = `pnpm@${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { packageManager: string }).packageManager.split('@')[1]}`;
/** The versions the workspace tests with, for the frameworks and tools the fresh project installs. */
const THIRD_PARTY = [
  'express@5.3.0',
  '@types/express@5.0.6',
  'fastify@5.11.3',
  '@nestjs/common@11.2.10',
  '@nestjs/core@11.2.10',
  'reflect-metadata@0.2.2',
  'rxjs@7.8.2',
  'typescript@5.9.3',
  '@types/node@20.19.43',
];
/**
 * The environment of a person's shell: without the DISPATCH_* variables of
 * the machine running the tests, nor the npm_* ones pnpm sets for the
 * scripts it runs (`pnpm check`), which npm would warn about.
 */
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DISPATCH_') && !/^npm_/i.test(k)));

let work = '';
let project = '';
const tarballs = new Map<string, { file: string; files: string[] }>();

function run(command: string, args: string[], cwd: string, timeout = 10 * 60_000) {
  return exec(command, args, { cwd, env: cleanEnv, timeout, maxBuffer: 64 * 1024 * 1024 }).catch((err: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  });
}

beforeAll(async () => {
  requireBuilt();
  work = mkdtempSync(join(tmpdir(), 'dispatch-packaging-'));
  const packed = join(work, 'tarballs');
  mkdirSync(packed);
  // The working tree's packages as built by `pnpm build` (their prepack, which builds, is shown on a fresh copy below).
  for (const name of PACKAGES) {
    const { stdout } = await run('npx', ['-y', PNPM, 'pack', '--config.ignore-scripts=true', '--pack-destination', packed, '--json'], join(ROOT, 'packages', name));
    const report = JSON.parse(stdout) as { filename: string; files: Array<{ path: string }> };
    tarballs.set(name, { file: report.filename, files: report.files.map((f) => f.path).sort() });
  }
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  writeFileSync(
    join(ROOT, 'test-artifacts', 'tarballs.txt'),
    [...tarballs].map(([name, t]) => `@dispatch/${name} (${t.files.length} files)\n${t.files.map((f) => `  ${f}`).join('\n')}`).join('\n\n'),
  );

  project = join(work, 'app');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'newcomer-app', private: true, type: 'module' }, null, 2)}\n`);
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...[...tarballs.values()].map((t) => t.file), ...THIRD_PARTY], project, 15 * 60_000);
}, 20 * 60_000);

// Timeouts here are liveness guards sized for a loaded machine (two cores under the whole suite: npm,
// tsc and the CLI take minutes there), not speed checks.
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
}, 5 * 60_000);

describe('the packed packages', () => {
  it('hold dist, a README and the license, and a package.json without workspace scripts: no tests, no sources', () => {
    const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    expect(license).toMatch(/^\s+Apache License\n\s+Version 2\.0, January 2004/);
    for (const [name, { file, files }] of tarballs) {
      expect(files, name).toContain('README.md');
      expect(files, name).toContain('LICENSE');
      expect(files, name).toContain('package.json');
      expect(files.filter((f) => !/^(dist\/|README\.md$|LICENSE$|package\.json$|bin\/dispatch\.cjs$|in-process\.mjs$|proto\/.+\.proto$)/.test(f)), name).toEqual([]);
      expect(files.filter((f) => /(^|\/)(test|tests|__tests__)\/|\.test\.|\.spec\./.test(f)), name).toEqual([]);
      expect(files.some((f) => f.startsWith('dist/esm/') && f.endsWith('.d.ts')) && files.some((f) => f.startsWith('dist/cjs/')), name).toBe(true);
      expect(readFileSync(join(ROOT, 'packages', name, 'LICENSE'), 'utf8'), name).toBe(license);

      const manifest = JSON.parse(readFileSync(join(project, 'node_modules', '@dispatch', name, 'package.json'), 'utf8')) as Record<string, unknown>;
      expect(manifest.scripts, name).toBeUndefined();
      expect(manifest.devDependencies, name).toBeUndefined();
      expect(JSON.stringify(manifest), name).not.toMatch(/workspace:|\.\.\/\.\.\//);
      expect(manifest, name).toMatchObject({ license: 'Apache-2.0', repository: { type: 'git', directory: `packages/${name}` } });
      expect(manifest.homepage, name).toMatch(/^https:\/\//);
      expect((manifest.keywords as string[]).length, name).toBeGreaterThan(2);
      expect(file).toMatch(/\.tgz$/);
    }
    // The NestJS module takes the adapters as optional peers: an app on Express installs no Fastify.
    const nest = JSON.parse(readFileSync(join(project, 'node_modules/@dispatch/nestjs/package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    expect(Object.keys(nest.dependencies ?? {})).toEqual(['@dispatch/core']);
    expect(nest.peerDependenciesMeta).toEqual({ '@dispatch/express': { optional: true }, '@dispatch/fastify': { optional: true } });
    // The scheduler's public types name pg's and better-sqlite3's: their typings come with it.
    const scheduler = JSON.parse(readFileSync(join(project, 'node_modules/@dispatch/scheduler/package.json'), 'utf8')) as Record<string, Record<string, string>>;
    expect(Object.keys(scheduler.dependencies ?? {})).toEqual(expect.arrayContaining(['@types/pg', '@types/better-sqlite3']));
  });

  it('typecheck in a strict ESM app and a strict CommonJS app, without skipLibCheck or esModuleInterop', async () => {
    const imports = `
import * as dispatch from '@dispatch/core';
import { Dispatch, DispatchClient, type DispatchFunction, type InputSchema, Status, TemporaryError } from '@dispatch/core';
import { nodeListener } from '@dispatch/core/node';
import { dispatchInstance, proto, RUN_PATH } from '@dispatch/core/protocol';
import { dispatchMiddleware } from '@dispatch/express';
import { dispatchPlugin } from '@dispatch/fastify';
import { DispatchModule, DispatchService } from '@dispatch/nestjs';
import { PgStore, Scheduler, SCHEDULER_DEFAULTS, SqliteStore } from '@dispatch/scheduler';
import { startTestScheduler, type TestRun } from '@dispatch/testing';

const schema: InputSchema<[number, number]> = { safeParse: (data: unknown) => ({ success: true, data: data as [number, number] }) };
const add: DispatchFunction<[number, number], number> = dispatch.function({ name: 'add', input: schema }, (a: number, b: number) => a + b);
const app = new Dispatch({ endpointUrl: 'http://127.0.0.1:8000' });
const retried: TemporaryError = new TemporaryError('later');
const client = new DispatchClient({ apiUrl: 'http://127.0.0.1:4450', apiKey: 'key' });
const body: Uint8Array = proto.RunRequest.encode({ function: 'add' });
const run: Promise<TestRun<number>> = startTestScheduler(app).then((t) => t.run(add, 1, 2));
const started: Promise<Scheduler> = Scheduler.start({ db: ':memory:', port: 0, maxAttempts: SCHEDULER_DEFAULTS.port });
const stores: unknown[] = [SqliteStore, PgStore, DispatchModule, DispatchService, dispatchPlugin, nodeListener, client, body, retried, run, started];
export const used = [dispatchMiddleware(dispatch), dispatchInstance(app, 'x'), RUN_PATH, Status.OK, stores];
`;
    const strict = { strict: true, noUncheckedIndexedAccess: true, target: 'es2022', noEmit: true, types: ['node'], skipLibCheck: false };
    writeFileSync(join(project, 'esm.mts'), imports);
    writeFileSync(join(project, 'cjs.cts'), imports);
    writeFileSync(join(project, 'frameworks.cts'), "import express = require('express');\nimport { fastify } from 'fastify';\nimport { Module } from '@nestjs/common';\nimport { NestFactory } from '@nestjs/core';\nexport const used = [express, fastify, Module, NestFactory];\n");
    const config = (files: string[], compilerOptions: object) => ({ compilerOptions: { ...strict, ...compilerOptions }, files });
    writeFileSync(join(project, 'tsconfig.esm.json'), JSON.stringify(config(['esm.mts'], { module: 'nodenext', moduleResolution: 'nodenext' })));
    // CommonJS as `module: commonjs` reads it: the top-level `types`, node10 resolution, no esModuleInterop.
    const cjs = { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: false, allowSyntheticDefaultImports: false };
    writeFileSync(join(project, 'tsconfig.cjs.json'), JSON.stringify(config(['cjs.cts'], cjs)));
    writeFileSync(join(project, 'tsconfig.frameworks.json'), JSON.stringify(config(['frameworks.cts'], cjs)));

    const tsc = async (configFile: string) => {
      const result = await exec(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', configFile, '--pretty', 'false'], { cwd: project }).then(
        () => '',
        (err: { stdout?: string }) => err.stdout ?? String(err),
      );
      return result.split('\n').filter((line) => /error TS\d+/.test(line));
    };
    expect(await tsc('tsconfig.esm.json')).toEqual([]);
    // Without esModuleInterop, Fastify's own typings fail (pino default-imports thread-stream): whatever the
    // frameworks bring on their own is theirs; importing every @dispatch package adds nothing to it.
    const frameworks = new Set(await tsc('tsconfig.frameworks.json'));
    const errors = await tsc('tsconfig.cjs.json');
    expect(errors.filter((e) => !frameworks.has(e))).toEqual([]);
    expect(errors.filter((e) => /@dispatch|cjs\.cts/.test(e))).toEqual([]);
  }, 10 * 60_000);
});

/** A running process, its output, and a way to wait for a line of it. */
function start(command: string, args: string[], cwd: string) {
  const child: ChildProcess = spawn(command, args, { cwd, env: { ...cleanEnv, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const waiters: Array<() => void> = [];
  const append = (chunk: Buffer) => {
    text += chunk.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    text: () => text,
    async waitFor(pattern: RegExp, ms = 3 * 60_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!pattern.test(text)) {
        if (Date.now() > deadline) throw new Error(`no line matching ${pattern} within ${ms} ms; output:\n${text}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), exited, new Promise((r) => setTimeout(r, 1000))]);
        if (child.exitCode !== null && !pattern.test(text)) throw new Error(`exited with ${child.exitCode} before ${pattern}; output:\n${text}`);
      }
    },
  };
}

describe("the Express app of its README, under the packed `dispatch run`, on port 8000", () => {
  it('completes calls; dispatch call finds the app and corrects a typo; ls --db reads the database after the run', async () => {
    // The README's app, as written, compiled by the project's TypeScript.
    const readme = readFileSync(join(ROOT, 'packages/express/README.md'), 'utf8');
    const source = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(source).toContain('app.listen(8000)');
    writeFileSync(join(project, 'app.ts'), source!);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', target: 'es2022', types: ['node'] }, files: ['app.ts'] }),
    );
    await run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);

    const dispatchBin = join(project, 'node_modules/.bin/dispatch');
    const cli = (...args: string[]) => run(dispatchBin, args, project).catch((err: Error) => ({ stdout: '', stderr: err.message }));
    const app = start(dispatchBin, ['run', '--plain', '--', process.execPath, 'app.js'], project);
    try {
      await app.waitFor(/app endpoint http:\/\/127\.0\.0\.1:8000/);
      // A call through the app's own route: dispatched, run by the scheduler on the endpoint at 8000.
      let response: Response | undefined;
      for (let i = 0; i < 200 && !response; i++) {
        response = await fetch('http://127.0.0.1:8000/buy', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: 'user_123' }),
        }).catch(() => new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)));
      }
      expect(response?.status).toBe(202);
      const { dispatchId } = (await response!.json()) as { dispatchId: string };
      await app.waitFor(new RegExp(`done checkout ${dispatchId} after 1 attempt → "order for user_123"`));

      // From the command line, without --endpoint.
      const call = await cli('call', 'checkout', '"u1"', '--wait');
      expect(call.stdout.trim()).toBe('"order for u1"');
      const typo = await cli('call', 'chekout', '"u1"');
      expect(typo.stderr).toMatch(/function "chekout" does not exist on this endpoint: did you mean checkout\?/);
    } finally {
      app.child.kill('SIGTERM');
      await app.exited;
    }
    expect(app.text()).toMatch(/node exited with/);
    const ls = await cli('ls', '--db', '.dispatch/dispatch.db');
    expect(ls.stdout).toMatch(/^DISPATCH ID\s+FUNCTION\s+STATE\s+STATUS\s+ATTEMPTS\s+RESUMES\s+CREATED/);
    expect(ls.stdout).toMatch(/\n\n2 succeeded · 1 failed\n$/);
  }, 10 * 60_000);

  it('says so when port 8000 is taken, and what to do', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(8000, '127.0.0.1', resolve));
    try {
      const other = mkdtempSync(join(work, 'taken-'));
      const r = await run(join(project, 'node_modules/.bin/dispatch'), ['run', '--', process.execPath, '-e', '0'], other).then(
        () => ({ code: 0, stderr: '' }),
        (err: Error) => ({ code: 1, stderr: err.message }),
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /dispatch: the endpoint address 127\.0\.0\.1:8000 is in use \(the SDK's default endpoint address, which app\.listen\(8000\) serves\): stop what listens there .*or pass --endpoint-addr 127\.0\.0\.1:PORT/,
      );
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  }, 5 * 60_000);
});

describe('a fresh copy of the repository', () => {
  it("installs with the README's command without a warning, and packs a package by building it first", async () => {
    const copy = join(work, 'clone');
    const { stdout: listed } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT);
    for (const file of listed.split('\0').filter(Boolean)) {
      if (!existsSync(join(ROOT, file))) continue; // deleted in the working tree
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      cpSync(join(ROOT, file), join(copy, file));
    }
    const readme = readFileSync(join(copy, 'README.md'), 'utf8');
    const install = /^# Run every test.*\n(.+?) && /m.exec(readme)?.[1];
    expect(install).toBe(`npx -y ${PNPM} install`);
    const installed = await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-c', `${install} 2>&1`], { cwd: copy, env: cleanEnv });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${install} exited with ${code}:\n${out}`))));
    });
    expect(installed).toMatch(/Done in/);
    expect(installed).not.toMatch(/warn|Ignored build scripts|approve-builds/i);

    // No dist anywhere: `pnpm pack` runs prepack, which builds the package and what it depends on.
    expect(existsSync(join(copy, 'packages/core/dist'))).toBe(false);
    const out = join(work, 'clone-tarballs');
    await run('npx', ['-y', PNPM, 'pack', '--pack-destination', out], join(copy, 'packages/express'));
    const [tarball] = readdirSync(out);
    const { stdout: files } = await run('tar', ['-tzf', join(out, tarball!)], out);
    expect(files.split('\n')).toEqual(expect.arrayContaining(['package/dist/esm/index.js', 'package/dist/cjs/index.d.ts', 'package/README.md', 'package/LICENSE']));
  }, 10 * 60_000);
});
