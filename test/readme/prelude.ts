/**
 * What the README's code fragments use without declaring it: each top-level
 * declaration here is added to a fragment that does not declare the name
 * itself (see readme-blocks.ts). Keep it to names a reader would take for
 * granted: the module-level API, an app's own functions, a few values.
 * A block marked `<!-- readme-test: run -->` gets none of it.
 * @module
 */
import * as dispatch from '@dispatch/core';
// Under a name no README block uses, so that a block declaring its own
// `DispatchFunction` (the NestJS decorator) does not break what follows.
import type { DispatchFunction as PreludeFunction } from '@dispatch/core';

// The app's own Dispatch functions that the fragments call.
declare const sendNotification: PreludeFunction<[user: string], void>;
declare const generateInvoice: PreludeFunction<[client: string], string>;
declare const uploadToS3: PreludeFunction<[path: string], void>;
declare const slowCall: PreludeFunction<[], string>;
declare const checkout: PreludeFunction<[userId: string, orderId: string], void>;
declare function fetchRate(): Promise<number>;
declare const askManager: PreludeFunction<[employee: string, amount: number], void>;
declare const pay: PreludeFunction<[employee: string, amount: number], string>;
declare const greet: PreludeFunction<[name: string], string>;
declare const remind: PreludeFunction<[user: string], void>;
declare const charge: PreludeFunction<[order: { id: string }], string>;

// An HTTP app (Express-like) with a route or two.
declare const app: {
  post(path: string, handler: (req: { params: { id: string }; body: { approved: boolean } }, res: { sendStatus(code: number): void }) => unknown): void;
};

// Values an app has at hand.
declare const apiKey: string;
declare const apiUrl: string;
declare const endpointUrl: string;
declare const verificationKey: string;
declare const user: string;
declare const order: { id: string };

export {
  dispatch,
  checkout,
  sendNotification,
  generateInvoice,
  uploadToS3,
  slowCall,
  fetchRate,
  askManager,
  pay,
  greet,
  remind,
  charge,
  app,
  apiKey,
  apiUrl,
  endpointUrl,
  verificationKey,
  user,
  order,
};
