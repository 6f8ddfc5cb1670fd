/**
 * The `dispatch` CLI as a person uses it: the compiled bin started as a
 * process (build first: `pnpm -r --filter './packages/*' build`).
 */
import { existsSync, readFileSync } from 'node:fs';
import type net from 'node:net';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Dispatch, PermanentError, Status } from '@dispatch/core';
import { SqliteStore } from '@dispatch/scheduler';
import { nodeListener } from '@dispatch/core/node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DISPATCH_BIN, dispatchCli, freePort, type Proc, ROOT, requireBuilt, start, tempDir, until } from './helpers/processes.js';

// Each test starts several CLI processes (node start-up, a scheduler, an app): seconds on an idle
// machine, past the 30 s default on a loaded one (two cores under the whole suite). A liveness
// guard, not a speed check.
vi.setConfig({ testTimeout: 120_000 });

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const silent = { warn() {}, error() {}, info() {} };
/** The environment without DISPATCH_* variables of the machine running the tests. */
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DISPATCH_')));
for (const k of Object.keys(process.env)) if (k.startsWith('DISPATCH_')) cleanEnv[k] = undefined;

beforeAll(() => requireBuilt());

/**
 * `dispatch run` with a free API port and a free endpoint address: the
 * default endpoint address (127.0.0.1:8000) is left to the one test file
 * that checks it (test/packaging), so that test files run in parallel.
 */
async function run(...flags: string[]): Promise<string[]> {
  return ['run', '--port', '0', '--endpoint-addr', `127.0.0.1:${await freePort()}`, ...flags];
}

