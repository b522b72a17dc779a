/**
 * Configuration, one validated namespace per concern, read once at start.
 * Every key has a default that works with the native stack (docker/local); a wrong value stops start-up
 * with one sentence naming the variable, because a half-configured reference backend teaches nothing.
 */
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface DbUrl {
  url: string;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** One Redis role: a direct URL, or Sentinel-discovered (sentinels non-empty) with the URL's credentials. */
export interface RedisEndpoint {
  url: string;
  sentinels: { host: string; port: number }[];
  /** The master group name the sentinels monitor (`sentinel monitor <name> ...`). */
  masterName: string;
  /** Through Sentinel: the longest pause between reconnect attempts (each asks the sentinels anew), ms. */
  reconnectMaxMs: number;
}

export interface DbCredentials {
  user: string;
  password: string;
}

/**
 * How the catalog is kept on several nodes: `replicated` (a primary + async GTID replicas: DB_PRIMARY_URL,
 * DB_REPLICA_URLS) or `galera` (a multi-primary Galera cluster: DB_GALERA_URLS, every node readable and
 * writable; the API writes to one node at a time and moves to the next when it dies).
 */
export type CatalogMode = 'replicated' | 'galera';

export interface AppConfig {
  env: 'development' | 'production' | 'test';
  port: number;
  /** Interface shop-api listens on; loopback unless HOST says otherwise. */
  host: string;
  logLevel: string;
  /**
   * The URLs carry the app's DML-only account. `ddl` (migrations, partition maintenance, attribute promotion)
   * and `monitor` (replication status) are other accounts on the same hosts, each with its own small pool.
   */
  db: { primary: DbUrl; replicas: DbUrl[]; shards: DbUrl[]; poolSize: number; ddl: DbCredentials; monitor: DbCredentials; catalog: CatalogMode };
  /**
   * The two Redis roles. `cache`/`queue` say how to reach each: the plain URL, or (when `sentinels` is not empty)
   * through Redis Sentinel by master name, the URL then giving only the password, database number and TLS.
   */
  redis: { cacheUrl: string; queueUrl: string; cache: RedisEndpoint; queue: RedisEndpoint };
  /**
   * Edge cache (issue 17, optional Varnish node): EdgePurger (libs/cache) sends PURGE/BAN for written products
   * to these edges (EDGE_PURGE_URLS, comma-separated http(s) base URLs; empty = no edge, the default).
   */
  edge: { purgeUrls: string[]; purgeTimeoutMs: number };
  /**
   * BENCHMARK ONLY (hot-products mode nest_cache_manager): the peer baseline @nestjs/cache-manager's
   * CacheInterceptor on GET /products/:id (BENCH_PEER_CACHE=nest-cache-manager). Refused with NODE_ENV=production.
   */
  benchPeerCache: 'none' | 'nest-cache-manager';
  /** Replica read routing (issue 5, libs/db ReplicaRouter + ReplicaMonitor): lag limit, token wait, fallback. */
  replication: { maxLagMs: number; waitMs: number; fallback: 'primary' | '503'; monitorIntervalMs: number; userTokenTtlMs: number };
  /** Hot-products cache (issue 3): tiers, bounds, TTLs, lease and breaker (libs/cache ProductCache). */
  cache: {
    mode: 'off' | 'l2' | 'l1l2';
    prefix: string;
    l1MaxEntries: number;
    l1MaxBytes: number;
    l1TtlMs: number;
    /**
     * The invalidation bus's heartbeat (libs/cache InvalidationBus): an echo every busHeartbeatMs; none for
     * busSilentMs → L1 cleared and short-lived. A lost broadcast is bounded by busSilentMs + 2 × busHeartbeatMs, not by l1TtlMs.
     */
    busHeartbeatMs: number;
    busSilentMs: number;
    l2TtlMs: number;
    ttlJitterPct: number;
    negativeTtlMs: number;
    listTtlMs: number;
    leaseMs: number;
    leaseWaitMs: number;
    redisTimeoutMs: number;
    breakerFailures: number;
    breakerCooldownMs: number;
    xfetchBeta: number;
    /** Product reads' Cache-Control for anonymous requests: max-age and stale-while-revalidate, seconds. */
    httpMaxAgeS: number;
    httpSwrS: number;
  };
  auth: {
    jwtSecret: string;
    tokenTtlSeconds: number;
    /** JWTs are HS256 with this issuer and audience; anything else is refused. */
    issuer: string;
    audience: string;
    /** HMAC key of the /me/orders cursor: a separate key, so a cursor never helps forge a token. */
    orderCursorSecret: string;
    /** How long the guard may trust a user's role and token version read from the database. */
    roleCacheMs: number;
    /** Password hashing (argon2id) at most this many at once, this many waiting; beyond that 503. */
    hashConcurrency: number;
    hashQueueMax: number;
  };
  /** Request parsing limits: JSON nesting depth (deeper bodies answer 400 before validation walks them). */
  http: { maxJsonDepth: number };
  /** Monthly order partitions (PartitionMaintainer): months kept ahead/behind, retention, schedule. */
  partitions: { monthsAhead: number; monthsBack: number; retentionMonths: number; retention: 'off' | 'archive' | 'drop'; intervalSeconds: number };
  /**
   * Order crash windows: how long a pending idempotency key is its claimer's (then a retry takes it over),
   * how often the stock reconciler runs (0 = off), how long settled reservations are kept, and a test-only
   * failpoint (ORDER_FAILPOINT; always '' unless NODE_ENV=test).
   */
  orders: { leaseMs: number; reconcileIntervalSeconds: number; reservationRetentionHours: number; failpoint: '' | OrderFailpoint };
  /**
   * Online resharding: how long a router trusts its cached bucket map, how often a write refused by a bucket
   * fence re-routes before it answers 503, how long a write refused by a frozen bucket watches the map's
   * version (and how often) before asking the shard again; the mover's copy chunk, least pause between chunks,
   * its duty cycle (the share of time its statements may keep the shards busy), buckets moved at once, the grace period before a moved bucket's source rows are deleted, and the freeze's
   * bound on waiting for writes in flight (and its attempts per cut-over).
   */
  resharding: {
    mapTtlMs: number;
    fenceRetries: number;
    fenceWaitMs: number;
    fencePollMs: number;
    chunkRows: number;
    throttleMs: number;
    sharePct: number;
    concurrency: number;
    cleanupGraceSeconds: number;
    freezeWaitMs: number;
    freezeAttempts: number;
    /** Measurement switch (the fence's per-write cost in orders-write): false skips the write fence. Refused in production. */
    fenceCheck: boolean;
  };
  storage: {
    driver: 'fs' | 's3';
    fsRoot: string;
    s3: { endpoint?: string; bucket: string; region: string; accessKey?: string; secretKey?: string; forcePathStyle: boolean };
  };
  /** Shorts pipeline (issue 7): upload limit, queue, worker retries/locks, model window lengths, SSE token. */
  shorts: {
    maxUploadBytes: number;
    queue: string;
    concurrency: number;
    attempts: number;
    lockMs: number;
    stalledIntervalMs: number;
    workDir: string;
    minWindowS: number;
    maxWindowS: number;
    maxShortHeight: number;
    /** CPU threads one model run may use (split between its concurrent cuts). */
    modelThreads: number;
    /** Enqueue sweeper: re-add QUEUED jobs older than sweepAfterS whose queue entry is missing; every sweepIntervalMs (0 = off). */
    sweepAfterS: number;
    sweepIntervalMs: number;
    sseTokenTtlSeconds: number;
    heartbeatMs: number;
    /** Abuse limits: jobs not yet DONE/FAILED (plus unfinished uploads) per user; 429 on upload creation. */
    maxActiveJobsPerUser: number;
    /** Sum of Upload-Length a user may start per UTC day (Redis counter shared by all instances); 429. */
    maxUploadBytesPerDay: number;
    /** Open SSE streams per user across instances; 429. */
    maxSseStreamsPerUser: number;
    /** Unfinished uploads are answered 410 and deleted after this (0 = never). */
    uploadExpiryS: number;
    /** A PATCH whose body sends nothing for this long is cut (what arrived is kept, the lock is freed). */
    uploadIdleTimeoutMs: number;
    /** Retention after a job ends: its source, its result (0 = keep forever); sweep interval (0 = off). */
    sourceRetentionDays: number;
    resultRetentionDays: number;
    retentionIntervalMs: number;
    /** Wall-clock budget of one model run: base + perVideoSecond x the video's duration, then SIGKILL. */
    jobTimeoutBaseS: number;
    jobTimeoutPerVideoSecond: number;
  };
  /**
   * Which address is the client: false = the socket's peer (no proxy in front, X-Forwarded-For ignored);
   * the proxies' addresses/CIDRs = the X-Forwarded-For entry written by the nearest untrusted hop.
   */
  trustProxy: false | string[];
  /** Abuse limits shared by every API instance (counters in Redis, noeviction): requests per window per key. */
  rateLimit: {
    enabled: boolean;
    redisUrl: string;
    prefix: string;
    redisTimeoutMs: number;
    signInPerAccount: RateLimit;
    signInPerIp: RateLimit;
    signUpPerIp: RateLimit;
    uploadPerUser: RateLimit;
    uploadPerIp: RateLimit;
    passwordChangePerUser: RateLimit;
  };
  /**
   * The trade-off console (/console, issue 15): the live stream's tick, and the experiments, which change
   * the running system (cache mode, a replica's SQL thread): only with CONSOLE_EXPERIMENTS=on, never in
   * production, bounded in time (maxRunS) and load (loadConnections concurrent requests).
   */
  /** preset: `short` shrinks the experiments' phases and generated data (tests, a quick look); `full` is what the docs report. */
  console: { experiments: boolean; streamIntervalMs: number; maxRunS: number; loadConnections: number; preset: 'full' | 'short' };
}

/** At most `max` requests per `windowS` seconds per key; max 0 switches that one limit off. */
export interface RateLimit {
  max: number;
  windowS: number;
}

type Env = Record<string, string | undefined>;

/** Test-only crash points of POST /orders: the process SIGKILLs itself there (see OrdersService). */
export const ORDER_FAILPOINTS = ['after-claim', 'after-reserve', 'after-shard-commit'] as const;
export type OrderFailpoint = (typeof ORDER_FAILPOINTS)[number];

// Native stack accounts (docker/local/stack.mjs creates them): the app's URLs carry the DML-only one.
const LOCAL = (port: number, db = 'mallscale') => `mysql://mallscale_app:mallscale_app@127.0.0.1:${port}/${db}`;

/**
 * A URL fit for an error message or a log line: the password and password-like query parameters become
 * ***. Textual on purpose: a value that fails to parse (an unescaped '#', '/' or '@' in a password) is
 * exactly the one an error message prints, so everything before the last '@' after the user name is
 * hidden, and a non-numeric "port" in a URL without '@' too (mysql://user:secret).
 */
export function maskUrl(raw: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(raw)?.[0] ?? '';
  const at = raw.lastIndexOf('@');
  let out = raw;
  if (at >= 0) {
    const userinfo = raw.slice(scheme.length, at);
    const user = /^[^:/?#]*/.exec(userinfo)![0];
    out = `${scheme}${user}${user.length < userinfo.length ? ':***' : ''}@${raw.slice(at + 1)}`;
  } else if (scheme) {
    out = raw.replace(/^([^:]+:\/\/[^:/?#]*:)([^/?#]*)/, (m, head: string, port: string) => (/^\d*$/.test(port) ? m : `${head}***`));
  }
  return out.replace(/([?&][^=&#]*(?:pass|pwd|secret|token|key)[^=&#]*=)[^&#]*/gi, '$1***');
}


export function parseDbUrl(name: string, raw: string): DbUrl {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL (got '${maskUrl(raw)}'): expected mysql://user:password@host:port/database`);
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new ConfigError(`${name} must start with mysql:// (got '${u.protocol}//'): expected mysql://user:password@host:port/database`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!u.hostname || !database || !/^[A-Za-z0-9_]+$/.test(database)) {
    throw new ConfigError(`${name} must name a host and a database of letters, digits and _ (got '${maskUrl(raw)}')`);
  }
  return {
    url: raw,
    host: u.hostname,
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password),
    database,
  };
}

function list(name: string, raw: string): DbUrl[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s, i) => parseDbUrl(`${name}[${i}]`, s));
}

function int(env: Env, name: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max} (got '${raw}')`);
  }
  return n;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], dflt: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!allowed.includes(raw as T)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')} (got '${raw}')`);
  return raw as T;
}

function redisUrl(env: Env, name: string, dflt: string): string {
  const raw = env[name] || dflt;
  let u: URL | undefined;
  try {
    u = new URL(raw);
  } catch {
    /* reported below */
  }
  if (!u || (u.protocol !== 'redis:' && u.protocol !== 'rediss:')) {
    throw new ConfigError(`${name} must be a redis:// URL (got '${maskUrl(raw)}')`);
  }
  return raw;
}

// Only named proxies: 'true' would trust every X-Forwarded-For entry, including those a client writes itself
// (and Fastify trusts nobody for a bare hop count, since a direct client could send enough hops).
/** EDGE_PURGE_URLS: http(s) base URLs (scheme, host, port; no path, no credentials), comma-separated. */
function edgeUrls(env: Env, cacheMode: string): string[] {
  const raw = (env.EDGE_PURGE_URLS ?? '').trim();
  if (!raw) return [];
  if (cacheMode !== 'l1l2') throw new ConfigError(`EDGE_PURGE_URLS needs CACHE_MODE=l1l2: the purge rides the cache invalidation bus, which only that mode runs (got CACHE_MODE=${cacheMode})`);
  return raw.split(',').map((s) => {
    let u: URL;
    try {
      u = new URL(s.trim());
    } catch {
      throw new ConfigError(`EDGE_PURGE_URLS must be comma-separated http(s) URLs like http://127.0.0.1:6081 (got '${s.trim()}')`);
    }
    if (!['http:', 'https:'].includes(u.protocol) || u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
      throw new ConfigError(`EDGE_PURGE_URLS entries are base URLs: http(s), host and port only (got '${s.trim()}')`);
    }
    return u.origin;
  });
}

const PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];
/** `host:port,host:port` (IPv6 in brackets: `[::1]:26379`); empty = no Sentinel, the URL is used directly. */
function sentinelList(env: Env, name: string): RedisEndpoint['sentinels'] {
  const raw = (env[name] ?? '').trim();
  if (!raw) return [];
  return raw.split(',').map((item) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(item.trim());
    const port = Number(m?.[3]);
    if (!m || !(port >= 1 && port <= 65535) || (m[1] !== undefined && isIP(m[1]) !== 6)) {
      throw new ConfigError(`${name} must be a comma-separated list of host:port sentinel addresses (got '${item.trim()}')`);
    }
    return { host: m[1] ?? m[2]!, port };
  });
}

function redisEndpoint(env: Env, role: 'CACHE' | 'QUEUE', url: string): RedisEndpoint {
  const nameVar = `REDIS_${role}_SENTINEL_NAME`;
  const masterName = env[nameVar] || `mallscale-${role.toLowerCase()}`;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(masterName)) throw new ConfigError(`${nameVar} must be 1-64 letters, digits or ._- (got '${masterName}')`);
  const sentinels = sentinelList(env, `REDIS_${role}_SENTINELS`);
  // Short: until the sentinels promote a replica every attempt fails fast (connection refused), and the
  // attempt after the promotion ends the outage, so the pause adds to it directly.
  const reconnectMaxMs = int(env, 'REDIS_SENTINEL_RECONNECT_MAX_MS', 500, 50, 60_000);
  return { url, sentinels, masterName, reconnectMaxMs };
}

