// The binaries the stack runs (the system's mariadbd/mysqld, redis-server, ffmpeg, optional chromium and
// varnishd), found on PATH and the sbin folders; as root with apt-get, missing Debian packages are installed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { dialectSqlFor } from '#dialect-sql';
import { IS_ROOT, fail } from './env.mjs';

// ffmpeg: the shorts model (libs/shorts-model) and its tests run the system ffmpeg/ffprobe.
// chromium: the headless-browser test of My page (apps/web/test, playwright-core drives Debian's chromium);
// optional: installed when apt-get can, never a reason to refuse starting the stack.
export const DEBIAN_PACKAGES = 'mariadb-server mariadb-client redis-server ffmpeg chromium';

export function which(name) {
  const dirs = [...(process.env.PATH || '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

/** apt-get install, with one `apt-get update` and retry when the package lists are stale. */
export function aptInstall(packages) {
  const apt = (...a) => execFileSync('apt-get', a, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  try { apt('install', '-y', ...packages); } catch { apt('update'); apt('install', '-y', ...packages); }
}
export const canApt = () => IS_ROOT && which('apt-get');

function findBinaries() {
  const b = {
    server: which('mariadbd') || which('mysqld'),
    install: which('mariadb-install-db') || which('mysql_install_db'),
    client: which('mariadb') || which('mysql'),
    redis: which('redis-server'),
    ffmpeg: which('ffmpeg') && which('ffprobe'),
    chromium: which('chromium'),
  };
  if (b.server) {
    b.version = execFileSync(b.server, ['--version']).toString().trim();
    b.mysql8 = !/mariadb/i.test(b.version); // Debian's mysqld is MariaDB; real MySQL initialises itself
  }
  const missing = Object.entries({ 'mariadbd/mysqld': b.server, 'mariadb/mysql client': b.client, 'redis-server': b.redis, 'ffmpeg/ffprobe': b.ffmpeg,
    'mariadb-install-db': b.mysql8 ? 'n/a' : b.install }).filter(([, v]) => !v).map(([k]) => k);
  return { b, missing };
}

let bins;
/** { server, install, client, redis, ffmpeg, chromium, version, mysql8 }; installs what is missing when it can, else fails saying what to install. */
export function binaries() {
  if (bins) return bins;
  let { b, missing } = findBinaries();
  if ((missing.length || !b.chromium) && canApt()) {
    console.log(`stack: missing ${[...missing, ...(b.chromium ? [] : ['chromium (optional)'])].join(', ')}; installing ${DEBIAN_PACKAGES} with apt-get`);
    try { aptInstall(DEBIAN_PACKAGES.split(' ')); } catch (e) { if (missing.length) throw e; console.log('stack: could not install chromium; only the browser test needs it'); }
    ({ b, missing } = findBinaries());
  }
  if (missing.length) fail(`missing ${missing.join(', ')}. Install the Debian packages: sudo apt-get install -y ${DEBIAN_PACKAGES}`);
  return (bins = b);
}

/** varnishd for the optional edge cache (Debian package varnish). */
export function varnishd() {
  let bin = which('varnishd');
  if (!bin && canApt()) {
    console.log('stack: varnishd missing; installing the Debian package varnish with apt-get');
    aptInstall(['varnish']);
    bin = which('varnishd');
  }
  return bin ?? fail('missing varnishd. Install the Debian package: sudo apt-get install -y varnish');
}

/** The statements of the installed server's SQL dialect (libs/db/src/dialect-sql.js, shared with SqlDialect). */
export const dialect = () => dialectSqlFor(binaries().version);
