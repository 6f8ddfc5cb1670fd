import { fanin } from './durable.mjs';
await fanin({ sizes: [1000, 10_000], runs: 1, inProcess: true, log: console.log });
