// Scenario `orders-growth`: what monthly partitioning changes, and what it does not, on a big orders table.
// Runs on the catalog primary of the stack (it has the replicas, so replica lag can be measured), in its
// own database mallscale_bench_growth: `orders_part` (RANGE COLUMNS(created_at) by month) and `orders_flat`
// (the same columns and the same indexes, unpartitioned), N rows over 14 months (--rows, default 10M).
// Measures: retention (DELETE a month vs DROP / EXCHANGE PARTITION: time + replica lag), a month-wide scan
// (rows examined), one user's month (rows examined + latency), inserts with a buffer pool smaller than the
// indexes (rows/s, buffer-pool disk reads per 1,000 inserts), and the shard balance of 1M users.
// Database-level, so Node only (`run`); the k6 script load-tests/k6/orders-growth.js drives the HTTP month query.
// Private stack: STACK_PORT_PRIMARY / STACK_PORT_REPLICA_1 / _2 are honoured.
const port = (name, dflt) => Number((typeof process !== 'undefined' && process.env[`STACK_PORT_${name}`]) || dflt);

const DDL = (name, partitioned) => `CREATE TABLE ${name} (
  id BIGINT UNSIGNED NOT NULL, user_id BIGINT UNSIGNED NOT NULL, bucket SMALLINT UNSIGNED NOT NULL,
  status VARCHAR(16) NOT NULL, total_cents BIGINT UNSIGNED NOT NULL, item_count INT UNSIGNED NOT NULL,
  created_at DATETIME(3) NOT NULL, PRIMARY KEY (id, created_at), KEY ix_user_created (user_id, created_at, id)
) ENGINE=InnoDB${partitioned ? ` PARTITION BY RANGE COLUMNS (created_at) (${partitioned}, PARTITION pmax VALUES LESS THAN (MAXVALUE))` : ''}`;

