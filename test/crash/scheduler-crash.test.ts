/**
 * kill -9 of the scheduler process while 1,000+ calls are in flight
 * (independent calls, fan-ins, sequential chains), then a restart on the same
 * SQLite file: every call completes, every result is recorded exactly once,
 * none is lost. Real processes: the scheduler (`dispatch serve` of the built CLI) and the
 * app (`fixtures/crash-app.mjs` on the built @dispatch/core).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DispatchClient, Status } from '@dispatch/core';
import { decodeArgs, decodeValue, encodeArgs, type proto } from '@dispatch/core/protocol';
import { type CallRecord, SqliteStore } from '@dispatch/scheduler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISPATCH_BIN, freePort, killAll, type Proc, ROOT, requireBuilt, start, tempDir, until } from '../e2e/helpers/processes.js';

const APP = fileURLToPath(new URL('./fixtures/crash-app.mjs', import.meta.url));

const LEAVES = 600;
const FAN_INS = 20;
const FAN_IN_WIDTH = 10;
const CHAINS = 20;
const CHAIN_LENGTH = 10;
const TOTAL = LEAVES + FAN_INS * (1 + FAN_IN_WIDTH) + CHAINS * (1 + CHAIN_LENGTH);

interface Ready {
  url: string;
  apiKey: string;
  verificationKey: string;
  pid: number;
}

const procs: Array<Proc | undefined> = [];
const tmp = tempDir('crash');
beforeAll(() => {
  requireBuilt();
});
afterAll(async () => {
  await killAll(procs);
  tmp.remove();
});

function countLines(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line) counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  return counts;
}

describe('scheduler crash', () => {
  it('kill -9 with 1,000+ calls in flight, restart on the same SQLite file: all complete, each result recorded once', { timeout: 240_000 }, async () => {
    const db = join(tmp.dir, 'scheduler.db');
    const counter = join(tmp.dir, 'side-effects.log');
    writeFileSync(counter, '');
    const apiPort = await freePort();
    const appPort = await freePort();
    const startScheduler = async (): Promise<[Proc, Ready]> => {
      const p = start(
        process.execPath,
        [DISPATCH_BIN, 'serve', '--ready-json', '--db', db, '--port', String(apiPort), '--log-level', 'warn', '--concurrency-initial', '64', '--request-timeout-ms', '20000'],
        { cwd: tmp.dir },
      );
      procs.push(p);
      return [p, JSON.parse(await p.waitFor(/^\{/)) as Ready];
    };

    let [scheduler, ready] = await startScheduler();
    const first = ready;
    const app = start(process.execPath, [APP], {
      cwd: tmp.dir,
      env: {
        DISPATCH_API_URL: ready.url,
        DISPATCH_API_KEY: ready.apiKey,
        DISPATCH_ENDPOINT_URL: `http://127.0.0.1:${appPort}`,
        DISPATCH_ENDPOINT_ADDR: `127.0.0.1:${appPort}`,
        DISPATCH_VERIFICATION_KEY: ready.verificationKey,
        COUNTER_FILE: counter,
      },
    });
    procs.push(app);
    await app.waitFor(/app ready/);
    const endpoint = `http://127.0.0.1:${appPort}`;
    const client = new DispatchClient({ apiUrl: ready.url, apiKey: ready.apiKey });

    // What the test dispatches, with what each call must return.
    const roots: Array<{ call: proto.ICall; expected: number }> = [];
    const add = (fn: string, args: unknown[], expected: number) =>
      roots.push({ call: { function: fn, endpoint, input: encodeArgs(args), idempotencyKey: `${fn}:${args[0]}` }, expected });
    // Interleaved, so that every kind is in flight at the kill.
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

    // kill -9 once a fair share of the work has run.
    const executions = () => readFileSync(counter, 'utf8').split('\n').length - 1;
    await until(() => executions() >= 300, '300 function executions before the kill');
    scheduler.kill('SIGKILL');
    expect(await scheduler.exited).toBe(137);
    const killedAt = Date.now();
    const atKill = countLines(counter);
    const { before, runningAtKill } = await SqliteStore.open({ path: db, releaseLeases: false }).then(async (s) => {
      const { counts } = await s.listCalls({ limit: 1 });
      const running = await s.listCalls({ states: ['running'], limit: 1000 });
      const calls = await Promise.all(running.calls.map(async (c) => (await s.getCall(c.id))!)); // with their input
      await s.close();
      return { before: counts, runningAtKill: calls };
    });
    const unfinishedAtKill = before.pending + before.running + before.suspended;
    expect(unfinishedAtKill).toBeGreaterThan(0);
    // The kill interrupted work: calls were running under the dead scheduler's lease.
    expect(before.running, 'calls running under a lease at the kill').toBeGreaterThan(0);
    expect(runningAtKill).toHaveLength(before.running);
    // Those whose body had already run (its line is in the log) were cut short mid-run.
    const unitOf = (c: CallRecord) => `${c.function} ${String(decodeArgs(c.input)[0])}`;
    const interrupted = runningAtKill.filter((c) => (c.function === 'leaf' || c.function === 'step') && atKill.has(unitOf(c)));

    // Restart on the same file and port: same keys, the app is none the wiser.
    [scheduler, ready] = await startScheduler();
    expect(ready.apiKey).toBe(first.apiKey);
    expect(ready.verificationKey).toBe(first.verificationKey);
    for (const [i, id] of ids.entries()) {
      const outcome = await client.wait(id, { timeoutMs: 120_000 });
      expect(outcome.done, `${roots[i]!.call.function} ${id}`).toBe(true);
      if (!outcome.done) continue;
      expect(outcome.status, `${roots[i]!.call.function} ${id}: ${outcome.error?.message}`).toBe(Status.OK);
      expect(outcome.value).toBe(roots[i]!.expected);
    }

    // Stop it cleanly, then read the store.
    scheduler.kill('SIGTERM');
    expect(await scheduler.exited).toBe(0);
    const store = await SqliteStore.open({ path: db });
    try {
      const all: CallRecord[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listCalls({ limit: 1000, ...(cursor ? { cursor } : {}) });
        all.push(...page.calls);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      // No call lost, none created twice (a Poll handled twice would add children).
      expect(all).toHaveLength(TOTAL);
      expect(all.filter((c) => c.state !== 'succeeded')).toEqual([]);
      for (const id of ids) {
        const rec = all.find((c) => c.id === id)!;
        const children = await store.getChildren(id);
        if (rec.function === 'fanIn') expect(children).toHaveLength(FAN_IN_WIDTH);
        if (rec.function === 'chain') expect(children).toHaveLength(CHAIN_LENGTH);
        if (rec.function === 'leaf') expect(children).toHaveLength(0);
      }
      // Each result recorded exactly once: one finishing attempt per call.
      let attemptsTotal = 0;
      for (const c of all) {
        const attempts = await store.getAttempts(c.id);
        attemptsTotal += attempts.length;
        expect(attempts.filter((a) => a.outcome === 'exit'), `${c.function} ${c.id}`).toHaveLength(1);
        expect(attempts.at(-1)?.outcome).toBe('exit');
      }
      // Every call running at the kill ran again on the restarted scheduler.
      for (const c of runningAtKill) {
        const runs = await store.getAttempts(c.id);
        expect(runs.at(-1)!.startedAt, `${c.function} ${c.id}, running at the kill, finished by a run after it`).toBeGreaterThanOrEqual(killedAt);
      }

      // The side effects the app wrote: every unit of work ran, some ran twice.
      const counts = countLines(counter);
      const expectedKeys = [
        ...Array.from({ length: LEAVES }, (_, i) => `leaf i${i}`),
        ...Array.from({ length: FAN_INS }, (_, i) => [`fanIn f${i}`, ...Array.from({ length: FAN_IN_WIDTH }, (_, j) => `leaf f${i}.${j}`)]).flat(),
        ...Array.from({ length: CHAINS }, (_, i) => [`chain c${i}`, ...Array.from({ length: CHAIN_LENGTH }, (_, j) => `step c${i}.${j}`)]).flat(),
      ];
      expect(expectedKeys).toHaveLength(TOTAL);
      const missing = expectedKeys.filter((k) => !counts.has(k));
      expect(missing).toEqual([]);
      expect([...counts.keys()].filter((k) => !expectedKeys.includes(k))).toEqual([]);
      // A body cut short by the kill ran again.
      for (const c of interrupted) expect(counts.get(unitOf(c)), `${unitOf(c)} was interrupted by the kill`).toBeGreaterThanOrEqual(2);
      const repeated = [...counts.values()].reduce((n, c) => n + (c - 1), 0);
      const repeatedUnits = [...counts.values()].filter((c) => c > 1).length;
      const report = {
        calls: TOTAL,
        rootCalls: ids.length,
        executionsBeforeKill: [...atKill.values()].reduce((a, b) => a + b, 0),
        unfinishedAtKill,
        runningAtKill: runningAtKill.length,
        interruptedMidRun: interrupted.length,
        executions: [...counts.values()].reduce((a, b) => a + b, 0),
        repeatedRuns: repeated,
        unitsRunMoreThanOnce: repeatedUnits,
        attemptsRecorded: attemptsTotal,
      };
      mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
      writeFileSync(join(ROOT, 'test-artifacts', 'crash-scheduler.json'), `${JSON.stringify(report, null, 2)}\n`);
      console.log(
        `scheduler crash: ${report.calls} calls, ${report.unfinishedAtKill} unfinished at the kill (${report.runningAtKill} running, ${report.interruptedMidRun} cut short mid-run), ${report.executions} executions, ${report.repeatedRuns} repeated runs (${report.unitsRunMoreThanOnce} units ran more than once), every result recorded once`,
      );
    } finally {
      await store.close();
    }
  });
});
