import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { jsonLogSink, Logger } from './logger.js';
import { Redactor } from './redact.js';

function capture() {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  return { stream, lines: () => chunks.join('').split('\n').filter((l) => l !== '') };
}

describe('Logger in the JSON format', () => {
  it('writes one object per line with the stable fields, secrets redacted in the message and the fields', () => {
    const out = capture();
    const log = new Logger('info', jsonLogSink(out.stream), new Redactor(['dsk_given-api-key-0123456789']));
    log.info('connected to postgres://app:s3cret-pw@db:5432/prod with dsk_given-api-key-0123456789', {
      event: 'listening',
      database: 'postgres://app:s3cret-pw@db:5432/prod',
      port: 4450,
      ready: true,
      absent: undefined,
    });
    log.debug('not written at info');
    log.warn('plain line');
    const lines = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toEqual({
      level: 'info',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      pid: process.pid,
      name: 'dispatch-scheduler',
      event: 'listening',
      database: 'postgres://app:***@db:5432/prod',
      port: 4450,
      ready: true,
      msg: 'connected to postgres://app:***@db:5432/prod with ***',
    });
    expect(lines[1]).toMatchObject({ level: 'warn', msg: 'plain line' });
    expect(out.lines().join('\n')).not.toContain('s3cret-pw');
  });

  it('refuses an unknown format', () => {
    expect(() => new Logger('info', undefined, undefined, 'yaml' as 'json')).toThrow('logFormat must be text or json; got "yaml"');
  });
});