function trustProxy(env: Env): false | string[] {
  const raw = (env.TRUST_PROXY ?? '').trim();
  if (raw === '' || raw === 'off') return false;
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length && list.every((a) => PROXY_NAMES.includes(a) || isIP(a.replace(/\/\d{1,3}$/, '')) !== 0)) return list;
  throw new ConfigError(`TRUST_PROXY must be off or a comma-separated list of the proxies' addresses/CIDRs (or loopback, linklocal, uniquelocal) (got '${raw}')`);
}

function rateLimit(env: Env, name: string, max: number, windowS: number): RateLimit {
  return { max: int(env, `${name}_MAX`, max, 0, 1_000_000_000), windowS: int(env, `${name}_WINDOW_S`, windowS, 1, 7 * 24 * 3600) };
}

const DEV_JWT_SECRET = 'mallscale-development-secret-not-for-production';
const DEV_ORDER_CURSOR_SECRET = 'mallscale-development-cursor-key-not-for-production';

/** Every secret-looking default ever printed in this repository: refused wherever the dev keys are. */
export const KNOWN_DEFAULT_SECRETS: readonly string[] = [
  DEV_JWT_SECRET,
  DEV_ORDER_CURSOR_SECRET,
  'mallscale-compose-dev-secret-change-me-0123456789',
  'test-secret-0123456789-0123456789-abcdef',
];

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host) || /^::ffff:127(\.\d{1,3}){3}$/.test(host);
}

