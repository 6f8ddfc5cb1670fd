// A trivial node:http keep-alive server for the raw HTTP limit: reads the
// request body and answers a small fixed body, like an endpoint that does no
// work. Prints its URL as the first line of stdout.
import { createServer } from 'node:http';

const answer = Buffer.alloc(64, 1);
const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/proto', 'content-length': String(answer.length) });
    res.end(answer);
  });
});
server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
