/**
 * The lean HTTP/1.1 client against real sockets: servers written with
 * `node:net` that answer exactly the bytes a test gives (framings, keep-alive,
 * broken answers), and a `node:http` server for what a real server sends.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Status } from '@dispatch/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { EndpointReply } from './http-transport.js';
import { LeanHttpClient } from './lean-http.js';

interface RawServer {
  url: URL;
  /** Connections accepted so far. */
  connections: number;
  /** The requests received, as text (head and body). */
  requests: string[];
  close(): Promise<void>;
}

const servers: Array<{ close(): Promise<void> }> = [];
const clients: LeanHttpClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

function client(options: Partial<ConstructorParameters<typeof LeanHttpClient>[0]> = {}): LeanHttpClient {
  const c = new LeanHttpClient({ maxSockets: 16, maxResponseBytes: 1024 * 1024, ...options });
  clients.push(c);
  return c;
}

/**
 * A server that calls `answer(socket, request, index)` for each whole
 * request (head and content-length body) it reads on a connection.
 */
async function rawServer(answer: (socket: net.Socket, request: string, index: number) => void): Promise<RawServer> {
  const sockets = new Set<net.Socket>();
  const server: RawServer = {
    url: new URL('http://127.0.0.1/'),
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        tcp.close(() => resolve());
      }),
  };
  const tcp = net.createServer((socket) => {
    server.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const request = buffered.slice(0, end + 4 + length);
        buffered = buffered.slice(end + 4 + length);
        server.requests.push(request);
        answer(socket, request, server.requests.length - 1);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  server.url = new URL(`http://127.0.0.1:${(tcp.address() as AddressInfo).port}/dispatch.sdk.v1.FunctionService/Run?x=1`);
  servers.push(server);
  return server;
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-type: application/proto\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const post = (c: LeanHttpClient, s: RawServer, body = 'ping', timeoutMs = 5_000, hooks = {}) => c.post(s.url, Buffer.from(body), { 'content-type': 'application/proto' }, timeoutMs, hooks);

function http200(reply: EndpointReply): { status: number; body: string; contentType: string } {
  if (reply.kind !== 'http') throw new Error(`expected an HTTP answer, got ${JSON.stringify(reply)}`);
  return { status: reply.statusCode, body: reply.body.toString('latin1'), contentType: reply.contentType };
}

/** Writes `text` a few bytes at a time, each in its own write (separate packets). */
async function trickle(socket: net.Socket, text: string, step = 3): Promise<void> {
  socket.setNoDelay(true);
  for (let i = 0; i < text.length; i += step) {
    socket.write(text.slice(i, i + step), 'latin1');
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('LeanHttpClient', () => {
  it('sends one POST with the head the scheduler gives, reads a content-length answer, and reuses the socket', async () => {
    const s = await rawServer((socket, _request, i) => socket.write(ok(`pong ${i}`, 'dispatch-run-batch: 128\r\ndispatch-session-accept: x25519\r\n')));
    const c = client();
    const connected: number[] = [];
    const first = await post(c, s, 'ping', 5_000, { onConnected: () => connected.push(1) });
    expect(http200(first)).toEqual({ status: 200, body: 'pong 0', contentType: 'application/proto' });
    expect(first.kind === 'http' && [first.batch, first.sessionAccept, first.session]).toEqual([128, 'x25519', undefined]);
    expect(http200(await post(c, s, 'ping', 5_000, { onConnected: () => connected.push(2) })).body).toBe('pong 1');
    expect(s.connections).toBe(1);
    expect(connected).toEqual([1, 2]);
    expect(s.requests[0]).toBe(
      `POST /dispatch.sdk.v1.FunctionService/Run?x=1 HTTP/1.1\r\nhost: ${s.url.host}\r\ncontent-type: application/proto\r\ncontent-length: 4\r\n\r\nping`,
    );
  });

  it('reads chunked answers (extensions, trailers) and answers split across many packets, after a 100 Continue', async () => {
    const s = await rawServer((socket, _request, i) => {
      const chunked = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: a/b\r\n\r\n4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nx-trailer: t\r\n\r\n';
      void trickle(socket, i === 0 ? chunked : ok('whole'), i === 0 ? 3 : 1);
    });
    const c = client();
    expect(http200(await post(c, s))).toEqual({ status: 200, body: 'abcdef', contentType: 'a/b' });
    expect(http200(await post(c, s)).body).toBe('whole');
    expect(s.connections).toBe(1);
  });

  it('reads an answer framed by the end of the connection, and does not reuse sockets that HTTP/1.0 or connection: close end', async () => {
    const answers = ['HTTP/1.1 200 OK\r\n\r\nto the end', ok('one', 'connection: close\r\n'), 'HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nold', ok('last')];
    const s = await rawServer((socket, _request, i) => {
      socket.write(answers[i]!);
      if (i === 0) socket.end();
    });
    const c = client();
    expect(http200(await post(c, s)).body).toBe('to the end');
    expect(http200(await post(c, s)).body).toBe('one');
    expect(http200(await post(c, s)).body).toBe('old');
    expect(http200(await post(c, s)).body).toBe('last');
    expect(s.connections).toBe(4);
  });

  describe('a streamed answer (local resume)', () => {
    const head = 'HTTP/1.1 200 OK\r\ncontent-type: application/x-dispatch-run-stream+proto\r\ntransfer-encoding: chunked\r\n\r\n';
    /** A varint-delimited frame of `text`, as one HTTP chunk. */
    const chunk = (bytes: string) => `${Buffer.byteLength(bytes, 'latin1').toString(16)}\r\n${bytes}\r\n`;
    /** `text` preceded by its length as a varint (latin1: one character a byte). */
    const frame = (text: string) => {
      let varint = '';
      let n = text.length;
      while (n > 0x7f) {
        varint += String.fromCharCode((n & 0x7f) | 0x80);
        n >>>= 7;
      }
      return varint + String.fromCharCode(n) + text;
    };
    const END = '0\r\n\r\n';

    it('hands over the first RunResponse at once and the second as its rest; the socket is reused after the stream', async () => {
      let second = () => {};
      const s = await rawServer((socket, _request, i) => {
        if (i === 0) {
          socket.write(head + chunk(frame('child')));
          second = () => socket.write(chunk(frame('parent')) + END);
        } else socket.write(ok('next'));
      });
      const c = client();
      const first = await post(c, s);
      expect(http200(first).body).toBe('child');
      const rest = first.kind === 'http' ? first.rest : undefined;
      expect(rest).toBeInstanceOf(Promise);
      second();
      const parent = await rest;
      expect(parent && http200(parent).body).toBe('parent');
      expect(http200(await post(c, s)).body).toBe('next');
      expect(s.connections).toBe(1);
    });

    it('reads frames split across packets and both frames in one packet', async () => {
      const s = await rawServer((socket, _request, i) => {
        const body = i === 0 ? head + chunk(frame('a'.repeat(200)).slice(0, 50)) + chunk(frame('a'.repeat(200)).slice(50) + frame('b')) + END : head + chunk(frame('x') + frame('y')) + END;
        void trickle(socket, body, 7);
      });
      const c = client();
      const one = await post(c, s);
      expect(http200(one).body).toBe('a'.repeat(200));
      expect(http200((await (one.kind === 'http' ? one.rest : null)) as EndpointReply).body).toBe('b');
      const two = await post(c, s);
      expect(http200(two).body).toBe('x');
      expect(http200((await (two.kind === 'http' ? two.rest : null)) as EndpointReply).body).toBe('y');
    });

    it('ends the rest with null when the stream ends after the first, with a failure when the connection drops, and refuses an empty stream', async () => {
      const s = await rawServer((socket, _request, i) => {
        if (i === 0) socket.write(head + chunk(frame('alone')) + END);
        else if (i === 1) {
          socket.write(head + chunk(frame('child')));
          setTimeout(() => socket.destroy(), 20);
        } else socket.write(head + END);
      });
      const c = client();
      const alone = await post(c, s);
      expect(http200(alone).body).toBe('alone');
      expect(await (alone.kind === 'http' ? alone.rest : undefined)).toBeNull();
      const dropped = await post(c, s);
      expect(http200(dropped).body).toBe('child');
      expect(await (dropped.kind === 'http' ? dropped.rest : undefined)).toMatchObject({ kind: 'transport', status: Status.TCP_ERROR, connection: 'dropped' });
      expect(await post(c, s)).toMatchObject({ kind: 'transport', status: Status.INVALID_RESPONSE, message: expect.stringMatching(/ended before its first RunResponse/) });
    });

    it('times the rest out with the request', async () => {
      const s = await rawServer((socket) => socket.write(head + chunk(frame('child'))));
      const c = client();
      const first = await post(c, s, 'ping', 200);
      expect(http200(first).body).toBe('child');
      expect(await (first.kind === 'http' ? first.rest : undefined)).toMatchObject({ kind: 'transport', status: Status.TIMEOUT });
    });
  });

  it('says how a request failed: refused, dropped before an answer, dropped mid-answer, not HTTP, too large', async () => {
    const c = client({ maxResponseBytes: 100 });
    const closed = await rawServer(() => {});
    const port = closed.url.port;
    await closed.close();
    servers.pop();
    const refused = await c.post(new URL(`http://127.0.0.1:${port}/`), Buffer.from('x'), {}, 5_000);
    expect(refused).toMatchObject({ kind: 'transport', status: Status.TCP_ERROR, connection: 'refused', message: expect.stringMatching(/ECONNREFUSED/) });

    const answers: Array<(socket: net.Socket) => void> = [
      (socket) => socket.destroy(),
      (socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf'),
      (socket) => socket.write('SMTP ready\r\n\r\n'),
      (socket) => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 101\r\n\r\n${'x'.repeat(101)}`),
      (socket) => socket.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n40\r\n${'y'.repeat(64)}\r\n40\r\n${'y'.repeat(64)}\r\n0\r\n\r\n`),
      (socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab'),
      (socket) => socket.write(ok('fine')),
    ];
    const s = await rawServer((socket, _request, i) => answers[i]!(socket));
    expect(await post(c, s)).toMatchObject({ kind: 'transport', status: Status.TCP_ERROR, connection: 'dropped', message: expect.stringMatching(/socket hang up/) });
    expect(await post(c, s)).toMatchObject({ kind: 'transport', status: Status.TCP_ERROR, connection: 'dropped', message: expect.stringMatching(/closed before the whole response/) });
    const notHttp = await post(c, s);
    expect(notHttp).toMatchObject({ kind: 'transport', status: Status.TCP_ERROR, message: expect.stringMatching(/not valid HTTP\/1\.1: its status line "SMTP ready"/) });
    expect(notHttp.kind === 'transport' && notHttp.connection).toBeUndefined();
    expect(await post(c, s)).toMatchObject({ kind: 'transport', status: Status.INVALID_RESPONSE, message: expect.stringMatching(/larger than 100 bytes/) });
    expect(await post(c, s)).toMatchObject({ kind: 'transport', status: Status.INVALID_RESPONSE, message: expect.stringMatching(/larger than 100 bytes/) });
    expect(await post(c, s)).toMatchObject({ kind: 'transport', message: expect.stringMatching(/two different content-length/) });
    // After all that, the pool still works (each broken socket was closed, not reused).
    expect(http200(await post(c, s)).body).toBe('fine');
    expect(s.connections).toBe(7);
  });

  it('times out, and never hands a late answer to the next request', async () => {
    const s = await rawServer((socket, _request, i) => {
      if (i === 0) setTimeout(() => socket.write(ok('late')), 150);
      else socket.write(ok(`on time ${i}`));
    });
    const c = client();
    expect(await post(c, s, 'a', 50)).toMatchObject({ kind: 'transport', status: Status.TIMEOUT, message: expect.stringMatching(/no answer from .* within 50 ms/) });
    await new Promise((r) => setTimeout(r, 200));
    expect(http200(await post(c, s)).body).toBe('on time 1');
    expect(s.connections).toBe(2);
  });

  it('does not reuse a socket that received bytes after its answer', async () => {
    const s = await rawServer((socket, _request, i) => socket.write(i === 0 ? `${ok('one')}HTTP/1.1 200 OK\r\n` : ok('two')));
    const c = client();
    expect(http200(await post(c, s)).body).toBe('one');
    expect(http200(await post(c, s)).body).toBe('two');
    expect(s.connections).toBe(2);
  });

  it('queues requests beyond maxSockets, and opens a new socket when the server closed an idle one', async () => {
    const s = await rawServer((socket, _request, i) => setTimeout(() => socket.write(ok(`n${i}`)), 5));
    const c = client({ maxSockets: 1 });
    const bodies = (await Promise.all([post(c, s), post(c, s), post(c, s)])).map((r) => http200(r).body);
    expect(bodies.sort()).toEqual(['n0', 'n1', 'n2']);
    expect(s.connections).toBe(1);

    // A server that closes a socket once it is idle: the next request goes on a new one, without an error.
    const closing = await rawServer((socket, _request, i) => {
      socket.write(ok(`c${i}`));
      if (i === 0) setTimeout(() => socket.end(), 20);
    });
    const c1 = client();
    expect(http200(await post(c1, closing)).body).toBe('c0');
    await new Promise((r) => setTimeout(r, 100));
    expect(http200(await post(c1, closing)).body).toBe('c1');
    expect(closing.connections).toBe(2);

    // A real node:http server that keeps idle sockets 2 s and says so (keep-alive: timeout=2): the client keeps them 1 s.
    const real = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('real'));
    });
    real.keepAliveTimeout = 2_000;
    await new Promise<void>((r) => real.listen(0, '127.0.0.1', r));
    servers.push({ close: () => new Promise<void>((r) => real.close(() => r())) });
    let connections = 0;
    real.on('connection', () => connections++);
    const url = new URL(`http://127.0.0.1:${(real.address() as AddressInfo).port}/`);
    const c2 = client({ idleMs: 60_000 });
    expect(http200(await c2.post(url, Buffer.from('a'), {}, 5_000)).body).toBe('real');
    expect(http200(await c2.post(url, Buffer.from('b'), {}, 5_000)).body).toBe('real');
    expect(connections).toBe(1);
    await new Promise((r) => setTimeout(r, 1_200));
    expect(http200(await c2.post(url, Buffer.from('c'), {}, 5_000)).body).toBe('real');
    expect(connections).toBe(2);
    real.closeAllConnections();
  });
});