/** Stops a `dispatch run`/`serve` process: SIGTERM (passed to its command), then SIGKILL. */
async function stop(p: Proc | undefined): Promise<void> {
  if (!p) return;
  p.kill('SIGTERM');
  const done = await Promise.race([p.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
  if (!done) {
    p.kill('SIGTERM');
    await Promise.race([p.exited, new Promise((r) => setTimeout(r, 2000))]);
    p.kill('SIGKILL');
    await p.exited;
  }
}

describe('dispatch run', () => {
  it('runs the checkout seed scenario to completion and exits with the command', async () => {
    const tmp = tempDir('run');
    try {
      const { code, stdout, stderr } = await dispatchCli([...(await run()), '--', process.execPath, join(FIXTURES, 'checkout-app.mjs')], {
        cwd: tmp.dir,
        env: cleanEnv,
      });
      expect(code, `${stdout}\n${stderr}`).toBe(0);
      // The command's lines, prefixed.
      expect(stdout).toMatch(/^node +\| dispatched checkout \S+$/m);
      expect(stdout).toMatch(/^node +\| result: completed order_456$/m);
      expect(stdout).toContain('{"charges":["user_123"],"emails":["receipt_1","receipt_1","receipt_1"]}');
      // Progress: the retries of the email, the checkout's result.
      expect(stderr).toMatch(/^dispatch \| scheduler http:\/\/127\.0\.0\.1:\d+ · database \.dispatch\/dispatch\.db · app endpoint http:\/\/127\.0\.0\.1:\d+$/m);
      expect(stderr).toMatch(/retrying send_email_confirmation \S+: attempt 1 ended with TEMPORARY_ERROR \(TemporaryError: smtp unavailable \(try 1\)\)/);
      expect(stderr).toMatch(/done send_email_confirmation \S+ after 3 attempts\n/);
      expect(stderr).toMatch(/done checkout \S+ after 1 attempt and \d+ resumes → "completed order_456"/);
      expect(stderr).toMatch(/node exited with code 0/);
      expect(stderr).not.toMatch(/unfinished/);
      expect(existsSync(join(tmp.dir, '.dispatch', 'dispatch.db'))).toBe(true);
      expect(existsSync(join(tmp.dir, '.dispatch', 'api.json'))).toBe(false); // removed on exit
    } finally {
      tmp.remove();
    }
  });

  it("runs the README's demo: examples/checkout-express to completion, the card charged once", async () => {
    const example = join(ROOT, 'examples/checkout-express/app.mjs');
    for (const built of ['packages/express/dist/esm/index.js', 'packages/scheduler/dist/esm/index.js']) {
      if (!existsSync(join(ROOT, built))) throw new Error(`${built} is missing: run \`pnpm build\` first`);
    }
    const tmp = tempDir('demo');
    try {
      const { code, stdout, stderr } = await dispatchCli([...(await run()), '--', process.execPath, example, '--email-failures', '2'], {
        cwd: tmp.dir,
        env: cleanEnv,
      });
      expect(code, `${stdout}\n${stderr}`).toBe(0);
      const summary = JSON.parse(/summary (\{.*\})$/m.exec(stdout)![1]!) as { status: string; charges: number; emailAttempts: number };
      expect(summary).toMatchObject({ status: 'OK', charges: 1, emailAttempts: 3 });
      expect(stderr).toMatch(/done checkout \S+ after 1 attempt and 3 resumes/);
    } finally {
      tmp.remove();
    }
  });

  it('gives the command its configuration, keeps the key pair and the endpoint address per database, and passes its exit code', async () => {
    const tmp = tempDir('env');
    try {
      // The app writes the environment it got to a file: its output lines are shown with keys redacted.
      const envFile = join(tmp.dir, 'env.json');
      const printEnv = `const e = process.env; require('node:fs').writeFileSync(process.argv[1], JSON.stringify({ url: e.DISPATCH_API_URL, key: e.DISPATCH_API_KEY, endpoint: e.DISPATCH_ENDPOINT_URL, addr: e.DISPATCH_ENDPOINT_ADDR, vk: e.DISPATCH_VERIFICATION_KEY })); console.log('key ' + e.DISPATCH_API_KEY); process.exit(7);`;
      const readEnv = () => JSON.parse(readFileSync(envFile, 'utf8')) as Record<string, string>;
      const first = await dispatchCli([...(await run()), '--', process.execPath, '-e', printEnv, envFile], { cwd: tmp.dir, env: cleanEnv });
      expect(first.code, first.stderr).toBe(7);
      expect(first.stderr).toMatch(/node exited with code 7/);
      const env1 = readEnv();
      expect(env1.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(env1.key).toMatch(/^dsk_[\w-]{32}$/);
      expect(first.stdout).toMatch(/^node +\| key \*\*\*$/m); // what the app prints, its key redacted
      expect(first.stdout).not.toContain(env1.key);
      expect(env1.endpoint).toBe(`http://${env1.addr}`);
      expect(env1.addr).toMatch(/^127\.0\.0\.1:\d+$/);
      const vk = await dispatchCli(['verification-key'], { cwd: tmp.dir, env: cleanEnv });
      expect(vk.code).toBe(0);
      expect(vk.stdout.trim()).toBe(env1.vk);
      const pem = await dispatchCli(['verification-key', '--pem'], { cwd: tmp.dir, env: cleanEnv });
      expect(pem.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----/);

      // Same database, no --endpoint-addr: same keys, same endpoint address (unfinished calls are addressed to it).
      await dispatchCli(['run', '--port', '0', '--', process.execPath, '-e', printEnv, envFile], { cwd: tmp.dir, env: cleanEnv });
      const env2 = readEnv();
      expect(env2).toMatchObject({ key: env1.key, vk: env1.vk, addr: env1.addr });

      // --endpoint-addr wins; another database gets other keys.
      const port = await freePort();
      await dispatchCli(['run', '--port', '0', '--db', 'other.db', '--endpoint-addr', `127.0.0.1:${port}`, '--', process.execPath, '-e', printEnv, envFile], {
        cwd: tmp.dir,
        env: cleanEnv,
      });
      const env3 = readEnv();
      expect(env3.addr).toBe(`127.0.0.1:${port}`);
      expect(env3.vk).not.toBe(env1.vk);
    } finally {
      tmp.remove();
    }
  });

  it('says so when the command is not found (exit 127)', async () => {
    const tmp = tempDir('nf');
    try {
      const r = await dispatchCli([...(await run()), '--', 'no-such-command-xyz', '--flag'], { cwd: tmp.dir, env: cleanEnv });
      expect(r.code).toBe(127);
      expect(r.stderr).toMatch(/dispatch: command not found: no-such-command-xyz: check its spelling and your PATH/);
    } finally {
      tmp.remove();
    }
  });

  it('passes SIGTERM to the command, and kills it on a second one', async () => {
    const tmp = tempDir('sig');
    let p: Proc | undefined;
    try {
      const graceful = `process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(3); }); setInterval(() => {}, 1000); console.log('ready');`;
      p = start(process.execPath, [DISPATCH_BIN, ...(await run()), '--', process.execPath, '-e', graceful], { cwd: tmp.dir, env: cleanEnv });
      await p.waitFor(/\| ready$/);
      p.kill('SIGTERM');
      expect(await p.exited).toBe(3);
      expect(p.text()).toMatch(/SIGTERM: passing it to node/);
      expect(p.text()).toMatch(/\| got SIGTERM$/m);

      const stubborn = `process.on('SIGTERM', () => console.log('ignoring SIGTERM')); setInterval(() => {}, 1000); console.log('ready');`;
      p = start(process.execPath, [DISPATCH_BIN, ...(await run()), '--', process.execPath, '-e', stubborn], { cwd: tmp.dir, env: cleanEnv });
      await p.waitFor(/\| ready$/);
      p.kill('SIGTERM');
      await p.waitFor(/\| ignoring SIGTERM$/);
      p.kill('SIGTERM');
      expect(await p.exited).toBe(137);
      expect(p.text()).toMatch(/SIGTERM again: killing node/);
      expect(p.text()).toMatch(/node exited with signal SIGKILL/);
    } finally {
      await stop(p);
      tmp.remove();
    }
  });

  it('keeps unfinished calls in the database and resumes them on the next run', async () => {
    const tmp = tempDir('resume');
    try {
      const app = join(FIXTURES, 'resume-app.mjs');
      const first = await dispatchCli([...(await run()), '--', process.execPath, app, 'start'], { cwd: tmp.dir, env: cleanEnv });
      expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
      expect(first.stdout).toMatch(/\| double\(21\)$/m);
      expect(first.stderr).toMatch(/1 call\(s\) unfinished: they are kept in \.dispatch\/dispatch\.db and resume on the next `dispatch run` on this database/);

      // No --endpoint-addr: the address the database recorded on its first run.
      const second = await dispatchCli(['run', '--port', '0', '--', process.execPath, app, 'finish'], { cwd: tmp.dir, env: cleanEnv });
      expect(second.code, `${second.stdout}\n${second.stderr}`).toBe(0);
      expect(second.stderr).toMatch(/resuming 1 unfinished call\(s\) of an earlier run once the app listens on 127\.0\.0\.1:\d+/);
      expect(second.stdout).toMatch(/\| double\(42\)$/m);
      expect(second.stdout).not.toMatch(/double\(21\)/); // the first checkpoint is not run again
      expect(second.stdout).toMatch(/\| job returned 84$/m);
      expect(second.stderr).toMatch(/done job \S+ after 1 attempt and \d+ resumes → 84/);
    } finally {
      tmp.remove();
    }
  });
});

describe('the commands beside a dispatch run', () => {
  it('call finds the running app, suggests the function meant, and ls/get --db read the database once the run exited', async () => {
    const tmp = tempDir('beside');
    let p: Proc | undefined;
    try {
      p = start(process.execPath, [DISPATCH_BIN, ...(await run('--plain')), '--', process.execPath, join(FIXTURES, 'serve-app.mjs')], {
        cwd: tmp.dir,
        env: cleanEnv,
      });
      await p.waitFor(/\| ready$/);
      const cli = (...args: string[]) => dispatchCli(args, { cwd: tmp.dir, env: cleanEnv });

      // No --endpoint: the app of the dispatch run in this directory.
      const ok = await cli('call', 'checkout', '"u1"', '--wait');
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout.trim()).toBe('"order for u1"');
      const id = (await cli('call', 'checkout', '"u2"')).stdout.trim();
      expect(id).toMatch(/^\S+$/);

      // A typo is reported at once, without --wait, with the functions the app has.
      const typo = await cli('call', 'chekout', '"u1"');
      expect(typo.code).toBe(1);
      expect(typo.stderr).toMatch(/^chekout \S+ failed with NOT_FOUND: NOT_FOUND: .*function "chekout" does not exist on this endpoint: did you mean checkout\? \(its functions: checkout, refund\)$/m);

      await stop(p);
      expect(p.text()).toMatch(/node exited with code 0/);
      expect(existsSync(join(tmp.dir, '.dispatch', 'api.json'))).toBe(false);

      // The run has exited: ls and get read its database.
      const down = await cli('ls');
      expect(down.code).toBe(1);
      expect(down.stderr).toMatch(/no API key for the scheduler at .*; to read the calls a stopped `dispatch run` left here: --db \.dispatch\/dispatch\.db$/m);
      const ls = await cli('ls', '--db', '.dispatch/dispatch.db', '--json');
      expect(ls.code, ls.stderr).toBe(0);
      const page = JSON.parse(ls.stdout) as { calls: Array<{ function: string; state: string }>; counts: Record<string, number> };
      expect(page.calls.map((c) => `${c.function} ${c.state}`).sort()).toEqual(['checkout succeeded', 'checkout succeeded', 'chekout failed']);
      expect(page.counts).toMatchObject({ succeeded: 2, failed: 1 });
      const get = await cli('get', id, '--db', '.dispatch/dispatch.db');
      expect(get.code, get.stderr).toBe(0);
      expect(get.stdout).toMatch(/^checkout \S+\n {2}state {7}succeeded \(OK\)\n {2}attempts {4}1\n {2}resumes {5}0$/m);
      const missing = await cli('ls', '--db', 'nope.db');
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/no database at \S+nope\.db \(--db\)/);
    } finally {
      await stop(p);
      tmp.remove();
    }
  });

  it('resumes 100 unfinished calls of an earlier run only once the app listens: no TCP_ERROR attempt', async () => {
    const tmp = tempDir('restart');
    try {
      const app = join(FIXTURES, 'many-calls-app.mjs');
      const first = await dispatchCli([...(await run('--plain')), '--', process.execPath, app, 'start'], { cwd: tmp.dir, env: cleanEnv });
      expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
      expect(first.stdout).toMatch(/\| dispatched 100$/m);
      expect(first.stderr).toMatch(/100 call\(s\) unfinished/);

      const second = await dispatchCli(['run', '--port', '0', '--plain', '--', process.execPath, app, 'finish'], { cwd: tmp.dir, env: cleanEnv });
      expect(second.code, `${second.stdout}\n${second.stderr}`).toBe(0);
      expect(second.stderr).toMatch(/resuming 100 unfinished call\(s\) of an earlier run once the app listens on 127\.0\.0\.1:\d+/);
      expect(second.stdout).toMatch(/\| done 100$/m);

      const store = await SqliteStore.open({ path: join(tmp.dir, '.dispatch', 'dispatch.db') });
      try {
        // One attempt each, none refused by an endpoint not yet listening (the store's history, as `dispatch get` shows it).
        const ids = store.db.prepare('SELECT id FROM calls').pluck().all() as string[];
        expect(ids).toHaveLength(100);
        const histories = await Promise.all(ids.map((id) => store.getAttempts(id)));
        expect(histories.map((h) => h.map((a) => a.status))).toEqual(ids.map(() => [Status.OK]));
      } finally {
        await store.close();
      }
    } finally {
      tmp.remove();
    }
  });

  it('takes the retry and expiration flags of serve', async () => {
    const tmp = tempDir('flags');
    try {
      const flaky = `import { Dispatch, DispatchClient, TemporaryError } from '@dispatch/core';
        const d = new Dispatch();
        const down = d.function(async function down() { throw new TemporaryError('still down'); });
        await d.serve();
        const id = await down.dispatch();
        const outcome = await new DispatchClient({ apiUrl: d.config.apiUrl, apiKey: d.config.apiKey }).wait(id, { timeoutMs: 20000 });
        const info = await new DispatchClient({ apiUrl: d.config.apiUrl, apiKey: d.config.apiKey }).get(id);
        console.log(JSON.stringify({ status: outcome.statusName, attempts: info.attempts, message: info.error?.message }));
        process.exit(0);`;
      const r = await dispatchCli(
        [...(await run('--plain', '--max-attempts', '3', '--backoff-initial', '10ms', '--backoff-max', '20ms')), '--', process.execPath, '--input-type=module', '-e', flaky],
        { cwd: join(ROOT, 'test'), env: { ...cleanEnv } },
      );
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      const line = r.stdout.split('\n').find((l) => l.includes('{"status"'))!.replace(/^node +\| /, '');
      expect(JSON.parse(line)).toEqual({ status: 'TEMPORARY_ERROR', attempts: 3, message: 'still down' });
      expect(r.stderr).toMatch(/failed down \S+ after 3 attempts: TEMPORARY_ERROR TemporaryError: still down \(gave up after 3 consecutive failed attempts, the limit\)/);
      const bad = await dispatchCli(['run', '--default-expiration', 'soon', '--', 'true'], { cwd: tmp.dir, env: cleanEnv });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--default-expiration must be a duration such as 500ms, 30s, 10m, 1h30m or 2d .*got "soon"/);
    } finally {
      tmp.remove();
    }
  });
});

