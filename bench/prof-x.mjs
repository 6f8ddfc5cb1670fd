import { sequential } from './durable.mjs';
await sequential({ cache: true, inProcess: false, sizes: [1000, 3000], runs: 2, profileDir: '/tmp/prof5', log: console.log });
