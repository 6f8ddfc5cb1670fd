/**
 * Secrets with real processes: the files `dispatch run` writes are readable
 * by their owner only, the app it starts gets no secret of the shell,
 * `dispatch serve` shows a database password as `***` in everything it
 * prints, and keys come from the environment or files rather than flags.
 */
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DispatchClient } from '@dispatch/core';
import { generateSigningKeyPair, privateKeyToPem, publicKeyToBase64 } from '@dispatch/core/protocol';
import { randomPgSchema, dropPgSchema } from '../../packages/scheduler/test/support/pg-cluster.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLEAN_ENV, DISPATCH_BIN, dispatchCli, freePort, requireBuilt, start, tempDir } from './helpers/processes.js';

const cleanEnv = CLEAN_ENV;

const mode = (path: string) => `0${(statSync(path).mode & 0o777).toString(8)}`;

beforeAll(() => requireBuilt());

describe('dispatch run', () => {
  it('keeps its database, WAL and state file 0600 in a 0700 directory (tightening a .dispatch/ left wider), and hands the app no secret of the shell', async () => {
    const tmp = tempDir('secrets');
    try {
      // What an older version left: a world-readable directory and database.
      const dir = join(tmp.dir, '.dispatch');
      mkdirSync(dir, { mode: 0o755 });
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, 'dispatch.db'), '', { mode: 0o644 });
      chmodSync(join(dir, 'dispatch.db'), 0o644);
      const report = join(tmp.dir, 'report.json');
      // The app looks while the scheduler runs: the modes of the files, and the DISPATCH_* variables it was given.
      const app = `
        const fs = require('node:fs');
        const dir = '.dispatch';
        const modes = {};
        for (const f of ['', '/dispatch.db', '/dispatch.db-wal', '/dispatch.db-shm', '/api.json']) {
          try { modes[dir + f] = '0' + (fs.statSync(dir + f).mode & 0o777).toString(8); } catch {}
        }
        const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('DISPATCH_')));
        fs.writeFileSync(process.argv[1], JSON.stringify({ modes, env }));`;
      const signing = privateKeyToPem(generateSigningKeyPair().privateKey);
      const shell = { ...cleanEnv, DISPATCH_SIGNING_KEY: signing, DISPATCH_OTHER_SECRET: 'shell-secret-value', DISPATCH_API_KEY: 'the-shell-api-key-0123456789' };
      const r = await dispatchCli(['run', '--port', '0', '--endpoint-addr', `127.0.0.1:${await freePort()}`, '--', process.execPath, '-e', app, report], { cwd: tmp.dir, env: shell });
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      const seen = JSON.parse(readFileSync(report, 'utf8')) as { modes: Record<string, string>; env: Record<string, string> };
      console.info(`files of dispatch run, as the app saw them: ${JSON.stringify(seen.modes)}`);
      expect(seen.modes).toMatchObject({
        '.dispatch': '0700',
        '.dispatch/dispatch.db': '0600',
        '.dispatch/dispatch.db-wal': '0600',
        '.dispatch/api.json': '0600',
      });
      for (const [file, m] of Object.entries(seen.modes)) if (file !== '.dispatch') expect(m, file).toBe('0600');
      // The app gets its own configuration, and nothing else of the shell's DISPATCH_* variables.
      expect(Object.keys(seen.env).sort()).toEqual([
        'DISPATCH_API_KEY',
        'DISPATCH_API_URL',
        'DISPATCH_ENDPOINT_ADDR',
        'DISPATCH_ENDPOINT_URL',
        'DISPATCH_VERIFICATION_KEY',
      ]);
      expect(seen.env.DISPATCH_API_KEY).toMatch(/^dsk_/); // the scheduler's, not the shell's
      expect(JSON.stringify(seen.env)).not.toContain('BEGIN PRIVATE KEY');
      // After the run: the files stay private.
      expect(mode(dir)).toBe('0700');
      expect(mode(join(dir, 'dispatch.db'))).toBe('0600');
    } finally {
      tmp.remove();
    }
  });

  it('refuses a database in a directory other users may write to, saying why and what to do', async () => {
    const tmp = tempDir('shared');
    try {
      const shared = join(tmp.dir, 'shared');
      mkdirSync(shared);
      chmodSync(shared, 0o777);
      const r = await dispatchCli(['run', '--port', '0', '--endpoint-addr', `127.0.0.1:${await freePort()}`, '--db', 'shared/app.db', '--', process.execPath, '-e', ''], { cwd: tmp.dir, env: cleanEnv });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`the directory ${shared} (mode 0777) can be written by other users, who could replace the database`);
      expect(r.stderr).toContain(`chmod 700 ${shared}`);
    } finally {
      tmp.remove();
    }
  });
});

