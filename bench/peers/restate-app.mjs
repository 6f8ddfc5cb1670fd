// The Restate SDK endpoint of the peer benchmarks, its own process: an
// HTTP/2 server on a free loopback port (Restate's deployment protocol).
import http2 from 'node:http2';
import * as restate from '@restatedev/restate-sdk';

const bench = restate.service({
  name: 'bench',
  handlers: {
    noop: async () => 0,
    inc: async (_ctx, n) => n + 1,
    square: async (_ctx, n) => n * n,
    // N sequential ctx.run steps, each journaled by the server.
    runSteps: async (ctx, count) => {
      let n = 0;
      for (let i = 0; i < count; i++) n = await ctx.run('inc', async () => n + 1);
      return n;
    },
    // N sequential awaited calls of another handler.
    callSteps: async (ctx, count) => {
      let n = 0;
      for (let i = 0; i < count; i++) n = await ctx.serviceClient(bench).inc(n);
      return n;
    },
    fanin: async (ctx, count) => {
      const calls = [];
      for (let i = 0; i < count; i++) calls.push(ctx.serviceClient(bench).square(i));
      const squares = await restate.RestatePromise.all(calls);
      return squares.reduce((a, b) => a + b, 0);
    },
  },
});

const server = http2.createServer(restate.createEndpointHandler({ services: [bench] }));
server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
