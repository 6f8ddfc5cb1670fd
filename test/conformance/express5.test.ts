import express from 'express';
import { conformance } from './conformance-suite.js';
import { type ExpressLike, startExpress } from './express-app.js';

conformance({
  name: 'Express 5 (@dispatch/express)',
  appRoutes: true,
  start: (dispatch, prefix, host) => startExpress(express as unknown as ExpressLike, dispatch, prefix, host),
});
