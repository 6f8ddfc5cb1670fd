import { sequential } from './durable.mjs';
const sig = !process.argv.includes('--unsigned');
await sequential({ cache: true, inProcess: false, signatures: sig, sizes: [1000], runs: 3, log: console.log });
