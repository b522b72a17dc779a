/**
 * Configuration, one validated namespace per concern, read once at start.
 * Every key has a default that works with the native stack (docker/local); a wrong value stops start-up
 * with one sentence naming the variable, because a half-configured reference backend teaches nothing.
 */
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

export interface AppConfig {
  env: 'development' | 'production' | 'test';
  port: number;
  logLevel: string;
  db: { primary: DbUrl; replicas: DbUrl[]; shards: DbUrl[]; poolSize: number };
  redis: { cacheUrl: string; queueUrl: string };
  /** Replica read routing (issue 5, libs/db ReplicaRouter + ReplicaMonitor): lag limit, token wait, fallback. */
  replication: { maxLagMs: number; waitMs: number; fallback: 'primary' | '503'; monitorIntervalMs: number; userTokenTtlMs: number };
  /** Hot-products cache (issue 3): tiers, bounds, TTLs, lease and breaker (libs/cache ProductCache). */
  cache: {
    mode: 'off' | 'l2' | 'l1l2';
    prefix: string;
    l1MaxEntries: number;
    l1MaxBytes: number;
    l1TtlMs: number;
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
  };
  auth: { jwtSecret: string; tokenTtlSeconds: number };
  /** Request parsing limits: JSON nesting depth (deeper bodies answer 400 before validation walks them). */
  http: { maxJsonDepth: number };
  /** Monthly order partitions (PartitionMaintainer): months kept ahead/behind, retention, schedule. */
  partitions: { monthsAhead: number; monthsBack: number; retentionMonths: number; retention: 'off' | 'archive' | 'drop'; intervalSeconds: number };
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
  };
}

type Env = Record<string, string | undefined>;

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

const LOCAL = (port: number, db = 'mallscale') => `mysql://mallscale:mallscale@127.0.0.1:${port}/${db}`;

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

export function loadConfig(env: Env = process.env): AppConfig {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const jwtSecret = env.JWT_SECRET ?? '';
  if (nodeEnv === 'production' && jwtSecret.length < 32) {
    throw new ConfigError(
      jwtSecret
        ? 'JWT_SECRET is too short for NODE_ENV=production: use a random string of at least 32 characters'
        : 'JWT_SECRET is required when NODE_ENV=production: set it to a random string of at least 32 characters',
    );
  }
  return {
    env: nodeEnv,
    port: int(env, 'PORT', 3000, 0, 65535),
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    db: {
      primary: parseDbUrl('DB_PRIMARY_URL', env.DB_PRIMARY_URL || LOCAL(3307)),
      replicas: list('DB_REPLICA_URLS', env.DB_REPLICA_URLS ?? `${LOCAL(3308)},${LOCAL(3309)}`),
      shards: (() => {
        const shards = list('DB_SHARD_URLS', env.DB_SHARD_URLS ?? `${LOCAL(3310)},${LOCAL(3311)}`);
        if (shards.length === 0) throw new ConfigError('DB_SHARD_URLS must list at least one shard');
        return shards;
      })(),
      poolSize: int(env, 'DB_POOL_SIZE', 16, 1, 500),
    },
    redis: {
      cacheUrl: redisUrl(env, 'REDIS_CACHE_URL', 'redis://127.0.0.1:6380'),
      queueUrl: redisUrl(env, 'REDIS_QUEUE_URL', 'redis://127.0.0.1:6381'),
    },
    cache: (() => {
      const prefix = env.CACHE_PREFIX || `${parseDbUrl('DB_PRIMARY_URL', env.DB_PRIMARY_URL || LOCAL(3307)).database}:`;
      if (!/^[A-Za-z0-9_:.-]{1,64}$/.test(prefix)) throw new ConfigError(`CACHE_PREFIX must be 1-64 letters, digits or _:.- (got '${prefix}')`);
      const beta = Number(env.CACHE_XFETCH_BETA ?? '1');
      if (!Number.isFinite(beta) || beta < 0 || beta > 10) throw new ConfigError(`CACHE_XFETCH_BETA must be a number between 0 and 10 (got '${env.CACHE_XFETCH_BETA}')`);
      const leaseMs = int(env, 'CACHE_LEASE_MS', 2000, 10, 60_000);
      return {
        mode: oneOf(env, 'CACHE_MODE', ['off', 'l2', 'l1l2'] as const, 'l1l2'),
        prefix,
        l1MaxEntries: int(env, 'CACHE_L1_MAX_ENTRIES', 10_000, 1, 10_000_000),
        l1MaxBytes: int(env, 'CACHE_L1_MAX_BYTES', 32 * 1024 * 1024, 1024, 4 * 1024 * 1024 * 1024),
        l1TtlMs: int(env, 'CACHE_L1_TTL_MS', 5_000, 1, 3_600_000),
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
      };
    })(),
    replication: {
      maxLagMs: int(env, 'MAX_REPLICA_LAG_MS', 1000, 0, 3_600_000),
      waitMs: int(env, 'REPLICA_WAIT_MS', 50, 0, 10_000),
      fallback: oneOf(env, 'REPLICA_FALLBACK', ['primary', '503'] as const, 'primary'),
      monitorIntervalMs: int(env, 'REPLICA_MONITOR_INTERVAL_MS', 500, 50, 60_000),
      userTokenTtlMs: int(env, 'CONSISTENCY_TOKEN_TTL_MS', 10_000, 100, 3_600_000),
    },
    auth: {
      jwtSecret: jwtSecret || 'mallscale-development-secret-not-for-production',
      tokenTtlSeconds: int(env, 'JWT_TTL_SECONDS', 3600, 60, 30 * 24 * 3600),
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
