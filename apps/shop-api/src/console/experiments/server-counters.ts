/** Numbers the database servers keep themselves: the console's "the DB agrees" column. */
import type { DbNode } from '#libs/db';

/** Sum of SHOW GLOBAL STATUS Com_select over `nodes` (same statement on MariaDB and MySQL). */
export async function comSelect(nodes: DbNode[]): Promise<number> {
  let sum = 0;
  for (const n of nodes) {
    if (!n.ds.isInitialized) continue;
    const rows = (await n.ds.query("SHOW GLOBAL STATUS LIKE 'Com_select'").catch(() => [])) as { Value: string }[];
    sum += Number(rows[0]?.Value ?? 0);
  }
  return sum;
}

/** Up to `limit` product ids, lowest first (rank 1 of the Zipf load = the first). */
export async function productIds(primary: DbNode, limit: number): Promise<string[]> {
  const rows = (await primary.ds.query('SELECT id FROM products ORDER BY id LIMIT ?', [limit])) as { id: string }[];
  return rows.map((r) => String(r.id));
}
