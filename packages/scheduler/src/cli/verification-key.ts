/**
 * `dispatch verification-key`: prints the public key apps verify the
 * scheduler's requests with (`DISPATCH_VERIFICATION_KEY`).
 * @module
 */
import { createPublicKey } from 'node:crypto';
import { relative, resolve } from 'node:path';
import {
  DEFAULT_API_URL,
  DispatchClient,
  generateSigningKeyPair,
  parseSigningKey,
  parseVerificationKey,
  privateKeyToPem,
  publicKeyToBase64,
  publicKeyToPem,
} from '@dispatch/core/protocol';
import type { Command } from 'commander';
import { api, CliError, type CliContext, type CliIO, print, readStateFile } from './common.js';
import { SCHEDULER_DEFAULTS } from '../options.js';
import { isPgUrl } from '../store/pg/pg-store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';

/** Flags of `dispatch verification-key`. */
export interface VerificationKeyFlags {
  db?: string;
  pem?: boolean;
  apiUrl?: string;
}

/**
 * Declares `dispatch verification-key` on the program.
 * @example
 * addVerificationKeyCommand(program, cli);
 */
export function addVerificationKeyCommand(program: Command, cli: CliContext): void {
  program
    .command('verification-key')
    .description('print the public key apps verify requests with (DISPATCH_VERIFICATION_KEY)')
    .option('--db <path|url>', "the scheduler's database (its key pair is created on first use); a postgres:// URL asks the scheduler at --api-url", SCHEDULER_DEFAULTS.db)
    .option('--api-url <url>', 'ask a running scheduler instead of reading the database')
    .option('--pem', 'print PEM instead of base64')
    .action((flags: VerificationKeyFlags) => cli.done(verificationKeyCommand(flags, cli.io)));
}

/**
 * Runs `dispatch verification-key`: reads the database (creating the key
 * pair on first use, as the scheduler would); a database held by a running
 * scheduler, a PostgreSQL database or `--api-url` ask a scheduler's API
 * instead. Resolves to the exit code.
 * @example
 * await verificationKeyCommand({ pem: true }, io);
 */
export async function verificationKeyCommand(flags: VerificationKeyFlags, io: CliIO): Promise<number> {
  const dbFlag = flags.db ?? SCHEDULER_DEFAULTS.db;
  if (isPgUrl(dbFlag) || flags.apiUrl) {
    return verificationKeyFromApi(flags.apiUrl ?? io.env.DISPATCH_API_URL ?? DEFAULT_API_URL, flags, io, null);
  }
  const db = resolve(io.cwd, dbFlag);
  let store: SqliteStore;
  try {
    store = await SqliteStore.open({ path: db });
  } catch (err) {
    const message = (err as Error).message;
    if (!/in use by another scheduler/.test(message)) throw new CliError(message);
    // A running scheduler holds the file: ask it.
    const state = readStateFile(io.cwd);
    const url = state && resolve(state.db) === db ? state.apiUrl : (io.env.DISPATCH_API_URL ?? DEFAULT_API_URL);
    return verificationKeyFromApi(url, flags, io, db);
  }
  try {
    const existing = await store.getMeta('signing_key');
    const pem = existing ?? (await store.initMeta('signing_key', privateKeyToPem(generateSigningKeyPair().privateKey)));
    const publicKey = createPublicKey(parseSigningKey(pem));
    print(io, flags.pem ? publicKeyToPem(publicKey).trimEnd() : publicKeyToBase64(publicKey));
    if (!existing) {
      const rel = relative(io.cwd, db);
      io.stderr.write(`created a signing key pair in ${rel && !rel.startsWith('..') ? rel : db}; the scheduler started on it signs with it\n`);
    }
    return 0;
  } finally {
    await store.close();
  }
}

async function verificationKeyFromApi(url: string, flags: VerificationKeyFlags, io: CliIO, db: string | null): Promise<number> {
  let client: DispatchClient;
  try {
    client = new DispatchClient({ apiUrl: url, apiKey: '' });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const health = await api(() => client.health()).catch((err: Error) => {
    throw new CliError(db ? `${db} is in use by a running scheduler, and asking it failed: ${err.message}` : err.message);
  });
  if (!health.verificationKey) throw new CliError(`the scheduler at ${url} does not tell its verification key (an older version?)`);
  print(io, flags.pem ? publicKeyToPem(parseVerificationKey(health.verificationKey)).trimEnd() : health.verificationKey);
  return 0;
}
