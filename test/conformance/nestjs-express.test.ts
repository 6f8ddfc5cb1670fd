import { conformance } from './conformance-suite.js';
import { startNest } from './nest-app.js';

conformance({ name: 'NestJS on Express (@dispatch/nestjs)', appRoutes: true, start: (dispatch, prefix, host) => startNest('express', dispatch, prefix, host) });
