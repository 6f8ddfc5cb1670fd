/**
 * Configuration from options and the environment (PROTOCOL.md 4.1): options
 * win over `DISPATCH_*` variables; a value that is required and missing is a
 * clear error naming the variable to set, raised when it is first needed.
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { DEFAULT_MAX_BODY_BYTES } from '../protocol/constants.js';
import { parseVerificationKey } from '../signature/signature.js';

/**
 * Default API URL: the local scheduler started by `dispatch run` / `dispatch serve`.
 * @example const apiUrl = process.env.DISPATCH_API_URL ?? DEFAULT_API_URL;
 */
export const DEFAULT_API_URL = 'http://127.0.0.1:4450';
/**
 * Default address the endpoint binds (`DISPATCH_ENDPOINT_ADDR`).
 * @example parseAddress(DEFAULT_ENDPOINT_ADDR) // { host: '127.0.0.1', port: 8000 }
 */
export const DEFAULT_ENDPOINT_ADDR = '127.0.0.1:8000';
/**
 * The value of `DISPATCH_VERIFICATION_KEY` that opts out of verification:
 * unsigned requests are accepted from any address (the option's form is
 * `verificationKey: false`).
 * @example DISPATCH_VERIFICATION_KEY=none node app.js
 */
export const VERIFICATION_OPT_OUT = 'none';

/**
 * Options of a {@link Dispatch} instance. Each one overrides its environment
 * variable.
 *
 * @example
 * ```ts
 * const dispatch = new Dispatch({
 *   apiKey: process.env.MY_KEY,                 // else DISPATCH_API_KEY
 *   apiUrl: 'http://127.0.0.1:4450',            // else DISPATCH_API_URL
 *   endpointUrl: 'https://app.example.com',     // else DISPATCH_ENDPOINT_URL
 *   verificationKey: process.env.MY_PUBLIC_KEY, // else DISPATCH_VERIFICATION_KEY
 * });
 * ```
 */
export interface DispatchOptions {
  /** Bearer key of the Dispatch API. Env: `DISPATCH_API_KEY`. Required to dispatch calls. */
  apiKey?: string;
  /** Base URL of the Dispatch API. Env: `DISPATCH_API_URL`. Default `http://127.0.0.1:4450`. */
  apiUrl?: string;
  /** Public URL of this app's endpoint, used as `Call.endpoint` for its own functions. Env: `DISPATCH_ENDPOINT_URL`. */
  endpointUrl?: string;
  /** `host:port` that `dispatch.serve()`/`dispatch.run()` bind. Env: `DISPATCH_ENDPOINT_ADDR`. Default `127.0.0.1:8000`. */
  endpointAddr?: string;
  /**
   * Ed25519 public key that requests must be signed with (PEM, or base64 of
   * the raw 32 bytes). Env: `DISPATCH_VERIFICATION_KEY`.
   *
   * Without a key (unset, or `null`: ignore the environment's), an endpoint
   * listening on loopback accepts unsigned requests and logs one warning;
   * one listening beyond loopback (`0.0.0.0`, a public address) refuses
   * every request with 401, since anyone could run its functions. `false`
   * (env: `DISPATCH_VERIFICATION_KEY=none`) opts out: unsigned requests are
   * accepted from any address (behind a proxy that authenticates, say).
   * @example { verificationKey: process.env.SCHEDULER_PUBLIC_KEY }
   * @example { verificationKey: false } // accept unsigned requests from anywhere, on purpose
   */
  verificationKey?: string | KeyObject | null | false;
  /** Largest request body the endpoint accepts, in bytes. Default 16,000,000 (PROTOCOL.md 8.2). */
  maxBodyBytes?: number;
  /** Environment to read instead of `process.env` (tests). */
  env?: Record<string, string | undefined>;
  /** Where warnings go. Default: `console.warn`. */
  logger?: Pick<Console, 'warn' | 'error' | 'info'>;
}

/** A configuration value that is required and missing or invalid. */
export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function checkUrl(value: string, variable: string, schemes: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigurationError(`${variable} is not a valid URL: ${JSON.stringify(value)}; set it to something like http://127.0.0.1:8000`);
  }
  if (!schemes.includes(url.protocol)) {
    throw new ConfigurationError(
      `${variable} must use ${schemes.map((s) => s.replace(':', '')).join(' or ')}, got ${JSON.stringify(value)}`,
    );
  }
  if (url.protocol !== 'bridge:' && !url.host) throw new ConfigurationError(`${variable} has no host: ${JSON.stringify(value)}`);
  return value.replace(/\/+$/, '');
}