function secret(env: Env, name: string, devKeysAllowed: boolean, why: string, devDefault: string): string {
  const raw = env[name] ?? '';
  if (devKeysAllowed) return raw || devDefault;
  const how = 'set it to a random string of at least 32 characters (openssl rand -hex 32)';
  if (!raw) throw new ConfigError(`${name} is required when ${why}: ${how}`);
  if (raw.length < 32) throw new ConfigError(`${name} is too short for ${why}: ${how}`);
  const lower = raw.toLowerCase();
  // A placeholder ('changeme' pasted 4 times, 'x' * 32) is as public as a printed default.
  if (KNOWN_DEFAULT_SECRETS.includes(raw) || /change-?_?me|replace-?_?me|placeholder/.test(lower) || new Set(raw).size < 10) {
    throw new ConfigError(`${name} is a known default or placeholder, refused when ${why}: ${how}`);
  }
  return raw;
}

/** Passwords of the native stack's accounts (docker/local/stack.mjs): printed here, so never a production one. */
export const NATIVE_STACK_DB_PASSWORDS: readonly string[] = ['mallscale', 'mallscale_app', 'mallscale_ddl', 'mallscale_monitor', 'repl', 'root'];

/**
 * The database URLs and the DDL/monitor accounts. Outside production every key defaults to the native
 * stack. In production nothing defaults to it: the URLs must be given, no password may be empty or one of
 * the native stack's, and without DB_DDL_* / DB_MONITOR_* those jobs use the app's own account (which
 * has DML only, so DDL then fails closed instead of running with a printed password).
 */
