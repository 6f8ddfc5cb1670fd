import { generateSigningKeyPair, privateKeyToPem } from '@dispatch/core/protocol';
import { describe, expect, it } from 'vitest';
import { Logger } from './logger.js';
import { Redactor, redactText, urlPassword } from './redact.js';

describe('redaction', () => {
  it('hides URL passwords, password parameters, bearer tokens, PEM private keys and generated keys', () => {
    expect(redactText('cannot connect to postgres://app:s3cr%40t@db.internal:5432/prod?schema=x')).toBe(
      'cannot connect to postgres://app:***@db.internal:5432/prod?schema=x',
    );
    expect(redactText('postgresql://app@db/prod?sslmode=require&password=s3cret&x=1')).toBe('postgresql://app@db/prod?sslmode=require&password=***&x=1');
    expect(redactText('host=db user=app password=s3cret dbname=prod')).toBe('host=db user=app password=*** dbname=prod');
    expect(redactText('redis://:p4ss@cache:6379 and http://user:pw@example.com/path')).toBe('redis://:***@cache:6379 and http://user:***@example.com/path');
    expect(redactText('Authorization: Bearer dsk_abc.def')).toBe('Authorization: Bearer ***');
    expect(redactText('key dsk_0123456789abcdefghijklmnopqrstuv in a message')).toBe('key dsk_*** in a message');
    const pem = privateKeyToPem(generateSigningKeyPair().privateKey).trim();
    expect(redactText(`the key is ${pem} there`)).toBe('the key is *** there');
    expect(redactText(`escaped: ${pem.replace(/\n/g, '\\n')}`)).toBe('escaped: ***');
  });

  it('leaves what is not a secret alone', () => {
    for (const text of [
      'scheduler http://127.0.0.1:4450 · database .dispatch/dispatch.db · app endpoint http://127.0.0.1:8000',
      'dashboard http://127.0.0.1:4450/dashboard/login?token=abc (a one-time login link)',
      'the endpoint http://127.0.0.1:8000/path@x answered HTTP 500 to f: user@example.com',
      'retrying send_email 01J: attempt 1 ended with TEMPORARY_ERROR',
    ]) {
      expect(redactText(text)).toBe(text);
    }
  });

  it('hides the secrets it was given wherever they appear, and the Logger redacts every line', () => {
    const lines: string[] = [];
    const log = new Logger('info', (_level, line) => lines.push(line));
    log.redactor.add('my-api-key-0123456789').add('short'); // too short to search for: ignored
    log.info('request with my-api-key-0123456789, and again my-api-key-0123456789');
    log.warn('a short word stays');
    log.info('connecting to postgres://u:pw@h/db');
    expect(lines).toEqual(['request with ***, and again ***', 'a short word stays', 'connecting to postgres://u:***@h/db']);
    expect(new Redactor(['the-key-0123456789', undefined]).redact('x the-key-0123456789 y')).toBe('x *** y');
  });

  it('finds the password of a URL', () => {
    expect(urlPassword('postgres://app:s%40cret@db/prod')).toBe('s@cret');
    expect(urlPassword('postgres://app@db/prod')).toBeUndefined();
    expect(urlPassword('.dispatch/dispatch.db')).toBeUndefined();
  });
});
