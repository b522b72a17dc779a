import { Module } from '@nestjs/common';
import { ProductsController } from './products.controller.js';
import { ProductsRepository } from './products.repository.js';
import { ProductsService } from './products.service.js';
import { catalogCacheProvider, CatalogCacheLifecycle } from './product-cache.provider.js';

@Module({ controllers: [ProductsController], providers: [ProductsRepository, ProductsService, catalogCacheProvider, CatalogCacheLifecycle], exports: [ProductsRepository, ProductsService, catalogCacheProvider] })
export class CatalogModule {}