function databases(env: Env, production: boolean): AppConfig['db'] {
  // An empty DB_REPLICA_URLS means "no replicas"; an empty primary or shard list means "not set".
  const given = (name: string, dflt: string): string => {
    if (env[name] !== undefined && (env[name] !== '' || name === 'DB_REPLICA_URLS')) return env[name]!;
    if (production) throw new ConfigError(`${name} is required when NODE_ENV=production (the default is the native stack, whose passwords are printed in this repository)`);
    return dflt;
  };
  const catalog = oneOf(env, 'DB_CATALOG_MODE', ['replicated', 'galera'] as const, 'replicated');
  // Galera: the first node takes writes until it fails, every node serves reads (DB_PRIMARY_URL / DB_REPLICA_URLS unused).
  const galera = catalog === 'galera' ? list('DB_GALERA_URLS', given('DB_GALERA_URLS', [3320, 3321, 3322].map((p) => LOCAL(p)).join(','))) : [];
  if (catalog === 'galera' && galera.length < 2) {
    throw new ConfigError('DB_GALERA_URLS must list at least two nodes of the Galera cluster with DB_CATALOG_MODE=galera (three or more, so that a majority survives losing one)');
  }
  const primary = catalog === 'galera' ? galera[0] : parseDbUrl('DB_PRIMARY_URL', given('DB_PRIMARY_URL', LOCAL(3307)));
  const replicas = catalog === 'galera' ? galera.slice(1) : list('DB_REPLICA_URLS', given('DB_REPLICA_URLS', `${LOCAL(3308)},${LOCAL(3309)}`));
  const shards = list('DB_SHARD_URLS', given('DB_SHARD_URLS', `${LOCAL(3310)},${LOCAL(3311)}`));
  if (shards.length === 0) throw new ConfigError('DB_SHARD_URLS must list at least one shard');
  const account = (prefix: 'DB_DDL' | 'DB_MONITOR', dflt: string): DbCredentials => {
    if (production && env[`${prefix}_USER`] === undefined && env[`${prefix}_PASSWORD`] === undefined) return { user: primary.user, password: primary.password };
    return { user: env[`${prefix}_USER`] || dflt, password: env[`${prefix}_PASSWORD`] ?? dflt };
  };
  const ddl = account('DB_DDL', 'mallscale_ddl');
  const monitor = account('DB_MONITOR', 'mallscale_monitor');
  if (production) {
    const checks: [string, string][] = [
      ...(catalog === 'galera'
        ? galera.map((u, i) => [`DB_GALERA_URLS[${i}]`, u.password] as [string, string])
        : [['DB_PRIMARY_URL', primary.password] as [string, string], ...replicas.map((u, i) => [`DB_REPLICA_URLS[${i}]`, u.password] as [string, string])]),
      ...shards.map((u, i) => [`DB_SHARD_URLS[${i}]`, u.password] as [string, string]),
      ['DB_DDL_PASSWORD', ddl.password],
      ['DB_MONITOR_PASSWORD', monitor.password],
    ];
    for (const [name, password] of checks) {
      if (!password || NATIVE_STACK_DB_PASSWORDS.includes(password)) {
        throw new ConfigError(`${name} has ${password ? "a password printed in this repository (the native stack's)" : 'an empty password'}, refused when NODE_ENV=production: give the account a generated password (openssl rand -hex 24)`);
      }
    }
  }
  return { primary, replicas, shards, poolSize: int(env, 'DB_POOL_SIZE', 16, 1, 500), ddl, monitor, catalog };
}

