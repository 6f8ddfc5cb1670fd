import { describe, expect, it } from 'vitest';
import { ConfigurationError, DEFAULT_API_URL, ResolvedConfig } from './config.js';
import { generateSigningKeyPair, publicKeyToBase64, publicKeyToPem } from '../signature/signature.js';

describe('configuration', () => {
  it('reads the environment, with options winning', () => {
    const env = { DISPATCH_API_KEY: 'env-key', DISPATCH_API_URL: 'http://sched:4450/', DISPATCH_ENDPOINT_URL: 'http://app:8000', DISPATCH_ENDPOINT_ADDR: '0.0.0.0:9000' };
    const c = new ResolvedConfig({ env });
    expect([c.apiKey, c.apiUrl, c.endpointUrl, c.endpointAddr]).toEqual(['env-key', 'http://sched:4450', 'http://app:8000', '0.0.0.0:9000']);
    const o = new ResolvedConfig({ env, apiKey: 'opt-key', endpointUrl: 'https://public.example.com' });
    expect([o.apiKey, o.endpointUrl]).toEqual(['opt-key', 'https://public.example.com']);
  });

  it('defaults to the local scheduler and 127.0.0.1:8000', () => {
    const c = new ResolvedConfig({ env: {} });
    expect(c.apiUrl).toBe(DEFAULT_API_URL);
    expect(c.endpointAddr).toBe('127.0.0.1:8000');
    expect(c.verificationKey).toBeUndefined();
  });

  it('names the variable to set when a required value is missing', () => {
    const c = new ResolvedConfig({ env: {} });
    expect(() => c.apiKey).toThrow(/set DISPATCH_API_KEY/);
    expect(() => c.endpointUrl).toThrow(/set DISPATCH_ENDPOINT_URL/);
  });

  it('refuses bad values with the offending value', () => {
    expect(() => new ResolvedConfig({ env: { DISPATCH_API_URL: '' } })).toThrow(/DISPATCH_API_URL is set but empty/);
    expect(() => new ResolvedConfig({ env: { DISPATCH_API_URL: 'ftp://x' } })).toThrow(/DISPATCH_API_URL must use http or https, got "ftp:\/\/x"/);
    expect(() => new ResolvedConfig({ env: { DISPATCH_ENDPOINT_URL: 'not a url' } })).toThrow(ConfigurationError);
    expect(() => new ResolvedConfig({ env: { DISPATCH_ENDPOINT_ADDR: 'localhost' } })).toThrow(/host:port/);
    expect(() => new ResolvedConfig({ env: { DISPATCH_VERIFICATION_KEY: 'bm90IGEga2V5' } })).toThrow(/DISPATCH_VERIFICATION_KEY is not a valid Ed25519 public key/);
  });

  it('accepts verification keys as PEM (with literal \\n) or base64, and null to disable', () => {
    const { publicKey } = generateSigningKeyPair();
    const pem = publicKeyToPem(publicKey).replace(/\n/g, '\\n');
    const other = generateSigningKeyPair().publicKey;
    const fromPem = new ResolvedConfig({ env: { DISPATCH_VERIFICATION_KEY: pem } }).verificationKey;
    const fromBase64 = new ResolvedConfig({ env: { DISPATCH_VERIFICATION_KEY: publicKeyToBase64(publicKey) } }).verificationKey;
    // The key read is the key given (and not just any key).
    expect(fromPem?.equals(publicKey), 'the key read from PEM is the key given').toBe(true);
    expect(fromBase64?.equals(publicKey), 'the key read from base64 is the key given').toBe(true);
    expect(fromBase64?.equals(other)).toBe(false);
    expect(new ResolvedConfig({ env: {}, verificationKey: publicKey }).verificationKey?.equals(publicKey)).toBe(true);
    expect(new ResolvedConfig({ env: { DISPATCH_VERIFICATION_KEY: publicKeyToBase64(publicKey) }, verificationKey: null }).verificationKey).toBeUndefined();
  });

  it('opts out of verification only when asked: verificationKey false or DISPATCH_VERIFICATION_KEY=none', () => {
    const { publicKey } = generateSigningKeyPair();
    const key = publicKeyToBase64(publicKey);
    const optedOut = [
      new ResolvedConfig({ env: {}, verificationKey: false }),
      new ResolvedConfig({ env: { DISPATCH_VERIFICATION_KEY: key }, verificationKey: false }),
      new ResolvedConfig({ env: { DISPATCH_VERIFICATION_KEY: 'none' } }),
      new ResolvedConfig({ env: { DISPATCH_VERIFICATION_KEY: ' NONE ' } }),
    ];
    for (const c of optedOut) expect([c.verificationKey, c.acceptUnsigned]).toEqual([undefined, true]);
    const noKey = [new ResolvedConfig({ env: {} }), new ResolvedConfig({ env: { DISPATCH_VERIFICATION_KEY: key }, verificationKey: null })];
    for (const c of noKey) expect([c.verificationKey, c.acceptUnsigned]).toEqual([undefined, false]);
    const keyed = new ResolvedConfig({ env: { DISPATCH_VERIFICATION_KEY: 'none' }, verificationKey: key });
    expect([keyed.verificationKey !== undefined, keyed.acceptUnsigned]).toEqual([true, false]);
  });
});
