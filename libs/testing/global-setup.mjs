/**
 * jest globalSetup (plain ESM: jest loads global setup outside its module mapper). Finds real servers
 * in this order: DSNs in the environment (TEST_DB_PRIMARY_URL, …), the native stack (started when not
 * running), testcontainers running docker-compose.yml where a Docker engine answers. Then migrates the
 * test databases once (mallscale_test; the migrator refuses names without "test").
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuild, root } from '../../scripts/bootstrap.mjs';

function dockerAvailable() {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

const nativeBinaries = () => ['/usr/sbin/mariadbd', '/usr/sbin/mysqld', '/usr/bin/mariadbd'].some(existsSync) && existsSync('/usr/bin/redis-server');

export default async function globalSetup() {
  ensureBuild();
  if (!process.env.TEST_DB_PRIMARY_URL) {
    if (nativeBinaries() || !dockerAvailable()) {
      // The launcher installs missing binaries itself when it can (root + apt-get), else says what to install.
      const stack = await import(join(root, 'docker/local/stack.mjs'));
      await stack.up({ quiet: true });
    } else {
      const { DockerComposeEnvironment, Wait } = await import('testcontainers');
      const key = () => randomBytes(32).toString('hex');
      // docker-compose.yml has no default passwords: these throw-away ones match test-env.ts's accounts, and
      // root is the harness's admin for fixtures there (the native stack's `mallscale` does not exist).
      const secrets = { MALLSCALE_APP_PASSWORD: 'mallscale_app', MALLSCALE_DDL_PASSWORD: 'mallscale_ddl', MALLSCALE_MONITOR_PASSWORD: 'mallscale_monitor' };
      Object.assign(process.env, { TEST_DB_ADMIN_USER: 'root', TEST_DB_ADMIN_PASSWORD: 'test-root' });
      globalThis.__MALLSCALE_COMPOSE__ = await new DockerComposeEnvironment(root, 'docker-compose.yml')
        .withEnvironment({ ...secrets, JWT_SECRET: key(), ORDER_CURSOR_SECRET: key(), MYSQL_ROOT_PASSWORD: 'test-root', MALLSCALE_REPL_PASSWORD: 'test-repl', MINIO_ROOT_PASSWORD: 'test-minio-secret' })
        .withWaitStrategy('replica-setup', Wait.forOneShotStartup())
        .up(['mysql-primary', 'mysql-replica-1', 'mysql-replica-2', 'replica-setup', 'mysql-shard-0', 'mysql-shard-1', 'redis-cache', 'redis-queue']);
    }
  }
  // The migrator reads its databases from the environment like any tool: the test environment here, checked
  // first (testConfig refuses a database whose name lacks "test").
  const { testConfig, testEnv } = await import(join(root, 'dist/libs/testing/src/index.js'));
  testConfig();
  const r = spawnSync(process.execPath, [join(root, 'dist/tools/migrate.js')], { stdio: 'inherit', cwd: root, env: { ...process.env, ...testEnv() } });
  if (r.status !== 0) throw new Error('migrating the test databases failed (see above)');
}
