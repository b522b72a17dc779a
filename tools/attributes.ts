/**
 * `npm run attributes -- <command>` — category attributes from the command line (docs/q1b-category-attributes.md).
 *   list [category]               declared attributes: type, unit, filterable, index state
 *   promote <category> <attribute> make it filterable: online generated column + index (arrays: values rows)
 *   promote-declared <category>    promote every attribute the schema marks x-filterable
 *   unindex <category> <attribute> stop filtering on it: drop its index and column (the data stays)
 */
import { loadConfig } from '#libs/core';
import { AttributePromoter, AttributeSchema, columnName } from '#libs/attributes';
import { DbNodes, ddlTopology } from '#libs/db';
import { parseCli } from './cli.js';

const usage = 'usage: npm run attributes -- list [category] | promote <category> <attribute> | promote-declared <category> | unindex <category> <attribute>';
const [command, category, attribute] = parseCli(usage, {}, true).positionals;
const config = loadConfig();

async function main(): Promise<void> {
  const db = await DbNodes.connect({ ...ddlTopology(config.db), poolSize: 2 });
  const qr = db.primary.ds.createQueryRunner();
  await qr.connect();
  try {
    const promoter = new AttributePromoter(qr, (m) => console.error(`  ${m}`));
    if (command === 'list') {
      const cats: any[] = await qr.query(`SELECT id, code, attribute_schema FROM categories ${category ? 'WHERE code = ?' : ''} ORDER BY code`, category ? [category] : []);
      for (const c of cats) {
        const indexes = new Map((await promoter.indexes(Number(c.id))).map((i) => [i.attribute, i]));
        console.log(`${c.code}`);
        for (const a of AttributeSchema.compile(c.code, c.attribute_schema).attributes.values()) {
          const ix = indexes.get(a.name);
          const where = ix ? (ix.storage === 'column' ? columnName(Number(c.id), a.name) : 'product_attribute_values') : '-';
          console.log(`  ${a.name.padEnd(14)} ${a.kind.padEnd(10)} ${(a.unit ?? '').padEnd(5)} ${a.filterable ? 'filterable' : '          '} ${ix ? `${ix.state} (${where})` : ''}`);
        }
      }
    } else if (command === 'promote' && category && attribute) {
      console.log(JSON.stringify(await promoter.promote(category, attribute), null, 2));
    } else if (command === 'promote-declared' && category) {
      for (const r of await promoter.promoteDeclared(category)) console.log(`${r.category}.${r.attribute}: ${r.state} (${r.storage}) ${r.ms} ms`);
    } else if (command === 'unindex' && category && attribute) {
      for (const s of await promoter.unindex(category, attribute)) console.log(s);
    } else {
      console.error(usage);
      process.exitCode = 2;
    }
  } finally {
    await qr.release();
    await db.close();
  }
}

main().catch((e) => {
  console.error(`attributes: ${e.message}`);
  process.exit(1);
});
