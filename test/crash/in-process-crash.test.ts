/**
 * In-process mode, kill -9 of the app's process (which holds the scheduler
 * too) while hundreds of calls are in flight, then `dispatch run
 * --in-process` again on the same SQLite file: every call completes, every
 * result is recorded exactly once, none is lost. Real processes: the CLI
 * (`dispatch run --in-process` of the built package), which runs the app
 * (`fixtures/crash-app.mjs`, unchanged: the same app code as over HTTP) with
 * the scheduler preloaded in it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DispatchClient, Status } from '@dispatch/core';
import { encodeArgs, type proto } from '@dispatch/core/protocol';
import { type CallRecord, SqliteStore } from '@dispatch/scheduler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLEAN_ENV, DISPATCH_BIN, freePort, killAll, type Proc, requireBuilt, start, tempDir, until } from '../e2e/helpers/processes.js';

const APP = fileURLToPath(new URL('./fixtures/crash-app.mjs', import.meta.url));

const LEAVES = 300;
const FAN_INS = 10;
const FAN_IN_WIDTH = 10;
const CHAINS = 10;
const CHAIN_LENGTH = 10;
const TOTAL = LEAVES + FAN_INS * (1 + FAN_IN_WIDTH) + CHAINS * (1 + CHAIN_LENGTH);

const procs: Array<Proc | undefined> = [];
const tmp = tempDir('in-process-crash');
beforeAll(() => requireBuilt());
afterAll(async () => {
  await killAll(procs);
  tmp.remove();
});

function countLines(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) if (line) counts.set(line, (counts.get(line) ?? 0) + 1);
  return counts;
}

describe('in-process app crash', () => {
  it('kill -9 of the in-process app with calls in flight, dispatch run --in-process again: all complete, each result recorded once', { timeout: 240_000 }, async () => {
    const db = join(tmp.dir, 'scheduler.db');
    const stateFile = join(tmp.dir, 'api.json');
    const counter = join(tmp.dir, 'side-effects.log');
    writeFileSync(counter, '');
    const apiPort = await freePort();
    const appPort = await freePort();
    const runApp = async (): Promise<[Proc, { apiUrl: string; apiKey: string; pid: number }]> => {
      const p = start(
        process.execPath,
        [DISPATCH_BIN, 'run', '--in-process', '--db', db, '--port', String(apiPort), '--endpoint-addr', `127.0.0.1:${appPort}`, '--concurrency-initial', '64', '--', process.execPath, APP],
        { cwd: tmp.dir, env: { ...CLEAN_ENV, COUNTER_FILE: counter } },
      );
      procs.push(p);
      await p.waitFor(/app ready/);
      // The scheduler in the app's process wrote the state file that dispatch ls/get/call read.
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { apiUrl: string; apiKey: string; pid: number };
      return [p, state];
    };

    let [cli, state] = await runApp();
    expect(cli.text()).toMatch(/in-process scheduler http:\/\/127\.0\.0\.1:\d+ · database .*scheduler\.db/);
    expect(state.pid).not.toBe(cli.child.pid); // the app's own process holds the scheduler
    const first = state;
    const endpoint = `http://127.0.0.1:${appPort}`;
    const client = new DispatchClient({ apiUrl: state.apiUrl, apiKey: state.apiKey });

    const roots: Array<{ call: proto.ICall; expected: number }> = [];
    const add = (fn: string, args: unknown[], expected: number) =>
      roots.push({ call: { function: fn, endpoint, input: encodeArgs(args), idempotencyKey: `${fn}:${args[0]}` }, expected });
    const every = LEAVES / FAN_INS;
    for (let i = 0; i < LEAVES; i++) {
      add('leaf', [`i${i}`, i], i * 2);
      if (i % every === 0) {
        add('fanIn', [`f${i / every}`, FAN_IN_WIDTH], FAN_IN_WIDTH * (FAN_IN_WIDTH - 1));
        add('chain', [`c${i / every}`, CHAIN_LENGTH], CHAIN_LENGTH);
      }
    }
    const ids: string[] = [];
    for (let i = 0; i < roots.length; i += 100) ids.push(...(await client.dispatch(roots.slice(i, i + 100).map((r) => r.call))));
    expect(ids).toHaveLength(LEAVES + FAN_INS + CHAINS);

    const executions = () => readFileSync(counter, 'utf8').split('\n').length - 1;
    await until(() => executions() >= 150, '150 function executions before the kill');
    process.kill(state.pid, 'SIGKILL');
    // dispatch run exits with the app's status: killed by signal 9.
    expect(await cli.exited).toBe(137);
    const killedAt = Date.now();

    const { before } = await SqliteStore.open({ path: db, releaseLeases: false }).then(async (s) => {
      const { counts } = await s.listCalls({ limit: 1 });
      await s.close();
      return { before: counts };
    });
    expect(before.pending + before.running + before.suspended, 'calls unfinished at the kill').toBeGreaterThan(0);
    expect(before.running, 'calls running under a lease at the kill').toBeGreaterThan(0);

    [cli, state] = await runApp();
    expect(state.apiKey).toBe(first.apiKey);
    expect(cli.text()).toMatch(/resuming \d+ unfinished call\(s\)/);
    for (const [i, id] of ids.entries()) {
      const outcome = await client.wait(id, { timeoutMs: 120_000 });
      expect(outcome.done, `${roots[i]!.call.function} ${id}`).toBe(true);
      if (!outcome.done) continue;
      expect(outcome.status, `${roots[i]!.call.function} ${id}: ${outcome.error?.message}`).toBe(Status.OK);
      expect(outcome.value).toBe(roots[i]!.expected);
    }
    // SIGTERM: the scheduler closes its store, then the app (which handles no signal) ends as SIGTERM ends it.
    cli.kill('SIGTERM');
    expect(await cli.exited).toBe(143);
    expect(cli.text()).toMatch(/exited with code 143/);

    const store = await SqliteStore.open({ path: db });
    try {
      const all: CallRecord[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listCalls({ limit: 1000, ...(cursor ? { cursor } : {}) });
        all.push(...page.calls);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(all).toHaveLength(TOTAL);
      expect(all.filter((c) => c.state !== 'succeeded')).toEqual([]);
      let finishedAfterKill = 0;
      for (const c of all) {
        const attempts = await store.getAttempts(c.id);
        expect(attempts.filter((a) => a.outcome === 'exit'), `${c.function} ${c.id}`).toHaveLength(1);
        if (attempts.at(-1)!.startedAt >= killedAt) finishedAfterKill++;
      }
      expect(finishedAfterKill).toBeGreaterThan(0);
      for (const id of ids) {
        const rec = all.find((c) => c.id === id)!;
        const children = await store.getChildren(id);
        if (rec.function === 'fanIn') expect(children).toHaveLength(FAN_IN_WIDTH);
        if (rec.function === 'chain') expect(children).toHaveLength(CHAIN_LENGTH);
      }
      const counts = countLines(counter);
      const expectedKeys = [
        ...Array.from({ length: LEAVES }, (_, i) => `leaf i${i}`),
        ...Array.from({ length: FAN_INS }, (_, i) => [`fanIn f${i}`, ...Array.from({ length: FAN_IN_WIDTH }, (_, j) => `leaf f${i}.${j}`)]).flat(),
        ...Array.from({ length: CHAINS }, (_, i) => [`chain c${i}`, ...Array.from({ length: CHAIN_LENGTH }, (_, j) => `step c${i}.${j}`)]).flat(),
      ];
      expect(expectedKeys.filter((k) => !counts.has(k))).toEqual([]);
      expect([...counts.keys()].filter((k) => !expectedKeys.includes(k))).toEqual([]);
      const repeated = [...counts.values()].reduce((n, c) => n + (c - 1), 0);
      console.log(
        `in-process crash: ${TOTAL} calls, ${before.pending + before.running + before.suspended} unfinished at the kill (${before.running} running), ${finishedAfterKill} finished after the restart, ${repeated} repeated runs, every result recorded once`,
      );
    } finally {
      await store.close();
    }
  });
});
