/**
 * AttributesService: the write side of category attributes. Validates a product's attribute document
 * against its category's AttributeSchema (422 naming every bad field), and keeps array attribute values
 * (product_attribute_values) in the same transaction as the product row. The category row is read in
 * share mode inside that transaction: AttributePromoter takes it FOR UPDATE when it starts indexing an
 * array, so a write either finishes before the promotion starts (and the backfill sees it) or sees the
 * new index and maintains its own rows. Nothing is lost either way.
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { ApiError } from '#libs/core';
import { AttributePromoter, AttributeSchema, IndexNotReady, SchemaError, type PromotionReport } from '#libs/attributes';
import { DbNodes, ReplicaRouter, sqlErrno, type DbNode, type Runner } from '#libs/db';
import type { Category } from './products.repository.js';

@Injectable()
export class AttributesService {
  /** Compiled schemas by category id; recompiled when the stored schema text changes. */
  private readonly compiled = new Map<number, { text: string; schema: AttributeSchema }>();

  constructor(
    private readonly db: DbNodes,
    private readonly router: ReplicaRouter,
  ) {}

  schemaOf(category: Pick<Category, 'id' | 'code' | 'attributeSchema'>): AttributeSchema {
    const text = JSON.stringify(category.attributeSchema);
    const hit = this.compiled.get(category.id);
    if (hit && hit.text === text) return hit.schema;
    try {
      const schema = AttributeSchema.compile(category.code, category.attributeSchema);
      this.compiled.set(category.id, { text, schema });
      return schema;
    } catch (e) {
      if (e instanceof SchemaError) throw ApiError.unprocessable(e.message);
      throw e;
    }
  }

  /** 422 listing every bad field with its reasons. */
  check(category: Category, attributes: unknown): void {
    const problems = this.schemaOf(category).validate(attributes);
    if (problems.length) {
      throw ApiError.unprocessable(`attributes do not match the '${category.code}' schema: ${problems.map((p) => p.field).join(', ')}`, problems);
    }
  }

  /**
   * Call inside the product write's transaction, before the write: validates (422) and takes the category
   * row in share mode, so a promotion of an array attribute cannot start half-way through this write.
   */
  async accept(on: EntityManager, category: Category, attributes: unknown): Promise<void> {
    this.check(category, attributes);
    await on.query('SELECT id FROM categories WHERE id = ? LOCK IN SHARE MODE', [category.id]);
  }

  /** The category of an existing product (for updates), or null when the product does not exist. */
  async categoryOfProduct(on: EntityManager, productId: string): Promise<Category | null> {
    const rows = await on.query('SELECT c.id, c.code, c.name, c.attribute_schema FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = ?', [productId]);
    if (!rows.length) return null;
    const r = rows[0];
    return { id: Number(r.id), code: r.code, name: r.name, attributeSchema: typeof r.attribute_schema === 'string' ? JSON.parse(r.attribute_schema) : r.attribute_schema };
  }

  /**
   * Call after the product write, in the same transaction: brings the product's array attribute values in
   * step. A diff, deleting and inserting exact primary keys: a DELETE by product_id would take gap locks on
   * the secondary index and deadlock concurrent inserts of new products.
   */
  async syncValues(on: EntityManager, category: Category, productId: string, attributes: Record<string, unknown>, created = false): Promise<void> {
    const arrays: { attribute: string }[] = await on.query("SELECT attribute FROM attribute_indexes WHERE category_id = ? AND storage = 'values'", [category.id]);
    if (!arrays.length) return;
    const key = (attribute: string, value: string) => JSON.stringify([attribute, value]);
    const want = new Set<string>();
    for (const { attribute } of arrays) {
      const values = attributes[attribute];
      if (Array.isArray(values)) for (const v of values) want.add(key(attribute, String(v)));
    }
    // A locking read: the latest committed rows (a backfill batch may have committed after this transaction's
    // snapshot), and they stay put until commit. A new product has none to read.
    const current = created ? [] : await on.query('SELECT attribute, value FROM product_attribute_values WHERE product_id = ? FOR UPDATE', [productId]);
    const have = new Set<string>(
      current.map((r: { attribute: string; value: string }) => key(r.attribute, r.value)),
    );
    for (const k of have) {
      if (want.has(k)) continue;
      const [attribute, value] = JSON.parse(k);
      await on.query('DELETE FROM product_attribute_values WHERE category_id = ? AND attribute = ? AND value = ? AND product_id = ?', [category.id, attribute, value, productId]);
    }
    const rows = [...want].filter((k) => !have.has(k)).flatMap((k) => [category.id, ...JSON.parse(k), productId]);
    if (rows.length) await on.query(`INSERT INTO product_attribute_values (category_id, attribute, value, product_id) VALUES ${Array(rows.length / 4).fill('(?, ?, ?, ?)').join(', ')}`, rows);
  }

  /** Names of attributes whose index is ready, i.e. usable by filters and facets. */
  async readyIndexes(categoryId: number, on: { query(sql: string, params?: unknown[]): Promise<any> } = this.db.primary.ds): Promise<Set<string>> {
    const rows: { attribute: string }[] = await on.query("SELECT attribute FROM attribute_indexes WHERE category_id = ? AND state = 'ready'", [categoryId]);
    return new Set(rows.map((r) => r.attribute));
  }

  /**
   * Runs a filtered read (`fn`) on the node the router picked. A replica that has not applied a promotion
   * the primary has finished still reads the index as not ready; for that replication-lag window the read
   * runs on the primary, where the index is usable, instead of answering 400 for an index that is ready.
   * When the primary does not list it as ready either, its 400 stands: a filter never becomes a scan.
   * Cost: a request filtering on an index still building pays two point reads on the primary.
   */
  async onIndexedNode<T>(on: Runner, node: DbNode, fn: (on: Runner) => Promise<T>): Promise<T> {
    try {
      return await fn(on);
    } catch (e) {
      if (!(e instanceof IndexNotReady) || node.role === 'primary') throw e;
      return fn(this.db.primary.ds);
    }
  }

  async promote(categoryCode: string, attribute: string): Promise<PromotionReport> {
    return this.withPromoter((p) => p.promote(categoryCode, attribute));
  }

  async unindex(categoryCode: string, attribute: string): Promise<string[]> {
    return this.withPromoter((p) => p.unindex(categoryCode, attribute));
  }

  /** A plain read on a public route: the app's pool, not the DDL account's. */
  async indexes(categoryId: number) {
    return new AttributePromoter(this.db.primary.ds).indexes(categoryId);
  }

  private async withPromoter<T>(fn: (p: AttributePromoter) => Promise<T>): Promise<T> {
    // ALTER TABLE / CREATE INDEX: the DDL account's own pool, never the app's.
    const qr = (await this.db.ddl(this.db.primary)).createQueryRunner();
    await qr.connect();
    try {
      const out = await fn(new AttributePromoter(qr));
      // These writes bypass ReplicaRouter: record them as this request's write, so the caller (the token it
      // gets back, and the one remembered for it) reads the new index state, not a replica's older one.
      this.router.noteWrite(await this.db.primary.dialect.gtidPosition(qr));
      return out;
    } catch (e) {
      if (e instanceof SchemaError) throw ApiError.unprocessable(e.message);
      if (sqlErrno(e) === 1205) throw ApiError.conflict('the products table is busy (metadata lock wait timed out); retry the promotion');
      throw e;
    } finally {
      await qr.release();
    }
  }
}
