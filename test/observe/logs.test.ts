/**
 * `--log-format json` / `DISPATCH_LOG_FORMAT=json` through real processes:
 * `dispatch serve` on PostgreSQL with a password in its URL, and
 * `dispatch run` with an app. Every log line is one JSON object with the
 * stable fields; passwords stay `***`, in messages and in fields alike.
 */
import { join } from 'node:path';
import { DispatchClient } from '@dispatch/core';
import { dropPgSchema, randomPgSchema } from '../../packages/scheduler/test/support/pg-cluster.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLEAN_ENV, DISPATCH_BIN, dispatchCli, ROOT, requireBuilt, start, tempDir } from '../e2e/helpers/processes.js';

const PASSWORD = 'hunter2-Json-pw';
const STABLE = ['level', 'time', 'pid', 'name', 'msg'];

beforeAll(() => requireBuilt());

interface LogLine {
  level: string;
  time: string;
  pid: number;
  name: string;
  msg: string;
  [field: string]: unknown;
}

/** Parses a line as a log object with the stable fields, or throws naming the line. */
function parseLogLine(line: string, pid: number): LogLine {
  let o: LogLine;
  try {
    o = JSON.parse(line) as LogLine;
  } catch (err) {
    throw new Error(`not JSON: ${JSON.stringify(line)} (${(err as Error).message})`);
  }
  expect(Object.keys(o).slice(0, 4), line).toEqual(STABLE.slice(0, 4)); // level, time, pid, name first; then the fields; msg last
  expect(Object.keys(o).at(-1), line).toBe('msg');
  expect(['error', 'warn', 'info', 'debug'], line).toContain(o.level);
  expect(o.time, line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect(o.pid, line).toBe(pid);
  expect(o.name, line).toBe('dispatch-scheduler');
  expect(typeof o.msg, line).toBe('string');
  return o;
}

const pgUrl = process.env.DISPATCH_TEST_POSTGRES_URL;

describe.skipIf(!pgUrl)('dispatch serve --log-format json', () => {
  it('writes one JSON object per line, with the stable fields, and no password', async () => {
    const schema = randomPgSchema('dispatch_jsonlog');
    const url = new URL(pgUrl!);
    url.password = PASSWORD; // the local server trusts the user: the password is given, and ignored
    url.searchParams.set('schema', schema);
    const serve = start(process.execPath, [DISPATCH_BIN, 'serve', '--db', url.href, '--port', '0', '--log-level', 'debug', '--log-format', 'json', '--ready-json'], {
      env: CLEAN_ENV,
    });
    try {
      const ready = JSON.parse(await serve.waitFor(/^\{"url"/)) as { url: string; apiKey: string; pid: number };
      const client = new DispatchClient({ apiUrl: ready.url, apiKey: ready.apiKey });
      // An endpoint whose URL holds a password, and that refuses connections: attempt lines with retries.
      await client.dispatch([{ function: 'charge', endpoint: `http://app:${PASSWORD}@127.0.0.1:1` }]);
      await serve.waitFor(/"event":"attempt"/);
    } finally {
      serve.kill('SIGTERM');
      await serve.exited;
      await dropPgSchema(pgUrl!, schema);
    }
    const pid = serve.child.pid!;
    // stdout: the ready line only; stderr: log lines, every one of them JSON.
    expect(serve.stdout.filter((l) => l !== '')).toHaveLength(1);
    const lines = serve.stderr.filter((l) => l !== '').map((l) => parseLogLine(l, pid));
    console.info(`dispatch serve --log-format json wrote ${lines.length} lines; the first: ${serve.stderr[0]}`);
    expect(serve.text()).not.toContain(PASSWORD);

    const listening = lines.find((l) => l.event === 'listening');
    expect(listening).toMatchObject({ level: 'info', url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), instance: expect.stringMatching(/^sched-/) });
    expect(listening?.database).toBe(`postgres://${url.username}:***@${url.host}${url.pathname}${url.search}`);
    expect(listening?.msg).toContain(`postgres://${url.username}:***@${url.host}`);

    // A refused connection is logged at debug: the endpoint's circuit says it is unreachable, once per interval (issue 12).
    const attempt = lines.find((l) => l.event === 'attempt');
    expect(attempt).toMatchObject({
      level: 'debug',
      function: 'charge',
      endpoint: 'http://app:***@127.0.0.1:1',
      kind: 'attempt',
      attempt: 1,
      status: 'TCP_ERROR',
      outcome: 'retry',
      dispatch_id: expect.any(String),
      duration_ms: expect.any(Number),
      retry_in_ms: expect.any(Number),
    });
    expect(attempt?.msg).toMatch(/^run charge \S+ attempt=1 status=TCP_ERROR/);
    expect(lines.some((l) => l.level === 'debug' && /dispatched 1 call/.test(l.msg))).toBe(true);
    expect(lines.some((l) => /stopped$/.test(l.msg))).toBe(true);
  });
});

describe('dispatch run with DISPATCH_LOG_FORMAT=json', () => {
  it("writes the scheduler's lines as JSON objects beside the app's output", async () => {
    const tmp = tempDir('jsonlog');
    try {
      const { code, stdout, stderr } = await dispatchCli(['run', '--port', '0', '--log-level', 'info', '--', process.execPath, join(ROOT, 'test/e2e/fixtures/checkout-app.mjs')], {
        cwd: tmp.dir,
        env: { ...CLEAN_ENV, DISPATCH_LOG_FORMAT: 'json' },
      });
      expect(code, `${stdout}\n${stderr}`).toBe(0);
      expect(stdout).toMatch(/^node +\| result: completed order_456$/m);
      const json = stderr.split('\n').filter((l) => l.startsWith('{'));
      const lines = json.map((l) => JSON.parse(l) as LogLine);
      for (const l of lines) for (const field of STABLE) expect(l, JSON.stringify(l)).toHaveProperty(field);
      const attempts = lines.filter((l) => l.event === 'attempt');
      expect(attempts.filter((l) => l.function === 'send_email_confirmation').map((l) => l.status)).toEqual(['TEMPORARY_ERROR', 'TEMPORARY_ERROR', 'OK']);
      expect(attempts.find((l) => l.function === 'checkout' && l.outcome === 'exit')).toMatchObject({ level: 'info', kind: 'resume', status: 'OK' });
      // No scheduler line is left as text (they all start with a time stamp in the text format).
      expect(stderr).not.toMatch(/^\d{4}-\d\d-\d\dT/m);
    } finally {
      tmp.remove();
    }
  });

  it('refuses an unknown format, naming where it came from', async () => {
    const bad = await dispatchCli(['serve', '--port', '0', '--db', ':memory:'], { env: { ...CLEAN_ENV, DISPATCH_LOG_FORMAT: 'yaml' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('DISPATCH_LOG_FORMAT must be text or json, got "yaml"');
    const flag = await dispatchCli(['serve', '--port', '0', '--db', ':memory:', '--log-format', 'xml']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--log-format must be text or json, got "xml"');
  });
});
