/**
 * ProductsRepository: the SQL of the catalog, visible. Writes go to the primary. Reads take a DataSource
 * argument so the caller decides where they run (the primary today; ReplicaRouter / ProductCache wrap
 * these reads in their issues).
 */
import { Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { affectedRows, DbNodes } from '#libs/db';

export interface Product {
  id: string;
  categoryId: number;
  categoryCode: string;
  name: string;
  priceCents: number;
  stock: number;
  attributes: Record<string, unknown>;
  version: number;
  updatedAt: string;
}

export interface Category {
  id: number;
  code: string;
  name: string;
  attributeSchema: Record<string, unknown>;
}

type Runner = DataSource | EntityManager;

const PRODUCT_COLUMNS = `p.id, p.category_id, c.code AS category_code, p.name, p.price_cents, p.stock, p.attributes, p.version, p.updated_at`;

export function toProduct(r: any): Product {
  return {
    id: String(r.id),
    categoryId: Number(r.category_id),
    categoryCode: r.category_code,
    name: r.name,
    priceCents: Number(r.price_cents),
    stock: Number(r.stock),
    attributes: typeof r.attributes === 'string' ? JSON.parse(r.attributes) : r.attributes,
    version: Number(r.version),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

function toCategory(r: any): Category {
  return { id: Number(r.id), code: r.code, name: r.name, attributeSchema: typeof r.attribute_schema === 'string' ? JSON.parse(r.attribute_schema) : r.attribute_schema };
}

@Injectable()
export class ProductsRepository {
  constructor(private readonly db: DbNodes) {}

  get primary(): DataSource {
    return this.db.primary.ds;
  }

  async findById(id: string, on: Runner = this.primary): Promise<Product | null> {
    const rows = await on.query(`SELECT ${PRODUCT_COLUMNS} FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = ?`, [id]);
    return rows.length ? toProduct(rows[0]) : null;
  }

  async listByCategory(categoryId: number, limit: number, afterId: string | null, on: Runner = this.primary): Promise<Product[]> {
    const rows = await on.query(
      `SELECT ${PRODUCT_COLUMNS} FROM products p JOIN categories c ON c.id = p.category_id
        WHERE p.category_id = ? AND p.id > ? ORDER BY p.id LIMIT ?`,
      [categoryId, afterId ?? '0', limit],
    );
    return rows.map(toProduct);
  }

  async insert(p: { categoryId: number; name: string; priceCents: number; stock: number; attributes: Record<string, unknown> }, on: Runner = this.primary): Promise<string> {
    const res = await on.query('INSERT INTO products (category_id, name, price_cents, stock, attributes) VALUES (?, ?, ?, ?, ?)', [
      p.categoryId,
      p.name,
      p.priceCents,
      p.stock,
      JSON.stringify(p.attributes),
    ]);
    return String(res.insertId);
  }

  /** Updates the given fields and bumps the version (the cache uses it to refuse stale sets). */
  async update(id: string, fields: Partial<{ name: string; priceCents: number; stock: number; attributes: Record<string, unknown> }>, on: Runner = this.primary): Promise<boolean> {
    const sets: string[] = [];
    const params: unknown[] = [];
    const columns = { name: 'name', priceCents: 'price_cents', stock: 'stock', attributes: 'attributes' } as const;
    for (const [key, column] of Object.entries(columns)) {
      const value = fields[key as keyof typeof columns];
      if (value === undefined) continue;
      sets.push(`${column} = ?`);
      params.push(key === 'attributes' ? JSON.stringify(value) : value);
    }
    sets.push('version = version + 1');
    const res = await on.query(`UPDATE products SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
    return affectedRows(res) > 0;
  }

  async delete(id: string, on: Runner = this.primary): Promise<boolean> {
    const res = await on.query('DELETE FROM products WHERE id = ?', [id]);
    return affectedRows(res) > 0;
  }

  async categories(on: Runner = this.primary): Promise<Category[]> {
    return (await on.query('SELECT id, code, name, attribute_schema FROM categories ORDER BY code')).map(toCategory);
  }

  async categoryByCode(code: string, on: Runner = this.primary): Promise<Category | null> {
    const rows = await on.query('SELECT id, code, name, attribute_schema FROM categories WHERE code = ?', [code]);
    return rows.length ? toCategory(rows[0]) : null;
  }
}
