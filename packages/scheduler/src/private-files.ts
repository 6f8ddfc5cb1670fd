/**
 * Files that hold secrets (the SQLite database and its WAL keep the signing
 * key and the API keys; `.dispatch/api.json` keeps the API key) are readable
 * by their owner only: 0600, in a 0700 directory.
 *
 * - A file is created 0600; an existing one with wider modes is tightened.
 * - A directory the scheduler creates is 0700, and so is an existing
 *   `.dispatch/` (the scheduler's own, tightened: older versions made it
 *   0755).
 * - Another existing directory is not changed (it may be a project's own):
 *   it is refused if other users may write to it (they could replace the
 *   database), and a warning says so if they may list it.
 * @module
 */
import { chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { basename } from 'node:path';

/** Mode of a file holding secrets. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of the directory holding them. */
export const PRIVATE_DIR_MODE = 0o700;
/** The scheduler's own directory name (`.dispatch/` under the working directory): tightened when found wider. */
export const OWN_DIRECTORY_NAME = '.dispatch';

/**
 * Thrown when a directory cannot safely hold the scheduler's files.
 * @example
 * try { preparePrivateDirectory(dir); } catch (err) { if (err instanceof UnsafeDirectoryError) console.error(err.message); }
 */
export class UnsafeDirectoryError extends Error {
  override name = 'UnsafeDirectoryError';
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/**
 * Makes `dir` fit for secrets (see the module comment) and answers a
 * warning to log, if any. Throws {@link UnsafeDirectoryError} for a
 * directory others may write to.
 * @example
 * const warning = preparePrivateDirectory('/srv/app/.dispatch');
 */
export function preparePrivateDirectory(dir: string): string | undefined {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    chmodSync(dir, PRIVATE_DIR_MODE); // the umask may have taken bits off, never added: make it exact
    return undefined;
  }
  const stat = statSync(dir);
  if (!stat.isDirectory()) throw new UnsafeDirectoryError(`${dir} is not a directory`);
  const mode = stat.mode & 0o777;
  if ((mode & 0o077) === 0) return undefined;
  const mine = typeof process.getuid !== 'function' || stat.uid === process.getuid();
  if (mine && basename(dir) === OWN_DIRECTORY_NAME) {
    chmodSync(dir, PRIVATE_DIR_MODE);
    return undefined;
  }
  const sticky = (stat.mode & 0o1000) !== 0; // S_ISVTX: others cannot remove or rename what is not theirs
  if ((mode & 0o022) !== 0 && !sticky) {
    throw new UnsafeDirectoryError(
      `the directory ${dir} (mode ${octal(mode)}) can be written by other users, who could replace the database or its state file: ` +
        `run chmod 700 ${dir}, or keep the database in a directory of its own (the default .dispatch/ is made 0700)`,
    );
  }
  return (
    `the directory ${dir} (mode ${octal(mode)}) can be listed by other users; the database files are 0600, so they cannot read them, ` +
    `but a directory of its own is safer: chmod 700 ${dir}, or use the default .dispatch/`
  );
}

/**
 * Creates `file` empty with mode 0600 if it does not exist, and tightens an
 * existing one to 0600.
 * @example
 * preparePrivateFile('/srv/app/.dispatch/dispatch.db');
 */
export function preparePrivateFile(file: string): void {
  closeSync(openSync(file, constants.O_CREAT | constants.O_RDWR, PRIVATE_FILE_MODE));
  tightenFile(file);
}

/**
 * Tightens `file` to 0600 if it exists with wider modes (a WAL written by an
 * older version, say).
 * @example
 * tightenFile(`${dbPath}-wal`);
 */
export function tightenFile(file: string): void {
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    return; // absent
  }
  if ((mode & 0o077) !== 0) chmodSync(file, PRIVATE_FILE_MODE);
}
