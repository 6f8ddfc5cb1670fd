import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BodyBudget, BodyBudgetTimeoutError } from './body-budget.js';
import { listeningAddress, readBody } from './read-body.js';

describe('BodyBudget', () => {
  it('grants while there is room, then in arrival order as bytes are given back', async () => {
    const budget = new BodyBudget({ limit: 100 });
    const a = await budget.acquire(60);
    const b = await budget.acquire(40);
    expect(budget.inUse).toBe(100);
    const order: string[] = [];
    const c = budget.acquire(30).then((release) => (order.push('c'), release));
    const d = budget.acquire(10).then((release) => (order.push('d'), release)); // fits, but waits its turn behind c
    expect(budget.waiting).toBe(2);
    a();
    a(); // a second call does nothing
    const [releaseC, releaseD] = await Promise.all([c, d]);
    expect(order).toEqual(['c', 'd']);
    expect(budget.inUse).toBe(80);
    b();
    releaseC();
    releaseD();
    expect(budget.inUse).toBe(0);
    expect(budget.peak).toBe(100);
  });

  it('lets a request larger than the whole budget be read alone', async () => {
    const budget = new BodyBudget({ limit: 10 });
    const small = await budget.acquire(5);
    const huge = budget.acquire(50);
    expect(budget.waiting).toBe(1);
    small();
    const release = await huge;
    expect(budget.inUse).toBe(50);
    release();
  });

  it('gives up after maxWaitMs with a message saying what to do, and when the request goes away', async () => {
    const budget = new BodyBudget({ limit: 10, maxWaitMs: 20 });
    const held = await budget.acquire(10);
    await expect(budget.acquire(5)).rejects.toThrow(BodyBudgetTimeoutError);
    await expect(budget.acquire(5)).rejects.toThrow(/waited 20 ms for room: retry later/);
    const gone = new AbortController();
    const waiting = budget.acquire(5, gone.signal);
    gone.abort(new Error('client left'));
    await expect(waiting).rejects.toThrow('client left');
    expect(budget.waiting).toBe(0);
    held();
    expect(budget.inUse).toBe(0);
  });

  it('reserves at once with tryAcquire when nothing waits and the bytes fit; else answers null and reserves nothing', async () => {
    const budget = new BodyBudget({ limit: 10, maxWaitMs: 1000 });
    const a = budget.tryAcquire(6);
    expect(a).toBeTypeOf('function');
    expect(budget.inUse).toBe(6);
    expect(budget.tryAcquire(5)).toBeNull(); // does not fit
    const waiting = budget.acquire(5);
    expect(budget.tryAcquire(1)).toBeNull(); // fits, but would jump the line
    expect(budget.inUse).toBe(6);
    a!();
    const b = await waiting;
    expect(budget.inUse).toBe(5);
    b();
    expect(budget.tryAcquire(Number.NaN)).toBeTypeOf('function'); // unknown size: the whole limit, alone
    expect(budget.inUse).toBe(10);
  });

  it('reads a body within the budget, giving the bytes back once read (the path without a wait)', async () => {
    const budget = new BodyBudget({ limit: 100, maxWaitMs: 1000 });
    const req = Readable.from([Buffer.from('hello '), Buffer.from('world')]) as unknown as IncomingMessage;
    Object.assign(req, { headers: { 'content-length': '11' } });
    const body = await readBody(req, 1000, { budget });
    expect(Buffer.from(body).toString()).toBe('hello world');
    expect(budget.inUse).toBe(0);
    expect(budget.peak).toBe(11);
  });

  it('asks the server for its listening address once per connection, not once per request', () => {
    let asked = 0;
    const server = {
      address: () => {
        asked++;
        return { address: '127.0.0.1', family: 'IPv4', port: 8000 };
      },
    };
    const socket = { server, localAddress: '127.0.0.1' };
    for (let i = 0; i < 3; i++) expect(listeningAddress({ socket } as never)).toBe('127.0.0.1');
    expect(asked).toBe(1);
    const other = { server: { address: () => ({ address: '0.0.0.0', family: 'IPv4', port: 8000 }) }, localAddress: '127.0.0.1' };
    expect(listeningAddress({ socket: other } as never)).toBe('0.0.0.0');
  });
});