/**
 * Parses `host:port` (IPv6 in brackets); throws a ConfigurationError naming the variable.
 * @example parseAddress('[::1]:8000') // { host: '::1', port: 8000 }
 */
export function parseAddress(value: string, variable = 'DISPATCH_ENDPOINT_ADDR'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new ConfigurationError(`${variable} must be host:port (for example 127.0.0.1:8000), got ${JSON.stringify(value)}`);
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** The resolved configuration; getters throw a ConfigurationError when a required value is missing. */
export class ResolvedConfig {
  readonly apiUrl: string;
  readonly endpointAddr: string;
  readonly maxBodyBytes: number;
  readonly verificationKey: KeyObject | undefined;
  /** True when the app opted out of verification (`verificationKey: false`, `DISPATCH_VERIFICATION_KEY=none`): unsigned requests are accepted from any address. */
  readonly acceptUnsigned: boolean;
  readonly #apiKey: string | undefined;
  readonly #endpointUrl: string | undefined;

  constructor(options: DispatchOptions = {}) {
    const env = options.env ?? process.env;
    this.#apiKey = nonEmpty(options.apiKey) ?? nonEmpty(env.DISPATCH_API_KEY);
    const apiUrl = options.apiUrl ?? env.DISPATCH_API_URL;
    if (apiUrl !== undefined && apiUrl.trim() === '') {
      throw new ConfigurationError('DISPATCH_API_URL is set but empty; unset it to use the local scheduler or set it to its URL');
    }
    this.apiUrl = checkUrl(apiUrl ?? DEFAULT_API_URL, options.apiUrl ? 'apiUrl' : 'DISPATCH_API_URL', ['http:', 'https:']);
    const endpointUrl = nonEmpty(options.endpointUrl) ?? nonEmpty(env.DISPATCH_ENDPOINT_URL);
    this.#endpointUrl =
      endpointUrl && checkUrl(endpointUrl, options.endpointUrl ? 'endpointUrl' : 'DISPATCH_ENDPOINT_URL', ['http:', 'https:', 'bridge:']);
    this.endpointAddr = nonEmpty(options.endpointAddr) ?? nonEmpty(env.DISPATCH_ENDPOINT_ADDR) ?? DEFAULT_ENDPOINT_ADDR;
    parseAddress(this.endpointAddr, options.endpointAddr ? 'endpointAddr' : 'DISPATCH_ENDPOINT_ADDR');
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    if (!Number.isInteger(this.maxBodyBytes) || this.maxBodyBytes <= 0) {
      throw new ConfigurationError(`maxBodyBytes must be a positive integer, got ${options.maxBodyBytes}`);
    }
    const fromEnv = nonEmpty(env.DISPATCH_VERIFICATION_KEY);
    const optOut = options.verificationKey === false || (options.verificationKey === undefined && fromEnv?.toLowerCase() === VERIFICATION_OPT_OUT);
    this.acceptUnsigned = optOut;
    const key = options.verificationKey === null || optOut ? undefined : (options.verificationKey ?? fromEnv);
    if (key === undefined || key === false) this.verificationKey = undefined;
    else if (typeof key === 'string') {
      try {
        this.verificationKey = parseVerificationKey(key);
      } catch (err) {
        throw new ConfigurationError(
          `${options.verificationKey ? 'verificationKey' : 'DISPATCH_VERIFICATION_KEY'} is not a valid Ed25519 public key: ${(err as Error).message}`,
        );
      }
    } else this.verificationKey = key;
  }

  /** The API key; throws if neither the option nor `DISPATCH_API_KEY` is set. */
  get apiKey(): string {
    if (!this.#apiKey) {
      throw new ConfigurationError(
        'no Dispatch API key: set DISPATCH_API_KEY (run the app under `dispatch run -- <command>` to have it set for you) or pass { apiKey } to new Dispatch()',
      );
    }
    return this.#apiKey;
  }

  /** True when an API key is configured (option or `DISPATCH_API_KEY`). */
  get hasApiKey(): boolean {
    return !!this.#apiKey;
  }

  /** The endpoint URL; throws if neither the option nor `DISPATCH_ENDPOINT_URL` is set. */
  get endpointUrl(): string {
    if (!this.#endpointUrl) {
      throw new ConfigurationError(
        "no endpoint URL: set DISPATCH_ENDPOINT_URL to this app's public URL (for example http://127.0.0.1:8000; `dispatch run` sets it) or pass { endpointUrl } to new Dispatch()",
      );
    }
    return this.#endpointUrl;
  }

  /** The endpoint URL if configured. */
  get endpointUrlOrUndefined(): string | undefined {
    return this.#endpointUrl;
  }
}
