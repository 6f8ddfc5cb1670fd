/**
 * Where `dispatch get` and `dispatch ls` read calls: a running scheduler
 * through its API, or, with `--db`, a database directly — the one a
 * stopped `dispatch run` left behind (if the scheduler that owns it still
 * runs, its API is asked instead).
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { CallState, ListCallsOptions, proto } from '@dispatch/core/protocol';
import { api, apiClient, type ApiFlags, CLI_STATE_FILE, CliError, type CliIO, type CliState } from './common.js';
import { toCallInfo } from '../api/call-info.js';
import { addLimitWaits } from '../api/limit-info.js';
import { isPgUrl, PgStore, redactUrl } from '../store/pg/pg-store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/store.js';
import { SCHEDULER_DEFAULTS } from '../options.js';

/** A page of calls, as the API's `CallInfo` messages. */
export interface CallInfoPage {
  calls: proto.ICallInfo[];
  nextCursor: string | null;
  /** Calls per state matching the filter without its states and cursor. */
  counts: Record<CallState, number>;
}

/**
 * What `get` and `ls` read from.
 * @example
 * const source = await callSource(flags, io);
 * try { print(io, formatCallInfo(await source.get(id))); } finally { await source.close(); }
 */
export interface CallSource {
  get(id: string): Promise<proto.ICallInfo>;
  list(options: ListCallsOptions): Promise<CallInfoPage>;
  close(): Promise<void>;
}

/** Flags of the commands that read calls. */
export interface CallSourceFlags extends ApiFlags {
  /** A database to read directly (SQLite file or postgres:// URL). */
  db?: string;
}

/**
 * The source the flags name: `--db` reads a database (or the API of the
 * scheduler that still owns it), else the API of a running scheduler.
 * @example
 * const source = await callSource({ db: '.dispatch/dispatch.db' }, io);
 */
export async function callSource(flags: CallSourceFlags, io: CliIO): Promise<CallSource> {
  if (flags.db === undefined) return apiSource(flags, io);
  if (isPgUrl(flags.db)) return storeSource(await openPg(flags.db), redactUrl(flags.db));
  const path = resolve(io.cwd, flags.db);
  if (!existsSync(path)) throw new CliError(`no database at ${path} (--db): \`dispatch run\` and \`dispatch serve\` create ${SCHEDULER_DEFAULTS.db} in the directory they run in`);
  // The scheduler that owns it, if it still runs, answers for it.
  const owner = liveOwner(path);
  if (owner) return apiSource({ apiUrl: owner.apiUrl, apiKey: owner.apiKey }, io);
  let store: SqliteStore;
  try {
    store = await SqliteStore.open({ path });
  } catch (err) {
    const message = (err as Error).message;
    if (/in use by another scheduler/.test(message)) {
      throw new CliError(`${message}: while it runs, ask it through its API (drop --db in the directory it runs in, or pass --api-url and --api-key)`);
    }
    throw new CliError(`cannot read the database ${path}: ${message}`);
  }
  return storeSource(store, path);
}

/**
 * The API of a running scheduler. When none can be asked (no key, or
 * unreachable) and a stopped `dispatch run` left its database here, the
 * error says to read it with `--db`.
 */
function apiSource(flags: ApiFlags, io: CliIO): CallSource {
  const withHint = (err: unknown): unknown => {
    const local = resolve(io.cwd, SCHEDULER_DEFAULTS.db);
    if (err instanceof CliError && /cannot reach the scheduler|no API key/.test(err.message) && existsSync(local)) {
      return new CliError(`${err.message}; to read the calls a stopped \`dispatch run\` left here: --db ${SCHEDULER_DEFAULTS.db}`, err.exitCode);
    }
    return err;
  };
  let client: ReturnType<typeof apiClient>;
  try {
    client = apiClient(flags, io);
  } catch (err) {
    throw withHint(err);
  }
  const hint = async <T>(request: () => Promise<T>): Promise<T> => {
    try {
      return await api(request);
    } catch (err) {
      throw withHint(err);
    }
  };
  return {
    get: async (id) => (await hint(() => client.get(id))).raw,
    list: async (options) => {
      const page = await hint(() => client.list(options));
      return { calls: page.calls.map((c) => c.raw), nextCursor: page.nextCursor, counts: page.counts };
    },
    close: async () => {},
  };
}

/** A store read directly. */
function storeSource(store: Store, shown: string): CallSource {
  return {
    get: async (id) => {
      const rec = await store.getCall(id);
      if (!rec) throw new CliError(`no call with dispatch ID ${JSON.stringify(id)} in ${shown}`);
      const [attempts, children] = await Promise.all([store.getAttempts(id), store.getChildren(id)]);
      const info = toCallInfo(rec, { attempts, children });
      await addLimitWaits(store, [rec], [info], Date.now());
      return info;
    },
    list: async (options) => {
      try {
        const page = await store.listCalls({
          ...(options.states?.length ? { states: [...options.states] } : {}),
          ...(options.function ? { function: options.function } : {}),
          ...(options.limit ? { limit: options.limit } : {}),
          ...(options.cursor ? { cursor: options.cursor } : {}),
          ...(options.rootsOnly ? { rootsOnly: true } : {}),
        });
        const calls = page.calls.map((c) => toCallInfo(c));
        await addLimitWaits(store, page.calls, calls, Date.now());
        return { calls, nextCursor: page.nextCursor, counts: page.counts };
      } catch (err) {
        if (err instanceof RangeError) throw new CliError(err.message, 2);
        throw err;
      }
    },
    close: () => store.close(),
  };
}

async function openPg(url: string): Promise<PgStore> {
  try {
    return await PgStore.open({ url, listen: false, poolSize: 1 });
  } catch (err) {
    throw new CliError(`cannot read ${redactUrl(url)}: ${(err as Error).message}`);
  }
}

/** The state file of a scheduler still running on the database at `path`, if any. */
function liveOwner(path: string): CliState | null {
  try {
    const state = JSON.parse(readFileSync(join(dirname(path), CLI_STATE_FILE), 'utf8')) as CliState;
    if (resolve(state.db) !== path || !isAlive(state.pid)) return null;
    return state;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
