import { attributeFilter } from './attribute-filter.js';
import { cacheModes } from './cache-modes.js';
import type { Experiment } from './experiment.js';
import { hotUser } from './hot-user.js';
import { partitions } from './partitions.js';
import { redisDown } from './redis-down.js';
import { replicaKill } from './replica-kill.js';
import { replicaLag } from './replica-lag.js';
import { replicaScale } from './replica-scale.js';
import { stampede } from './stampede.js';
import { stampedeFleet } from './stampede-fleet.js';
import { workerKill } from './worker-kill.js';

export * from './experiment.js';
/** Every experiment the console and `npm run demo -- console-<name>` know, by name. */
export const EXPERIMENTS: ReadonlyMap<string, Experiment> = new Map([cacheModes, stampede, stampedeFleet, partitions, attributeFilter, replicaLag, replicaKill, replicaScale, hotUser, workerKill, redisDown].map((e) => [e.name, e]));