export default {
  name: 'orders-growth',
  description: 'orders table at scale: partitioned vs unpartitioned (retention, month scan, user month, inserts) + shard balance',
  modes: {},
  request() {
    // k6 side (load-tests/k6/orders-growth.js): the partition-pruned month query of a signed-in user.
    const env = typeof __ENV !== 'undefined' ? __ENV : {};
    return { method: 'GET', path: `/me/orders?from=${env.FROM || '2026-01-01'}&to=${env.TO || '2026-02-01'}&limit=20`, headers: { authorization: `Bearer ${env.ORDERS_TOKEN || ''}` } };
  },

  async run(ctx, opts) {
    const { join } = await import('node:path');
    const { pathToFileURL } = await import('node:url');
    const mysql = await ctx.load('mysql2/promise');
    const dbLib = await import(pathToFileURL(join(ctx.root, 'dist/libs/db/src/index.js')).href);
    const ROWS = Number(opts.rows ?? 10_000_000);
    const USERS = Number(opts.users ?? 200_000);
    const MONTHS = 14;
    const DB = 'mallscale_bench_growth';
    const conn = (p, db = DB) => mysql.createConnection({ host: '127.0.0.1', port: p, user: 'mallscale', password: 'mallscale', database: db, supportBigNumbers: true, bigNumberStrings: true, timezone: 'Z', multipleStatements: false });
    const primaryPort = port('PRIMARY', 3307);
    const replicaPorts = [port('REPLICA_1', 3308), port('REPLICA_2', 3309)];
    const admin = await conn(primaryPort, '');
    const now = new Date();
    const m0 = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (MONTHS - 1), 1); // first month
    const monthStart = (k) => new Date(Date.UTC(new Date(m0).getUTCFullYear(), new Date(m0).getUTCMonth() + k, 1));
    const ymd = (d) => d.toISOString().slice(0, 10);
    const pname = (d) => `p${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
    const tables = [];
    const details = {};
    const ratios = {};
    const ms = (t0) => Math.round(Number(process.hrtime.bigint() - t0) / 1e4) / 100;

    // ---- seed (idempotent: reuses the tables when they already hold ROWS rows)
    await admin.query(`CREATE DATABASE IF NOT EXISTS ${DB}`);
    const c = await conn(primaryPort);
    const [[have]] = await c.query("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'orders_flat'", [DB]);
    let existing = 0;
    if (Number(have.n)) [[{ n: existing }]] = await c.query('SELECT COUNT(*) AS n FROM orders_flat');
    if (Number(existing) !== ROWS) {
      // Interrupted while seeding (SIGINT/SIGTERM/--timeout): half-seeded tables are useless to the next run, drop them.
      let seeding = true;
      ctx.onCleanup?.(async () => {
        if (!seeding) return;
        const d = await conn(primaryPort, '');
        try {
          await d.query(`DROP TABLE IF EXISTS ${DB}.orders_part, ${DB}.orders_flat, ${DB}.orders_archive`);
          ctx.log(`interrupted while seeding: dropped the half-seeded tables of ${DB}; the replicas may still be replaying the inserts`);
        } finally {
          await d.end();
        }
      });
      await c.query('DROP TABLE IF EXISTS orders_part, orders_flat, orders_archive');
      const parts = Array.from({ length: MONTHS + 1 }, (_, k) => `PARTITION ${pname(monthStart(k))} VALUES LESS THAN ('${ymd(monthStart(k + 1))}')`).join(', ');
      await c.query(DDL('orders_part', parts));
      await c.query(DDL('orders_flat', null));
      const t0 = Date.now();
      const span = monthStart(MONTHS).getTime() - m0;
      let seqUser = 1;
      const batch = 5000;
      const writers = [await conn(primaryPort), await conn(primaryPort)];
      for (let done = 0; done < ROWS; ) {
        const jobs = writers.map(async (w) => {
          const n = Math.min(batch, ROWS - done);
          done += n;
          if (n <= 0) return;
          const values = [];
          for (let k = 0; k < n; k++) {
            const user = 1 + ((seqUser++ * 2654435761) % USERS);
            const ts = m0 + Math.floor(Math.random() * span);
            const bucket = dbLib.bucketOf(user);
            // Bulk ids at arbitrary past times: encode directly (the generator would treat an older time as a clock step back).
            const id = dbLib.encodeOrderId(ts, bucket, (seqUser * 7) & 4095);
            const created = new Date(ts).toISOString().replace('T', ' ').slice(0, 23);
            values.push(`(${id},${user},${bucket},'paid',${1000 + (k % 50000)},1,'${created}')`);
          }
          // Same rows into both tables, in the same order: the only difference is PARTITION BY.
          await w.query(`INSERT INTO orders_part VALUES ${values.join(',')}`);
          await w.query(`INSERT INTO orders_flat VALUES ${values.join(',')}`);
        });
        await Promise.all(jobs);
        if (done % 100_000 < batch * writers.length) ctx.log(`seed ${Math.min(done, ROWS)}/${ROWS} (${Math.round(Math.min(done, ROWS) / ((Date.now() - t0) / 1000))} rows/s per table)`);
      }
      for (const w of writers) await w.end();
      details.seedSeconds = Math.round((Date.now() - t0) / 1000);
      seeding = false;
      ctx.log(`seeded ${ROWS} rows into both tables in ${details.seedSeconds}s`);
      await c.query('ANALYZE TABLE orders_part, orders_flat');
    }
    const waitReplicas = async () => {
      // Replica lag caused by the last statement: time until every replica applied the primary's position.
      const [[pos]] = await c.query('SELECT @@gtid_binlog_pos AS p');
      const t0 = process.hrtime.bigint();
      await Promise.all(replicaPorts.map(async (p) => {
        const r = await conn(p, '').catch(() => null);
        if (!r) return;
        await r.query('SELECT MASTER_GTID_WAIT(?, 600)', [pos.p]);
        await r.end();
      }));
      return ms(t0);
    };
    await waitReplicas();

    const handlerReads = async () => {
      const [rows] = await c.query("SHOW SESSION STATUS LIKE 'Handler_read%'");
      return rows.reduce((s, r) => s + Number(r.Value), 0);
    };
    const examined = async (sql, params) => {
      const before = await handlerReads();
      const t0 = process.hrtime.bigint();
      await c.query(sql, params);
      const took = ms(t0);
      return { rows: (await handlerReads()) - before, ms: took };
    };

    // ---- month scan (admin report, no user filter)
    const mid = monthStart(6), midEnd = monthStart(7);
    const scan = 'SELECT COUNT(*), SUM(total_cents) FROM %T WHERE created_at >= ? AND created_at < ?';
    const flatScan = await examined(scan.replace('%T', 'orders_flat'), [mid, midEnd]);
    const partScan = await examined(scan.replace('%T', 'orders_part'), [mid, midEnd]);
    const [explain] = await c.query(`EXPLAIN PARTITIONS ${scan.replace('%T', 'orders_part')}`, [mid, midEnd]);
    ratios.month_scan_rows_unpartitioned_vs_partitioned = Math.round((flatScan.rows / Math.max(1, partScan.rows)) * 10) / 10;
    // ---- one user's month (the (user_id, created_at) index already does the work)
    const users = Array.from({ length: 200 }, (_, i) => 1 + ((i * 7919) % USERS));
    const userQ = 'SELECT id, total_cents, created_at FROM %T WHERE user_id = ? AND created_at >= ? AND created_at < ? ORDER BY created_at DESC, id DESC LIMIT 20';
    const userMonth = {};
    for (const t of ['orders_flat', 'orders_part']) {
      let rows = 0, took = 0;
      for (const u of users) {
        const r = await examined(userQ.replace('%T', t), [u, mid, midEnd]);
        rows += r.rows;
        took += r.ms;
      }
      userMonth[t] = { rowsPerQuery: Math.round((rows / users.length) * 10) / 10, avgMs: Math.round((took / users.length) * 100) / 100 };
    }
    tables.push([
      '#### reads',
      '| query | unpartitioned rows examined | partitioned rows examined | unpartitioned ms | partitioned ms |',
      '|---|---:|---:|---:|---:|',
      `| month-wide scan (${ymd(mid)}) | ${flatScan.rows} | ${partScan.rows} | ${flatScan.ms} | ${partScan.ms} |`,
      `| one user's month (avg of ${users.length}) | ${userMonth.orders_flat.rowsPerQuery} | ${userMonth.orders_part.rowsPerQuery} | ${userMonth.orders_flat.avgMs} | ${userMonth.orders_part.avgMs} |`,
      '',
      `EXPLAIN PARTITIONS of the month scan on orders_part: partitions=${explain[0].partitions}`,
    ].join('\n'));

    // ---- inserts with a buffer pool smaller than the indexes
    // A pool smaller than the indexes, as at 10M rows on a 128 MB pool (--buffer-pool-mb; restored afterwards).
    const [[bp0]] = await c.query('SELECT @@innodb_buffer_pool_size AS b');
    if (opts['buffer-pool-mb']) await c.query(`SET GLOBAL innodb_buffer_pool_size = ${Number(opts['buffer-pool-mb']) * 2 ** 20}`);
    const [[bp]] = await c.query('SELECT @@innodb_buffer_pool_size AS b');
    const [[sizes]] = await c.query("SELECT SUM(IF(TABLE_NAME='orders_flat', DATA_LENGTH + INDEX_LENGTH, 0)) AS flat, SUM(IF(TABLE_NAME='orders_part', DATA_LENGTH + INDEX_LENGTH, 0)) AS part FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", [DB]);
    const INSERTS = Number(opts.inserts ?? 20_000);
    const insertRun = {};
    const gen2 = new dbLib.OrderIdGenerator();
    for (const t of ['orders_flat', 'orders_part']) {
      // Evict: read the OTHER table in full so each run starts with the same cold pool.
      await c.query(`SELECT COUNT(*) FROM ${t === 'orders_flat' ? 'orders_part' : 'orders_flat'} FORCE INDEX (ix_user_created)`);
      const [[r0]] = await c.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'");
      const t0 = process.hrtime.bigint();
      for (let done = 0; done < INSERTS; done += 100) {
        const values = [];
        for (let k = 0; k < 100; k++) {
          const user = 1 + Math.floor(Math.random() * USERS);
          const id = gen2.next(dbLib.bucketOf(user));
          const created = new Date(dbLib.decodeOrderId(id).timestampMs).toISOString().replace('T', ' ').slice(0, 23);
          values.push(`(${id},${user},${dbLib.bucketOf(user)},'paid',1000,1,'${created}')`);
        }
        await c.query(`INSERT INTO ${t} VALUES ${values.join(',')}`);
      }
      const took = ms(t0);
      const [[r1]] = await c.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'");
      insertRun[t] = { rowsPerS: Math.round(INSERTS / (took / 1000)), diskReadsPer1000: Math.round(((Number(r1.Value) - Number(r0.Value)) / INSERTS) * 1000 * 10) / 10 };
    }
    if (opts['buffer-pool-mb']) await c.query(`SET GLOBAL innodb_buffer_pool_size = ${Number(bp0.b)}`);
    ratios.insert_partitioned_vs_unpartitioned = Math.round((insertRun.orders_part.rowsPerS / insertRun.orders_flat.rowsPerS) * 100) / 100;
    tables.push([
      `#### inserts (${INSERTS} rows in 100-row statements; buffer pool ${Math.round(Number(bp.b) / 2 ** 20)} MB; table+indexes: unpartitioned ${Math.round(Number(sizes.flat) / 2 ** 20)} MB, partitioned ${Math.round(Number(sizes.part) / 2 ** 20)} MB)`,
      '| table | rows/s | buffer-pool disk reads per 1,000 inserts |',
      '|---|---:|---:|',
      `| unpartitioned | ${insertRun.orders_flat.rowsPerS} | ${insertRun.orders_flat.diskReadsPer1000} |`,
      `| partitioned | ${insertRun.orders_part.rowsPerS} | ${insertRun.orders_part.diskReadsPer1000} |`,
    ].join('\n'));

    // ---- retention: the oldest month out
    const first = monthStart(0), second = monthStart(1);
    const [[{ n: monthRows }]] = await c.query('SELECT COUNT(*) AS n FROM orders_part PARTITION (' + pname(first) + ')');
    let t0 = process.hrtime.bigint();
    await c.query('DELETE FROM orders_flat WHERE created_at < ?', [monthStart(1)]);
    const del = { ms: ms(t0), lagMs: await waitReplicas() };
    t0 = process.hrtime.bigint();
    await c.query(`ALTER TABLE orders_part DROP PARTITION ${pname(first)}`);
    const drop = { ms: ms(t0), lagMs: await waitReplicas() };
    // Archive variant on the next month: EXCHANGE into an empty table (metadata swap), then DROP the empty partition.
    await c.query('DROP TABLE IF EXISTS orders_archive');
    await c.query('CREATE TABLE orders_archive LIKE orders_part');
    await c.query('ALTER TABLE orders_archive REMOVE PARTITIONING');
    t0 = process.hrtime.bigint();
    await c.query(`ALTER TABLE orders_part EXCHANGE PARTITION ${pname(second)} WITH TABLE orders_archive`);
    await c.query(`ALTER TABLE orders_part DROP PARTITION ${pname(second)}`);
    const exch = { ms: ms(t0), lagMs: await waitReplicas() };
    ratios.retention_delete_vs_drop = Math.round((del.ms / Math.max(0.01, drop.ms)) * 10) / 10;
    tables.push([
      `#### retention: the oldest month out (${monthRows} rows)`,
      '| method | primary ms | replica lag caused, ms |',
      '|---|---:|---:|',
      `| DELETE … WHERE created_at < '${ymd(monthStart(1))}' (unpartitioned) | ${del.ms} | ${del.lagMs} |`,
      `| ALTER TABLE … DROP PARTITION ${pname(first)} | ${drop.ms} | ${drop.lagMs} |`,
      `| EXCHANGE PARTITION ${pname(second)} to an archive table + DROP | ${exch.ms} | ${exch.lagMs} |`,
    ].join('\n'));
    // Put the retired months back for the next run (the tables are reused when they hold ROWS rows).
    await c.query('DROP TABLE orders_part, orders_flat, orders_archive');

    // ---- shard balance: 1M users -> 1024 buckets -> 2 shards (default map: bucket % 2)
    const counts = [0, 0];
    const bucketCounts = new Array(1024).fill(0);
    for (let u = 1; u <= 1_000_000; u++) {
      const b = dbLib.bucketOf(u);
      bucketCounts[b]++;
      counts[b % 2]++;
    }
    const mean = 1_000_000 / 2;
    ratios.shard_balance_max_dev_pct = Math.round((Math.max(...counts.map((x) => Math.abs(x - mean))) / mean) * 10000) / 100;
    const bucketDev = Math.round((Math.max(...bucketCounts.map((x) => Math.abs(x - 1_000_000 / 1024))) / (1_000_000 / 1024)) * 1000) / 10;
    tables.push(`#### shard balance (1,000,000 sequential user ids)\nshard 0: ${counts[0]}, shard 1: ${counts[1]}; max deviation from the mean ${ratios.shard_balance_max_dev_pct} %; the worst of the 1,024 buckets is ${bucketDev} % off its mean.`);
    Object.assign(details, { rows: ROWS, users: USERS, flatScan, partScan, userMonth, insertRun, retention: { del, drop, exch, monthRows: Number(monthRows) } });
    await c.end();
    await admin.end();
    return { ratios, tables: [`### orders-growth (${ROWS} rows, ${MONTHS} months)`, ...tables], details };
  },
};

// `npm run demo -- q1a` (scripts/demo.mjs): the short run at the top of docs/q1a-orders-growth.md, on 300k rows.
export const demo = {
  opts: { rows: 300000, users: 50000, inserts: 2000 },
  headline(r) {
    const d = r.details;
    return `**month scan: ${r.ratios.month_scan_rows_unpartitioned_vs_partitioned}× fewer rows examined** on the partitioned table (${d.flatScan.rows} vs ${d.partScan.rows}); **retention of a month (${d.retention.monthRows} rows): DELETE ${d.retention.del.ms} ms vs DROP PARTITION ${d.retention.drop.ms} ms** (${r.ratios.retention_delete_vs_drop}×; EXCHANGE + DROP ${d.retention.exch.ms} ms); one user's month examines ${d.userMonth.orders_flat.rowsPerQuery} vs ${d.userMonth.orders_part.rowsPerQuery} rows either way. Partitioning cuts month-wide work and makes retention a metadata change whose cost does not grow with the month, while a user's own look-up is already served by its index; single timings on small data are noisy, the long run below measures retention at larger sizes.`;
  },
};
