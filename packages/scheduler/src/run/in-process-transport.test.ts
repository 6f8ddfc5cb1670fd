import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type InProcessApp, type InProcessRegistry, type proto, Status } from '@dispatch/core/protocol';
import { describe, expect, it } from 'vitest';
import { InProcessTransport } from './in-process-transport.js';
import type { EndpointTransport, RunReply } from './transport.js';

const ENDPOINT = 'http://127.0.0.1:1/app';

/** A registry with one app whose runs answer when the test says (by function name). */
function appRegistry() {
  const answers = new Map<string, (response: proto.IRunResponse) => void>();
  const app: InProcessApp = {
    endpointUrl: () => ENDPOINT,
    runRequest: (request) => new Promise((resolve) => answers.set(request.function ?? '', resolve)),
  };
  const registry: InProcessRegistry = { register: () => () => {}, find: (url) => (url === ENDPOINT ? app : undefined), host: undefined };
  return { registry, answer: (fn: string) => answers.get(fn)?.({ status: Status.OK as number }) };
}

const noFallback: EndpointTransport = {
  name: 'none',
  run: () => Promise.reject(new Error('not in process')),
  close: () => {},
};

const settledWithin = async (p: Promise<RunReply>, ms: number): Promise<RunReply | 'pending'> =>
  Promise.race([p, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);

describe('InProcessTransport', () => {
  it('answers TIMEOUT for each run at its own deadline, and the answer of a run that timed out is ignored', async () => {
    const { registry, answer } = appRegistry();
    const transport = new InProcessTransport(noFallback, 150, registry);
    const slow = transport.run(ENDPOINT, { function: 'slow' });
    await new Promise((r) => setTimeout(r, 60));
    const later = transport.run(ENDPOINT, { function: 'later' });
    const quick = transport.run(ENDPOINT, { function: 'quick' });
    answer('quick');
    expect(await quick).toEqual({ kind: 'response', response: { status: Status.OK as number } });
    // The first deadline: only the run that started first is over it.
    expect(await slow).toMatchObject({ kind: 'transport', status: Status.TIMEOUT, message: `no answer from ${ENDPOINT} (in process) within 150 ms` });
    expect(await settledWithin(later, 20)).toBe('pending');
    answer('slow');
    expect(await later).toMatchObject({ kind: 'transport', status: Status.TIMEOUT });
    answer('later');
    // A run after the others timed out gets its own deadline, and its answer.
    const next = transport.run(ENDPOINT, { function: 'next' });
    expect(await settledWithin(next, 100)).toBe('pending');
    answer('next');
    expect(await next).toEqual({ kind: 'response', response: { status: Status.OK as number } });
  });

  it('does not keep the process alive once no run is in flight (a run of a long timeout answered at once)', () => {
    const built = new URL('../../dist/esm/run/in-process-transport.js', import.meta.url).href;
    if (!existsSync(fileURLToPath(built))) throw new Error(`the scheduler is not built (${built} is missing): run \`pnpm build\` first`);
    const script = `
      import { InProcessTransport } from ${JSON.stringify(built)};
      const app = { endpointUrl: () => 'http://x', runRequest: async () => ({ status: 1 }) };
      const registry = { register: () => () => {}, find: () => app, host: undefined };
      const t = new InProcessTransport({ name: 'none', run: async () => ({}), close() {} }, 60_000, registry);
      const reply = await t.run('http://x', { function: 'f' });
      console.log(reply.kind);
    `;
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout.trim()).toBe('response');
    expect(r.status).toBe(0);
    // Far below the 60 s a timer kept for the run would hold it.
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
