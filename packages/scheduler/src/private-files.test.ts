import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { preparePrivateDirectory, preparePrivateFile, UnsafeDirectoryError } from './private-files.js';
import { SqliteStore } from './store/sqlite/sqlite-store.js';

const root = mkdtempSync(join(tmpdir(), 'dispatch-private-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const mode = (path: string) => statSync(path).mode & 0o777;

describe('private files', () => {
  it('creates a directory 0700 and a file 0600, whatever the umask', () => {
    const old = process.umask(0o000);
    try {
      const dir = join(root, 'created', 'deep');
      expect(preparePrivateDirectory(dir)).toBeUndefined();
      expect(mode(dir)).toBe(0o700);
      preparePrivateFile(join(dir, 'x.db'));
      expect(mode(join(dir, 'x.db'))).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it('tightens an existing .dispatch/ and wider files; refuses a directory others may write to; warns about one they may list', () => {
    const own = join(root, 'project', '.dispatch');
    mkdirSync(own, { recursive: true });
    chmodSync(own, 0o755);
    expect(preparePrivateDirectory(own)).toBeUndefined();
    expect(mode(own)).toBe(0o700);
    writeFileSync(join(own, 'old.db'), '');
    chmodSync(join(own, 'old.db'), 0o644);
    preparePrivateFile(join(own, 'old.db'));
    expect(mode(join(own, 'old.db'))).toBe(0o600);

    const shared = join(root, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    expect(() => preparePrivateDirectory(shared)).toThrow(UnsafeDirectoryError);
    expect(() => preparePrivateDirectory(shared)).toThrow(`the directory ${shared} (mode 0777) can be written by other users`);
    chmodSync(shared, 0o1777); // sticky, like /tmp: others cannot replace what is not theirs
    expect(preparePrivateDirectory(shared)).toMatch(/can be listed by other users/);

    const project = join(root, 'project');
    chmodSync(project, 0o755);
    expect(preparePrivateDirectory(project)).toMatch(`the directory ${project} (mode 0755) can be listed by other users`);
    expect(mode(project)).toBe(0o755); // not ours to change
  });

  it('the SQLite store: database and WAL 0600 in a 0700 directory, and a refusal for a shared directory', async () => {
    const dir = join(root, 'store', '.dispatch');
    const store = await SqliteStore.open({ path: join(dir, 'dispatch.db') });
    try {
      await store.initMeta('k', 'v');
      expect(mode(dir)).toBe(0o700);
      expect(mode(join(dir, 'dispatch.db'))).toBe(0o600);
      expect(mode(join(dir, 'dispatch.db-wal'))).toBe(0o600);
    } finally {
      await store.close();
    }
    const shared = join(root, 'open-to-all');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    await expect(SqliteStore.open({ path: join(shared, 'x.db') })).rejects.toThrow(/can be written by other users/);
    const warnings: string[] = [];
    const listed = join(root, 'listed');
    mkdirSync(listed);
    chmodSync(listed, 0o755);
    const store2 = await SqliteStore.open({ path: join(listed, 'x.db'), onWarning: (m) => warnings.push(m) });
    await store2.close();
    expect(warnings).toEqual([expect.stringMatching(/can be listed by other users; the database files are 0600/)]);
  });
});