describe('dispatch serve and its keys', () => {
  it('takes keys from files and the environment; refuses --signing-key and short keys, warns about --api-key', async () => {
    const tmp = tempDir('keys');
    try {
      const keys = generateSigningKeyPair();
      writeFileSync(join(tmp.dir, 'signing.pem'), privateKeyToPem(keys.privateKey), { mode: 0o600 });
      writeFileSync(join(tmp.dir, 'api-keys'), '# keys of the apps\nfirst-key-0123456789\nsecond-key-0123456789\n', { mode: 0o600 });
      const serve = start(
        process.execPath,
        [DISPATCH_BIN, 'serve', '--db', ':memory:', '--port', '0', '--ready-json', '--api-key-file', 'api-keys', '--signing-key-file', 'signing.pem'],
        { cwd: tmp.dir, env: cleanEnv },
      );
      try {
        const ready = JSON.parse(await serve.waitFor(/^\{/)) as { url: string; apiKey: string; verificationKey: string };
        expect(ready.apiKey).toBe('first-key-0123456789');
        expect(ready.verificationKey).toBe(publicKeyToBase64(keys.publicKey));
        await new DispatchClient({ apiUrl: ready.url, apiKey: 'second-key-0123456789' }).list();
      } finally {
        serve.kill('SIGTERM');
        await serve.exited;
      }

      const flag = await dispatchCli(['serve', '--db', ':memory:', '--signing-key', privateKeyToPem(keys.privateKey)], { cwd: tmp.dir, env: cleanEnv });
      expect(flag.code).toBe(2);
      expect(flag.stderr).toMatch(/--signing-key is refused: a private key on the command line can be read by every user of this machine \(ps\)/);
      expect(flag.stderr).not.toContain('BEGIN PRIVATE KEY');

      const short = await dispatchCli(['serve', '--db', ':memory:', '--port', '0', '--api-key', 'K1'], { cwd: tmp.dir, env: cleanEnv });
      expect(short.code).toBe(2);
      expect(short.stderr).toMatch(/warning: --api-key shows the key to every user of this machine \(ps\)/);
      expect(short.stderr).toMatch(/the API key has 2 characters; API keys need at least 16/);
      expect(short.stderr).not.toMatch(/\bK1\b/);
    } finally {
      tmp.remove();
    }
  });
});

const pgUrl = process.env.DISPATCH_TEST_POSTGRES_URL;
if (!pgUrl) console.warn('PostgreSQL password redaction test SKIPPED: DISPATCH_TEST_POSTGRES_URL is not set (.ci/run sets it)');

describe.skipIf(!pgUrl)('dispatch serve on PostgreSQL with a password in the URL', () => {
  const PASSWORD = 'hunter2-Secret-pw';

  it('shows the password as *** in every line it prints: banner, logs, errors', async () => {
    const schema = randomPgSchema('dispatch_redact');
    const url = new URL(pgUrl!);
    url.password = PASSWORD; // the local server trusts the user: the password is given, and ignored
    url.searchParams.set('schema', schema);
    const serve = start(process.execPath, [DISPATCH_BIN, 'serve', '--db', url.href, '--port', '0', '--log-level', 'debug'], { env: cleanEnv });
    try {
      await serve.waitFor(/^Start an app with:/);
      const apiKey = /API key +(\S+)/.exec(serve.stdout.join('\n'))![1]!;
      const apiUrl = /API URL +(\S+)/.exec(serve.stdout.join('\n'))![1]!;
      // Some work, so that the debug log has lines about calls.
      const client = new DispatchClient({ apiUrl, apiKey });
      await client.dispatch([{ function: 'f', endpoint: 'http://127.0.0.1:1' }]);
      await serve.waitFor(/dispatched 1 call/);
    } finally {
      serve.kill('SIGTERM');
      await serve.exited;
      await dropPgSchema(pgUrl!, schema);
    }
    const all = serve.text();
    console.info(`dispatch serve printed ${serve.all.length} lines; the database line: ${serve.stdout.find((l) => l.includes('database'))?.trim()}`);
    expect(all).toContain(`postgres://${url.username}:***@${url.host}`);
    expect(all).not.toContain(PASSWORD);

    // Errors too: a server that is not there, the password given both ways.
    for (const db of [`postgres://app:${PASSWORD}@127.0.0.1:1/nowhere`, `postgres://app@127.0.0.1:1/nowhere?password=${PASSWORD}`]) {
      const failed = await dispatchCli(['serve', '--db', db, '--port', '0'], { env: cleanEnv });
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/cannot connect to PostgreSQL at postgres:\/\/app(:\*\*\*)?@127\.0\.0\.1:1\/nowhere/);
      expect(`${failed.stdout}\n${failed.stderr}`).not.toContain(PASSWORD);
      expect(failed.stderr).toContain('***');
    }
  });
});
