import { EventEmitter } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { Status } from '@dispatch/core/protocol';
import { encodeValue } from '@dispatch/core/protocol';
import { describe, expect, it } from 'vitest';
import { RunOutput, splitLines } from './progress.js';
import type { Scheduler } from '../scheduler.js';

class Capture extends Writable {
  text = '';
  isTTY = false;
  columns = 120;
  override _write(chunk: Buffer, _enc: string, done: () => void) {
    this.text += chunk.toString();
    done();
  }
}

/** A stand-in for the scheduler: its events, list counts and stored calls. */
function fakeScheduler(records: Record<string, { parentId: string | null; output?: unknown; error?: { type: string; message: string } }>) {
  const s = new EventEmitter() as EventEmitter & { list: () => Promise<unknown>; store: { getCall: (id: string) => Promise<unknown> } };
  const counts = { pending: 2, running: 1, suspended: 1, succeeded: 5, failed: 0, cancelled: 0 };
  s.list = async () => ({ calls: [], nextCursor: null, counts: { ...counts } });
  s.store = {
    getCall: async (id: string) => {
      const r = records[id];
      if (!r) return null;
      return { id, parentId: r.parentId, output: r.output === undefined ? null : encodeValue(r.output), error: r.error ?? null };
    },
  };
  return { s, counts };
}

describe('dispatch run output', () => {
  it('prints plain lines per call event when not on a terminal', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const out = new RunOutput({ stdout, stderr, live: false, color: false, quiet: false, appName: 'node' });
    const { s } = fakeScheduler({ A: { parentId: null, output: 42 }, B: { parentId: 'A', error: { type: 'PermanentError', message: 'no' } }, C: { parentId: null } });
    await out.attach(s as unknown as Scheduler);
    out.appLine('stdout', 'hello');
    s.emit('dispatched', { dispatchIds: ['A'], functions: ['main'] });
    s.emit('attempt', {
      dispatchId: 'A',
      function: 'main',
      endpoint: 'http://x',
      run: 1,
      attempt: 1,
      resumes: 0,
      status: Status.TEMPORARY_ERROR,
      statusName: 'TEMPORARY_ERROR',
      startedAt: 0,
      durationMs: 1,
      outcome: 'retry',
      resume: false,
      error: { type: 'TemporaryError', message: 'flaky\nsecond line' },
      nextRunAt: Date.now() + 200,
    });
    s.emit('attempt', { dispatchId: 'A', function: 'main', endpoint: 'http://x', run: 2, attempt: 2, resumes: 0, status: 1, statusName: 'OK', startedAt: 0, durationMs: 1, outcome: 'exit', resume: false });
    s.emit('finished', { dispatchId: 'A', function: 'main', state: 'succeeded', status: 1, statusName: 'OK' });
    // A call that never failed: one attempt, then resumes, one of which fails.
    s.emit('dispatched', { dispatchIds: ['C'], functions: ['checkout'] });
    const run = { dispatchId: 'C', function: 'checkout', endpoint: 'http://x', status: 1, statusName: 'OK', startedAt: 0, durationMs: 1, outcome: 'suspend' };
    s.emit('attempt', { ...run, run: 1, attempt: 1, resumes: 0, resume: false });
    s.emit('attempt', { ...run, run: 2, attempt: 1, resumes: 1, resume: true });
    s.emit('attempt', { ...run, run: 3, attempt: 1, resumes: 2, resume: true, status: Status.TEMPORARY_ERROR, statusName: 'TEMPORARY_ERROR', outcome: 'retry' });
    s.emit('attempt', { ...run, run: 4, attempt: 2, resumes: 2, resume: false, outcome: 'exit' });
    s.emit('finished', { dispatchId: 'C', function: 'checkout', state: 'succeeded', status: 1, statusName: 'OK' });
    s.emit('finished', { dispatchId: 'B', function: 'child', state: 'failed', status: Status.PERMANENT_ERROR, statusName: 'PERMANENT_ERROR' });
    await out.flush();
    out.stop();
    expect(stdout.text).toBe('node     | hello\n');
    const lines = stderr.text.split('\n');
    expect(lines).toContain('dispatch | dispatched main A');
    expect(lines.find((l) => l.includes('retrying'))).toMatch(
      /^dispatch \| retrying main A: attempt 1 ended with TEMPORARY_ERROR \(TemporaryError: flaky second line\); retry in \d+ ms$/,
    );
    expect(lines).toContain('dispatch | done main A after 2 attempts → 42');
    expect(lines).toContain('dispatch | retrying checkout C: resume 2 ended with TEMPORARY_ERROR');
    expect(lines).toContain('dispatch | done checkout C after 2 attempts and 2 resumes');
    expect(lines).toContain('dispatch | failed child B: PERMANENT_ERROR PermanentError: no');
    expect(out.unfinished).toBe(4);
  });

  it('keeps one live status line at the bottom of a terminal', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const out = new RunOutput({ stdout, stderr, live: true, color: false, quiet: false, appName: 'app' });
    const { s, counts } = fakeScheduler({});
    await out.attach(s as unknown as Scheduler);
    expect(out.statusText()).toBe('3 running · 1 waiting · 0 retrying · 0 done · 0 failed');
    counts.succeeded = 9;
    counts.failed = 2;
    s.emit('attempt', { dispatchId: 'R', function: 'f', endpoint: 'e', run: 1, attempt: 1, resumes: 0, status: 6, statusName: 'TEMPORARY_ERROR', startedAt: 0, durationMs: 1, outcome: 'retry', resume: false });
    const want = '2 running · 1 waiting · 1 retrying · 4 done · 2 failed';
    for (let i = 0; i < 500 && out.statusText() !== want; i++) await new Promise((resolve) => setTimeout(resolve, 10)); // the next refresh
    expect(out.statusText()).toBe(want);
    out.appLine('stdout', 'line');
    // The status line is cleared before a line is printed, then drawn again.
    expect(stderr.text).toMatch(/\r\x1b\[2Kdispatch \| . calls: 2 running · 1 waiting · 1 retrying · 4 done · 2 failed/);
    expect(stderr.text.endsWith('2 failed')).toBe(true);
    expect(stdout.text).toBe('app      | line\n');
    out.stop();
    expect(stderr.text.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('splits a stream into lines, with CRLF and a last line without newline', async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    const done = splitLines(stream, (l) => lines.push(l));
    stream.write('one\r\ntw');
    stream.write('o\nthree');
    stream.end();
    await done;
    expect(lines).toEqual(['one', 'two', 'three']);
  });
});
