import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Status } from '@dispatch/core/protocol';
import { proto } from '@dispatch/core/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ConcurrencySnapshot } from '../src/run/concurrency.js';
import { newDispatchId } from '../src/store/dispatch-id.js';
import { Scheduler } from '../src/scheduler.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { ConcurrencyProbe } from './support/concurrency-probe.js';
import { fail, ok, startEndpoint, startTestScheduler, str, type TestEndpoint, text, until } from './support/test-endpoint.js';

const dir = mkdtempSync(join(tmpdir(), 'dispatch-durability-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbFile = () => join(dir, `run-${n++}`, 'scheduler.db');

let scheduler: Scheduler | undefined;
let endpoint: TestEndpoint | undefined;
afterEach(async () => {
  await scheduler?.close();
  await endpoint?.close();
  scheduler = undefined;
  endpoint = undefined;
});

describe('adaptive concurrency', () => {
  it('falls under TEMPORARY_ERROR and rises under OK; calls over the limit stay queued', async () => {
    let served = 0;
    let probe: ConcurrencyProbe | undefined;
    endpoint = await startEndpoint(async (req) => {
      probe!.started(req.dispatchId ?? '');
      served++;
      const failing = served <= 12;
      await new Promise((r) => setTimeout(r, 15));
      probe!.ended(req.dispatchId ?? '');
      return failing ? fail(Status.TEMPORARY_ERROR, 'Overloaded', 'busy') : ok('fine');
    });
    scheduler = await startTestScheduler({ concurrency: { initial: 6, min: 1, max: 50 }, backoff: { initialMs: 10, maxMs: 50 } });
    probe = new ConcurrencyProbe(scheduler, endpoint.url, 'load');
    const limits: ConcurrencySnapshot[] = [];
    scheduler.on('concurrency', (s) => limits.push(s));
    const ids = await scheduler.dispatch(Array.from({ length: 60 }, () => ({ function: 'load', endpoint: endpoint!.url, input: str('') })));
    const results = await Promise.all(ids.map((id) => scheduler!.wait(id, 20_000)));
    expect(results.every((r) => r.done && r.status === Status.OK)).toBe(true);
    // At every run the endpoint started, it had no more runs at once than the
    // limit under which the newest of them was claimed.
    expect(probe.violations.join('\n')).toBe('');
    expect(probe.checked).toBe(served);
    expect(served).toBe(60 + 12);
    expect(probe.peak).toBeGreaterThan(1);
    const values = limits.map((s) => Math.floor(s.limit));
    const lowest = Math.min(...values);
    expect(lowest).toBeLessThan(6);
    const lowestAt = values.indexOf(lowest);
    expect(Math.max(...values.slice(lowestAt))).toBeGreaterThan(lowest);
    const info = await scheduler.get(ids[0]!);
    expect(info.concurrency?.limit).toBe(scheduler.concurrency(endpoint.url, 'load').limit);
  });
});

describe('crash safety', () => {
  it('runs again a call that was running when its scheduler died (lease released at start)', async () => {
    const path = dbFile();
    const store = await SqliteStore.open({ path });
    const id = newDispatchId();
    const now = Date.now();
    endpoint = await startEndpoint(() => ok('ran again'));
    await store.insertCalls([
      { id, function: 'work', endpoint: endpoint.url, input: str('x'), createdAt: now, dueAt: now, expiresAt: now + 3_600_000, expirationMs: 3_600_000, rootId: id },
    ]);
    const claimed = await store.claimDue({ owner: 'crashed-instance', now, leaseMs: 3_600_000, limit: 10, capacity: () => 10 });
    expect(claimed.calls).toHaveLength(1);
    await store.close(); // the process "dies" with the call leased

    scheduler = await startTestScheduler({ db: path });
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && text(result.result.output)).toBe('ran again');
    expect(endpoint.runs).toHaveLength(1);
  });
});

describe('restarts and graceful shutdown', () => {
  it('keeps the keys, and a parent waiting on children survives a restart', async () => {
    const path = dbFile();
    endpoint = await startEndpoint((req) => {
      if (req.function === 'nap') {
        return req.pollResult ? ok('rested') : { status: 1, poll: { maxWait: proto.durationFromMs(1000), minResults: 1, maxResults: 1 } };
      }
      if (!req.pollResult) {
        const calls = [1n, 2n].map((c) => ({ correlationId: proto.toLong(c), endpoint: endpoint!.url, function: 'nap' }));
        return { status: 1, poll: { typedCoroutineState: str('parent state'), calls, minResults: 2, maxResults: 2, maxWait: proto.durationFromMs(60_000) } };
      }
      expect(text(req.pollResult.typedCoroutineState)).toBe('parent state');
      return ok(`children: ${(req.pollResult.results ?? []).map((r) => text(r.output)).join(',')}`);
    });
    scheduler = await startTestScheduler({ db: path });
    const { apiKey, verificationKey } = scheduler;
    const [id] = await scheduler.dispatch([{ function: 'parent', endpoint: endpoint.url }]);
    await until(async () => (await scheduler!.list({ states: ['suspended'] })).calls.length === 3);
    await scheduler.close();

    scheduler = await startTestScheduler({ db: path });
    expect(scheduler.apiKey).toBe(apiKey);
    expect(scheduler.verificationKey).toBe(verificationKey);
    const result = await scheduler.wait(id!, 10_000);
    expect(result.done && text(result.result.output)).toBe('children: rested,rested');
  });

  it('close() waits for runs in flight and records their results', async () => {
    const path = dbFile();
    endpoint = await startEndpoint(async () => {
      await new Promise((r) => setTimeout(r, 300));
      return ok('finished during shutdown');
    });
    scheduler = await startTestScheduler({ db: path });
    const [id] = await scheduler.dispatch([{ function: 'slow', endpoint: endpoint.url }]);
    await until(() => endpoint!.runs.length === 1);
    await scheduler.close();
    scheduler = undefined;
    const store = await SqliteStore.open({ path });
    const rec = await store.getCall(id!);
    expect(rec?.state).toBe('succeeded');
    expect(text(rec?.output)).toBe('finished during shutdown');
    await store.close();
  });

  it('refuses to dispatch once closing', async () => {
    scheduler = await startTestScheduler();
    const s = scheduler;
    await s.close();
    scheduler = undefined;
    await expect(s.dispatch([{ function: 'f', endpoint: 'http://127.0.0.1:1' }])).rejects.toThrow(/shutting down/);
  });
});

describe('the redo log', () => {
  it('is written into the database when a scheduler starts on the file of one killed with SIGKILL, and the log says so', async () => {
    const path = dbFile();
    const built = new URL('../dist/esm/index.js', import.meta.url).href;
    if (!existsSync(fileURLToPath(built))) throw new Error(`the scheduler is not built (${built} is missing): run \`pnpm build\` first`);
    const id = newDispatchId();
    const now = Date.now();
    const call = { id, function: 'f', endpoint: 'http://127.0.0.1:1', input: null, createdAt: now, dueAt: now + 3_600_000, expiresAt: now + 7_200_000, expirationMs: 3_600_000, rootId: id };
    // Acknowledged, then kill -9 before the database's next commit (every 200 ms): only the redo log holds it.
    const script = `
      import { SqliteStore } from ${JSON.stringify(built)};
      const store = await SqliteStore.open({ path: ${JSON.stringify(path)} });
      await store.insertCalls([${JSON.stringify(call)}]);
      process.kill(process.pid, 'SIGKILL');
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.signal, child.stderr).toBe('SIGKILL');
    const lines: Array<{ level: string; line: string; fields: unknown }> = [];
    scheduler = await Scheduler.start({ db: path, port: 0, logLevel: 'info', startPaused: true, logger: (level, line, fields) => lines.push({ level, line, fields }) });
    // One batch: the call's row and its function's queue (a new pair).
    expect(lines.find((l) => /redo log/.test(l.line))).toEqual({
      level: 'info',
      line: 'wrote 1 batch(es) of the redo log (2 statement(s)) acknowledged before the last stop and not yet in the database',
      fields: { event: 'redo_recovered', replayed: 1, statements: 2, tornBytes: 0 },
    });
    expect(await scheduler.wait(id, 0)).toEqual({ done: false, state: 'pending' });
  });
});