describe('dispatch serve and the commands that talk to it', () => {
  const tmp = tempDir('serve');
  let serve: Proc | undefined;
  let apiUrl = '';
  let apiKey = '';
  let verificationKey = '';
  let app: Dispatch;
  let endpoint: { url: string; close(): Promise<void> };
  const cli = (...args: string[]) => dispatchCli(args, { cwd: tmp.dir, env: cleanEnv });
  const json = <T = Record<string, unknown>>(r: { code: number; stdout: string; stderr: string }): T => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    serve = start(process.execPath, [DISPATCH_BIN, 'serve', '--port', '0', '--log-level', 'warn'], { cwd: tmp.dir, env: cleanEnv });
    apiUrl = /API URL\s+(\S+)/.exec(await serve.waitFor(/API URL/))![1]!;
    apiKey = /API key\s+(\S+)/.exec(await serve.waitFor(/API key/))![1]!;
    verificationKey = /verification key\s+(\S+)/.exec(await serve.waitFor(/verification key/))![1]!;
    await serve.waitFor(/dashboard/);
    // An app pointed at it as a deployment would be, on a free port.
    let listener: http.RequestListener = (_req, res) => res.end();
    const server = http.createServer((req, res) => listener(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    endpoint = {
      url,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
    app = new Dispatch({ env: {}, apiUrl, apiKey, endpointUrl: url, verificationKey, logger: silent });
    const add = app.function(function add(a: number, b: number) {
      return a + b;
    });
    app.function(async function addTwice(n: number) {
      return await add(await add(n, n), 1);
    });
    app.function(async function refuse(reason: string) {
      throw new PermanentError(reason);
    });
    app.function(async function nap() {
      await app.sleep('1h');
    });
    app.function(function echo(value: unknown) {
      return value;
    });
    listener = nodeListener(app);
  });
  afterAll(async () => {
    await endpoint?.close();
    await stop(serve);
    tmp.remove();
  });

  it('prints the API URL, the API key, the verification key and the dashboard', () => {
    expect(apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(apiKey).toMatch(/^dsk_/);
    expect(verificationKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(serve!.text()).toMatch(/dashboard\s+http:\/\/127\.0\.0\.1:\d+\/dashboard\//);
    const state = JSON.parse(readFileSync(join(tmp.dir, '.dispatch', 'api.json'), 'utf8')) as Record<string, unknown>;
    expect(state).toMatchObject({ apiUrl, apiKey, verificationKey });
  });

  it('call --wait prints the result; ARGs are JSON values; --json is machine-readable', async () => {
    const r = await cli('call', 'add', '2', '40', '--endpoint', endpoint.url, '--wait');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('42');
    const j = json(await cli('call', 'add', '2', '40', '--endpoint', endpoint.url, '--wait', '--json'));
    expect(j).toMatchObject({ done: true, state: 'succeeded', status: 'OK', output: 42, error: null });
    expect(j.dispatchId).toMatch(/^\S+$/);
    // --input sends one raw google.protobuf.Value.
    const raw = json(await cli('call', 'echo', '--input', '{"a":[1,"x",null]}', '--endpoint', endpoint.url, '--wait', '--json'));
    expect(raw.output).toEqual({ a: [1, 'x', null] });
  });

  it('call --wait exits 1 with the error of a failed call', async () => {
    const r = await cli('call', 'refuse', '"no stock"', '--endpoint', endpoint.url, '--wait');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^refuse \S+ failed with PERMANENT_ERROR: PermanentError: no stock$/m);
  });

  it('get --json shows status, attempts, the decoded output, parent and children', async () => {
    const { dispatchId } = json<{ dispatchId: string }>(await cli('call', 'addTwice', '5', '--endpoint', endpoint.url, '--wait', '--json'));
    const info = json(await cli('get', dispatchId, '--json'));
    expect(info).toMatchObject({
      dispatchId,
      function: 'addTwice',
      state: 'succeeded',
      status: 'OK',
      attempts: 1,
      resumes: 2,
      parent: null,
      input: [5],
      output: 11,
      error: null,
    });
    const children = info.children as string[];
    expect(children).toHaveLength(2);
    const child = json(await cli('get', children[0]!, '--json'));
    expect(child).toMatchObject({ function: 'add', parent: dispatchId, root: dispatchId, input: [5, 5], output: 10, attempts: 1 });
    expect((info.attemptHistory as Array<{ outcome: string }>).map((a) => a.outcome)).toEqual(['suspend', 'suspend', 'exit']);
    const refused = await cli('call', 'refuse', '"closed"', '--endpoint', endpoint.url, '--wait', '--json');
    expect(refused.code).toBe(1); // --wait: non-zero when the call failed, with --json too
    const failed = JSON.parse(refused.stdout) as { dispatchId: string; status: string; error: { name: string } };
    expect(failed).toMatchObject({ status: 'PERMANENT_ERROR', error: { name: 'PermanentError', message: 'closed' } });
    expect(json(await cli('get', failed.dispatchId, '--json'))).toMatchObject({
      state: 'failed',
      status: 'PERMANENT_ERROR',
      output: null,
      error: { name: 'PermanentError', message: 'closed' },
    });
    const text = await cli('get', dispatchId);
    expect(text.stdout).toMatch(/^addTwice \S+\n {2}state {7}succeeded \(OK\)/);
    expect(text.stdout).toMatch(/ {2}output {6}11/);
  });

  it('ls lists calls newest first, filtered by state and function, as a table or JSON', async () => {
    // Calls of its own, so that each filter has calls to keep and calls to leave out.
    const added = json<{ dispatchId: string }>(await cli('call', 'add', '1', '2', '--endpoint', endpoint.url, '--wait', '--json')).dispatchId;
    const twice = json<{ dispatchId: string }>(await cli('call', 'addTwice', '3', '--endpoint', endpoint.url, '--wait', '--json')).dispatchId;
    const refused = JSON.parse((await cli('call', 'refuse', '"listed"', '--endpoint', endpoint.url, '--wait', '--json')).stdout) as { dispatchId: string };
    type Listed = { dispatchId: string; function: string; state: string; parent: string | null };
    const page = json<{ calls: Listed[]; counts: Record<string, number> }>(await cli('ls', '--json', '--limit', '100'));
    const show = (c: Listed) => `${c.function} ${c.dispatchId} ${c.state} (parent ${c.parent})`;
    const at = (id: string) => page.calls.findIndex((c) => c.dispatchId === id);
    expect([at(refused.dispatchId), at(twice), at(added)].every((i) => i >= 0)).toBe(true);
    expect(at(refused.dispatchId)).toBeLessThan(at(twice)); // newest first
    expect(at(twice)).toBeLessThan(at(added));
    expect(page.counts.succeeded).toBeGreaterThan(0);
    const failed = json<{ calls: Listed[] }>(await cli('ls', '--json', '--state', 'failed'));
    expect(failed.calls.map((c) => c.dispatchId)).toContain(refused.dispatchId);
    expect(failed.calls.filter((c) => c.state !== 'failed' || c.function !== 'refuse').map(show)).toEqual([]);
    const adds = json<{ calls: Listed[] }>(await cli('ls', '--json', '--function', 'add', '--roots'));
    expect(adds.calls.map((c) => c.dispatchId)).toContain(added);
    expect(adds.calls.filter((c) => c.function !== 'add' || c.parent !== null).map(show)).toEqual([]);
    const children = json<{ children: string[] }>(await cli('get', twice, '--json')).children;
    expect(children).toHaveLength(2);
    expect(adds.calls.map((c) => c.dispatchId).filter((id) => children.includes(id))).toEqual([]); // --roots leaves out addTwice's adds
    const table = await cli('ls');
    expect(table.stdout).toMatch(/^DISPATCH ID\s+FUNCTION\s+STATE\s+STATUS\s+ATTEMPTS\s+RESUMES\s+CREATED/);
    expect(table.stdout).toMatch(/\d+ succeeded/);
    // The footer counts what was asked: the states asked for (even at 0), of the function asked for.
    const none = await cli('ls', '--state', 'cancelled', '--function', 'add');
    expect(none.stdout.trimEnd()).toBe('no calls match\n\n0 cancelled (function add)');
    const some = await cli('ls', '--state', 'failed,succeeded', '--function', 'refuse');
    expect(some.stdout.trim().split('\n').at(-1)).toMatch(/^0 succeeded · [1-9]\d* failed \(function refuse\)$/);
  });

  it('cancel cancels a sleeping call', async () => {
    const id = (await cli('call', 'nap', '--endpoint', endpoint.url)).stdout.trim();
    await until(async () => json<{ state: string }>(await cli('get', id, '--json')).state === 'suspended', 'the nap to sleep (suspended)');
    const r = await cli('cancel', id);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`cancelled ${id}`);
    expect(json(await cli('get', id, '--json'))).toMatchObject({ state: 'cancelled', error: { name: 'CancelledError' } });
    expect((await cli('cancel', id)).stdout.trim()).toBe(`${id} had already finished: nothing to cancel`);
  });

  it('verification-key asks the running scheduler, which holds the database', async () => {
    const r = await cli('verification-key');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(verificationKey);
  });

  it('takes --api-url/--api-key or DISPATCH_API_URL/DISPATCH_API_KEY from anywhere', async () => {
    const elsewhere = tempDir('elsewhere');
    try {
      const flags = await dispatchCli(['ls', '--json', '--api-url', apiUrl, '--api-key', apiKey], { cwd: elsewhere.dir, env: cleanEnv });
      expect(flags.code, flags.stderr).toBe(0);
      const env = await dispatchCli(['ls', '--json'], { cwd: elsewhere.dir, env: { ...cleanEnv, DISPATCH_API_URL: apiUrl, DISPATCH_API_KEY: apiKey } });
      expect(env.code, env.stderr).toBe(0);
      const none = await dispatchCli(['ls'], { cwd: elsewhere.dir, env: { ...cleanEnv, DISPATCH_API_URL: apiUrl } });
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/no API key for the scheduler at http:\/\/127\.0\.0\.1:\d+: set DISPATCH_API_KEY or pass --api-key/);
    } finally {
      elsewhere.remove();
    }
  });

  it('says what to do about a bad key, an unreachable scheduler, a bad argument, a missing endpoint or an unknown ID', async () => {
    const badKey = await cli('ls', '--api-url', apiUrl, '--api-key', 'wrong-key');
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toMatch(/refused the API key wro\*+: use the key it printed at startup, through DISPATCH_API_KEY or --api-key/);
    const port = await freePort();
    const down = await cli('get', 'x', '--api-url', `http://127.0.0.1:${port}`, '--api-key', 'k');
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`cannot reach the scheduler at http://127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\): start one with \`dispatch serve\``));
    const badArg = await cli('call', 'add', 'two', '40', '--endpoint', endpoint.url);
    expect(badArg.code).toBe(2);
    expect(badArg.stderr).toMatch(/argument 1 is not JSON: two; each argument is one JSON value, so quote strings for the shell: '"two"'/);
    const badInput = await cli('call', 'echo', '--input', '{bad json', '--endpoint', endpoint.url);
    expect(badInput.code).toBe(2);
    expect(badInput.stderr).toMatch(
      /^dispatch: --input is not valid JSON: .*position 1.*\n {2}\{bad json\n {3}\^\nObject keys and strings need double quotes \('\{"name":"Ada"\}'\), and the shell needs single quotes around the whole value\.$/m,
    );
    const noEndpoint = await cli('call', 'add', '1', '2');
    expect(noEndpoint.code).toBe(2);
    expect(noEndpoint.stderr).toMatch(/--endpoint is required: the URL of the app that serves add/);
    const unknown = await cli('get', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no call with dispatch ID "nope"/);
  });

  it('says when the port is taken or the database is in use', async () => {
    const port = apiUrl.split(':').pop()!;
    const taken = await cli('serve', '--port', port, '--db', 'another.db');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use: stop what listens there or choose another port.*--port N`));
    const locked = await cli('serve', '--port', '0');
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/the database \S+dispatch\.db is in use by another scheduler process.*stop that process or choose another database file/);
  });
});
