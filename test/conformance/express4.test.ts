// @ts-expect-error express4 is an alias of express@4 without type declarations.
import express4 from 'express4';
import { conformance } from './conformance-suite.js';
import { type ExpressLike, startExpress } from './express-app.js';

conformance({
  name: 'Express 4 (@dispatch/express)',
  appRoutes: true,
  start: (dispatch, prefix, host) => startExpress(express4 as ExpressLike, dispatch, prefix, host),
});