export function loadConfig(env: Env = process.env): AppConfig {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  // Refused first, before anything else production asks for: the switch alone must never reach a deployment.
  const consoleExperiments = oneOf(env, 'CONSOLE_EXPERIMENTS', ['on', 'off'] as const, 'off') === 'on';
  if (consoleExperiments && nodeEnv === 'production') {
    throw new ConfigError('CONSOLE_EXPERIMENTS=on is refused when NODE_ENV=production: the console experiments stop replication threads and switch the cache off on the native stack');
  }
  const fenceCheck = oneOf(env, 'SHARD_FENCE_CHECK', ['on', 'off'] as const, 'on') === 'on';
  if (!fenceCheck && nodeEnv === 'production') {
    throw new ConfigError('SHARD_FENCE_CHECK=off is refused when NODE_ENV=production: without the bucket fence a router with an old map writes moved buckets on their old shard');
  }
  const host = env.HOST || '127.0.0.1';
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(host)) throw new ConfigError(`HOST must be a host name or an IP address (got '${host}')`);
  // The built-in development keys are printed in this repository: only a development or test server that
  // nobody else can reach may use them. Everywhere else each key must be given, long and not a known one.
  // A loopback bind behind a reverse proxy on the same machine (TRUST_PROXY set) is reachable by anybody
  // the proxy serves, so the development keys are refused there too (tests excepted: they never listen
  // anywhere but their own loopback ports).
  const proxies = trustProxy(env);
  const behindProxy = proxies !== false && nodeEnv !== 'test';
  const devKeysAllowed = nodeEnv !== 'production' && isLoopback(host) && !behindProxy;
  const why = nodeEnv === 'production' ? 'NODE_ENV=production' : behindProxy ? 'TRUST_PROXY is set (a proxy serves this loopback address)' : `HOST=${host} is not a loopback address`;
  const jwtSecret = secret(env, 'JWT_SECRET', devKeysAllowed, why, DEV_JWT_SECRET);
  const orderCursorSecret = secret(env, 'ORDER_CURSOR_SECRET', devKeysAllowed, why, DEV_ORDER_CURSOR_SECRET);
  if (!devKeysAllowed && orderCursorSecret === jwtSecret) throw new ConfigError('ORDER_CURSOR_SECRET must differ from JWT_SECRET: generate a second key (openssl rand -hex 32)');
  const db = databases(env, nodeEnv === 'production');
  return {
    env: nodeEnv,
    port: int(env, 'PORT', 3000, 0, 65535),
    host,
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    db,
    redis: (() => {
      const cacheUrl = redisUrl(env, 'REDIS_CACHE_URL', 'redis://127.0.0.1:6380');
      const queueUrl = redisUrl(env, 'REDIS_QUEUE_URL', 'redis://127.0.0.1:6381');
      return { cacheUrl, queueUrl, cache: redisEndpoint(env, 'CACHE', cacheUrl), queue: redisEndpoint(env, 'QUEUE', queueUrl) };
    })(),
    cache: (() => {
      const prefix = env.CACHE_PREFIX || `${parseDbUrl('DB_PRIMARY_URL', env.DB_PRIMARY_URL || LOCAL(3307)).database}:`;
      if (!/^[A-Za-z0-9_:.-]{1,64}$/.test(prefix)) throw new ConfigError(`CACHE_PREFIX must be 1-64 letters, digits or _:.- (got '${prefix}')`);
      const beta = Number(env.CACHE_XFETCH_BETA ?? '1');
      if (!Number.isFinite(beta) || beta < 0 || beta > 10) throw new ConfigError(`CACHE_XFETCH_BETA must be a number between 0 and 10 (got '${env.CACHE_XFETCH_BETA}')`);
      const leaseMs = int(env, 'CACHE_LEASE_MS', 2000, 10, 60_000);
      const busHeartbeatMs = int(env, 'CACHE_BUS_HEARTBEAT_MS', 1_000, 10, 60_000);
      const busSilentMs = int(env, 'CACHE_BUS_SILENT_MS', 3 * busHeartbeatMs, 20, 300_000);
      if (busSilentMs <= busHeartbeatMs) throw new ConfigError(`CACHE_BUS_SILENT_MS must be longer than CACHE_BUS_HEARTBEAT_MS (got ${busSilentMs} ≤ ${busHeartbeatMs}): one late echo would clear L1`);
      return {
        mode: oneOf(env, 'CACHE_MODE', ['off', 'l2', 'l1l2'] as const, 'l1l2'),
        prefix,
        // Sized for the head of a Zipf curve (50k products ≈ 94 % of reads over 100k): about 3.4 KB of RSS per
        // ~600-byte product, 161 MB for 50k (load-tests/results/l1-memory.json). The TTL does not bound staleness while the bus
        // is live (its heartbeat does); it bounds writes made outside the API (a direct SQL fix) on top of L2's.
        l1MaxEntries: int(env, 'CACHE_L1_MAX_ENTRIES', 50_000, 1, 10_000_000),
        l1MaxBytes: int(env, 'CACHE_L1_MAX_BYTES', 64 * 1024 * 1024, 1024, 4 * 1024 * 1024 * 1024),
        l1TtlMs: int(env, 'CACHE_L1_TTL_MS', 60_000, 1, 3_600_000),
        busHeartbeatMs,
        busSilentMs,
        l2TtlMs: int(env, 'CACHE_L2_TTL_MS', 300_000, 100, 7 * 24 * 3_600_000),
        ttlJitterPct: int(env, 'CACHE_TTL_JITTER_PCT', 10, 0, 90),
        negativeTtlMs: int(env, 'CACHE_NEGATIVE_TTL_MS', 5_000, 1, 3_600_000),
        listTtlMs: int(env, 'CACHE_LIST_TTL_MS', 10_000, 1, 3_600_000),
        leaseMs,
        leaseWaitMs: int(env, 'CACHE_LEASE_WAIT_MS', leaseMs + 1000, 10, 120_000),
        redisTimeoutMs: int(env, 'CACHE_REDIS_TIMEOUT_MS', 250, 1, 60_000),
        breakerFailures: int(env, 'CACHE_BREAKER_FAILURES', 3, 1, 1000),
        breakerCooldownMs: int(env, 'CACHE_BREAKER_COOLDOWN_MS', 1_000, 10, 600_000),
        xfetchBeta: beta,
        // Browsers and edges may serve a product this long after a write (docs/q1-hot-products.md, staleness budget).
        httpMaxAgeS: int(env, 'CACHE_HTTP_MAX_AGE_S', 5, 0, 86_400),
        httpSwrS: int(env, 'CACHE_HTTP_SWR_S', 10, 0, 86_400),
      };
    })(),
    edge: {
      purgeUrls: edgeUrls(env, env.CACHE_MODE ?? 'l1l2'),
      purgeTimeoutMs: int(env, 'EDGE_PURGE_TIMEOUT_MS', 1_000, 10, 60_000),
    },
    benchPeerCache: (() => {
      const peer = oneOf(env, 'BENCH_PEER_CACHE', ['none', 'nest-cache-manager'] as const, 'none');
      if (peer !== 'none' && nodeEnv === 'production') throw new ConfigError('BENCH_PEER_CACHE is a benchmark baseline (load-tests/scenarios/hot-products.ts): refused with NODE_ENV=production');
      return peer;
    })(),
    replication: {
      maxLagMs: int(env, 'MAX_REPLICA_LAG_MS', 1000, 0, 3_600_000),
      waitMs: int(env, 'REPLICA_WAIT_MS', 50, 0, 10_000),
      fallback: oneOf(env, 'REPLICA_FALLBACK', ['primary', '503'] as const, 'primary'),
      monitorIntervalMs: int(env, 'REPLICA_MONITOR_INTERVAL_MS', 500, 50, 60_000),
      userTokenTtlMs: int(env, 'CONSISTENCY_TOKEN_TTL_MS', 10_000, 100, 3_600_000),
    },
    auth: {
      jwtSecret,
      tokenTtlSeconds: int(env, 'JWT_TTL_SECONDS', 3600, 60, 30 * 24 * 3600),
      issuer: env.JWT_ISSUER || 'mallscale',
      audience: env.JWT_AUDIENCE || 'mallscale-shop-api',
      orderCursorSecret,
      // At most a minute: a demoted admin or a deleted user must lose access within that.
      roleCacheMs: int(env, 'AUTH_ROLE_CACHE_MS', 30_000, 0, 60_000),
      // Half the cores (at least one): argon2 is CPU-bound by design, and a sign-in flood must leave the
      // event loop a core of its own, or every other route's latency pays for the flood.
      hashConcurrency: int(env, 'AUTH_HASH_CONCURRENCY', Math.max(1, Math.floor(availableParallelism() / 2)), 1, 64),
      hashQueueMax: int(env, 'AUTH_HASH_QUEUE_MAX', 64, 0, 100_000),
    },
    http: {
      maxJsonDepth: int(env, 'HTTP_MAX_JSON_DEPTH', 32, 1, 1000),
    },
    partitions: (() => {
      const monthsBack = int(env, 'PARTITION_MONTHS_BACK', 12, 0, 120);
      const retentionMonths = int(env, 'PARTITION_RETENTION_MONTHS', 24, 1, 1200);
      const retention = oneOf(env, 'PARTITION_RETENTION', ['off', 'archive', 'drop'] as const, 'archive');
      if (retention !== 'off' && retentionMonths < monthsBack) {
        throw new ConfigError(`PARTITION_RETENTION_MONTHS (${retentionMonths}) must be at least PARTITION_MONTHS_BACK (${monthsBack}), or retention would remove months the maintainer keeps`);
      }
      return { monthsAhead: int(env, 'PARTITION_MONTHS_AHEAD', 3, 1, 24), monthsBack, retentionMonths, retention, intervalSeconds: int(env, 'PARTITION_MAINTENANCE_INTERVAL_S', 3600, 0, 7 * 24 * 3600) };
    })(),
    orders: {
      leaseMs: int(env, 'ORDER_LEASE_MS', 30_000, 100, 3_600_000),
      reconcileIntervalSeconds: int(env, 'ORDER_RECONCILE_INTERVAL_S', 60, 0, 24 * 3600),
      reservationRetentionHours: int(env, 'ORDER_RESERVATION_RETENTION_H', 24, 1, 24 * 365),
      // A crash switch must never reach a real deployment: outside NODE_ENV=test it is ignored.
      failpoint: nodeEnv === 'test' && env.ORDER_FAILPOINT ? oneOf(env, 'ORDER_FAILPOINT', ORDER_FAILPOINTS, 'after-claim') : '',
    },
    resharding: {
      mapTtlMs: int(env, 'SHARD_MAP_TTL_MS', 5000, 0, 3_600_000),
      fenceRetries: int(env, 'SHARD_FENCE_RETRIES', 50, 1, 1000),
      fenceWaitMs: int(env, 'SHARD_FENCE_WAIT_MS', 2000, 0, 60_000),
      fencePollMs: int(env, 'SHARD_FENCE_POLL_MS', 10, 1, 1000),
      chunkRows: int(env, 'RESHARD_CHUNK_ROWS', 500, 1, 100_000),
      throttleMs: int(env, 'RESHARD_THROTTLE_MS', 5, 0, 60_000),
      sharePct: int(env, 'RESHARD_SHARE_PCT', 50, 1, 100),
      concurrency: int(env, 'RESHARD_CONCURRENCY', 4, 1, 64),
      cleanupGraceSeconds: int(env, 'RESHARD_CLEANUP_GRACE_S', 300, 0, 7 * 24 * 3600),
      freezeWaitMs: int(env, 'RESHARD_FREEZE_WAIT_MS', 300, 10, 60_000),
      freezeAttempts: int(env, 'RESHARD_FREEZE_ATTEMPTS', 5, 1, 100),
      fenceCheck,
    },
    storage: {
      driver: oneOf(env, 'STORAGE_DRIVER', ['fs', 's3'] as const, 'fs'),
      fsRoot: env.STORAGE_FS_ROOT || 'var/storage',
      s3: {
        endpoint: env.S3_ENDPOINT || undefined,
        bucket: env.S3_BUCKET || 'mallscale',
        region: env.S3_REGION || 'us-east-1',
        accessKey: env.S3_ACCESS_KEY || undefined,
        secretKey: env.S3_SECRET_KEY || undefined,
        forcePathStyle: (env.S3_FORCE_PATH_STYLE ?? 'true') !== 'false',
      },
    },
    shorts: (() => {
      const minWindowS = int(env, 'SHORTS_MIN_WINDOW_S', 15, 1, 600);
      const maxWindowS = int(env, 'SHORTS_MAX_WINDOW_S', 60, 1, 600);
      if (maxWindowS < minWindowS) throw new ConfigError(`SHORTS_MAX_WINDOW_S (${maxWindowS}) must be at least SHORTS_MIN_WINDOW_S (${minWindowS})`);
      const queue = env.SHORTS_QUEUE || 'shorts';
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(queue)) throw new ConfigError(`SHORTS_QUEUE must be 1-64 letters, digits, _ or - (got '${queue}')`);
      return {
        maxUploadBytes: int(env, 'SHORTS_MAX_UPLOAD_BYTES', 2 * 1024 ** 3, 1),
        queue,
        concurrency: int(env, 'SHORTS_WORKER_CONCURRENCY', 1, 1, 64),
        attempts: int(env, 'SHORTS_ATTEMPTS', 3, 1, 20),
        lockMs: int(env, 'SHORTS_LOCK_MS', 30000, 1000, 600000),
        stalledIntervalMs: int(env, 'SHORTS_STALLED_INTERVAL_MS', 30000, 500, 600000),
        workDir: env.SHORTS_WORK_DIR || '',
        minWindowS,
        maxWindowS,
        maxShortHeight: int(env, 'SHORTS_MAX_HEIGHT', 960, 64, 4096),
        modelThreads: int(env, 'SHORTS_MODEL_THREADS', 2, 1, 64),
        sweepAfterS: int(env, 'SHORTS_SWEEP_AFTER_S', 60, 1, 86400),
        sweepIntervalMs: int(env, 'SHORTS_SWEEP_INTERVAL_MS', 30000, 0, 3600000),
        sseTokenTtlSeconds: int(env, 'SHORTS_SSE_TOKEN_TTL_S', 900, 10, 86400),
        heartbeatMs: int(env, 'SHORTS_SSE_HEARTBEAT_MS', 15000, 100, 600000),
        maxActiveJobsPerUser: int(env, 'SHORTS_MAX_ACTIVE_JOBS_PER_USER', 3, 1, 10000),
        maxUploadBytesPerDay: int(env, 'SHORTS_MAX_UPLOAD_BYTES_PER_DAY', 10 * 1024 ** 3, 1),
        maxSseStreamsPerUser: int(env, 'SHORTS_MAX_SSE_STREAMS_PER_USER', 10, 1, 10000),
        uploadExpiryS: int(env, 'SHORTS_UPLOAD_EXPIRY_S', 24 * 3600, 0, 365 * 86400),
        uploadIdleTimeoutMs: int(env, 'SHORTS_UPLOAD_IDLE_TIMEOUT_MS', 30000, 100, 3600000),
        sourceRetentionDays: int(env, 'SHORTS_SOURCE_RETENTION_DAYS', 7, 0, 36500),
        resultRetentionDays: int(env, 'SHORTS_RESULT_RETENTION_DAYS', 30, 0, 36500),
        retentionIntervalMs: int(env, 'SHORTS_RETENTION_INTERVAL_MS', 3600000, 0, 86400000),
        jobTimeoutBaseS: int(env, 'SHORTS_JOB_TIMEOUT_BASE_S', 300, 1, 7 * 86400),
        jobTimeoutPerVideoSecond: (() => {
          const raw = env.SHORTS_JOB_TIMEOUT_PER_VIDEO_S ?? '4';
          const n = Number(raw);
          if (raw === '' || !Number.isFinite(n) || n < 0 || n > 1000) throw new ConfigError(`SHORTS_JOB_TIMEOUT_PER_VIDEO_S must be a number between 0 and 1000 (got '${raw}')`);
          return n;
        })(),
      };
    })(),
    trustProxy: proxies,
    rateLimit: (() => {
      const prefix = env.RATE_LIMIT_PREFIX || `${parseDbUrl('DB_PRIMARY_URL', env.DB_PRIMARY_URL || LOCAL(3307)).database}:rl:`;
      if (!/^[A-Za-z0-9_:.-]{1,64}$/.test(prefix)) throw new ConfigError(`RATE_LIMIT_PREFIX must be 1-64 letters, digits or _:.- (got '${prefix}')`);
      return {
        enabled: oneOf(env, 'RATE_LIMIT', ['on', 'off'] as const, 'on') === 'on',
        redisUrl: redisUrl(env, 'RATE_LIMIT_REDIS_URL', env.REDIS_QUEUE_URL || 'redis://127.0.0.1:6381'),
        prefix,
        redisTimeoutMs: int(env, 'RATE_LIMIT_REDIS_TIMEOUT_MS', 500, 10, 60_000),
        signInPerAccount: rateLimit(env, 'RATE_LIMIT_SIGN_IN_ACCOUNT', 10, 900),
        signInPerIp: rateLimit(env, 'RATE_LIMIT_SIGN_IN_IP', 100, 600),
        signUpPerIp: rateLimit(env, 'RATE_LIMIT_SIGN_UP_IP', 20, 3600),
        uploadPerUser: rateLimit(env, 'RATE_LIMIT_UPLOAD_USER', 30, 3600),
        uploadPerIp: rateLimit(env, 'RATE_LIMIT_UPLOAD_IP', 60, 3600),
        passwordChangePerUser: rateLimit(env, 'RATE_LIMIT_PASSWORD_USER', 5, 900),
      };
    })(),
    console: (() => {
      const experiments = consoleExperiments;
      return {
        experiments,
        streamIntervalMs: int(env, 'CONSOLE_STREAM_INTERVAL_MS', 1000, 200, 60_000),
        maxRunS: int(env, 'CONSOLE_EXPERIMENT_MAX_S', 60, 10, 60),
        loadConnections: int(env, 'CONSOLE_LOAD_CONNECTIONS', 16, 1, 64),
        preset: oneOf(env, 'CONSOLE_EXPERIMENT_PRESET', ['full', 'short'] as const, 'full'),
      };
    })(),
  };
}

/** The loaded config as a Nest injection token: `constructor(private readonly config: Settings)`. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface Settings extends AppConfig {}
export abstract class Settings {}

/** Loads the config or stops the process with one sentence naming what is wrong (apps' main.ts). */
export function loadConfigOrExit(app: string, env: Env = process.env): AppConfig {
  try {
    return loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`${app} cannot start: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}
