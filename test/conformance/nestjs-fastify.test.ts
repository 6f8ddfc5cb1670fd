import { conformance } from './conformance-suite.js';
import { startNest } from './nest-app.js';

conformance({ name: 'NestJS on Fastify (@dispatch/nestjs)', appRoutes: true, start: (dispatch, prefix, host) => startNest('fastify', dispatch, prefix, host) });
