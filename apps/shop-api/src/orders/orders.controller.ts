import { Body, Controller, Get, Headers, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { AuthGuard, CurrentUser, Roles, type AuthUser } from '../auth/auth.guard.js';
import { CreateOrderDto } from './dto/create-order.dto.js';
import { MyOrdersQuery, RecentOrdersQuery } from './dto/list-orders.query.js';
import { OrdersService } from './orders.service.js';

@ApiTags('orders')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller()
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  @Post('orders')
  @ApiHeader({ name: 'Idempotency-Key', required: true, description: 'one key per intended order; a retry with the same key returns the same order' })
  async create(@CurrentUser() user: AuthUser, @Headers('idempotency-key') key: string | undefined, @Body() dto: CreateOrderDto, @Res({ passthrough: true }) reply: FastifyReply) {
    const r = await this.orders.create(user, key, dto);
    reply.status(r.status);
    if (r.replayed) reply.header('idempotent-replayed', 'true');
    return r.body;
  }

  @Get('orders/:id')
  get(@CurrentUser() user: AuthUser, @Param('id') id: string) {
    return this.orders.get(user, id);
  }

  @Get('me/orders')
  mine(@CurrentUser() user: AuthUser, @Query() q: MyOrdersQuery) {
    return this.orders.listMine(user, q);
  }

  @Get('admin/orders/recent')
  @Roles('admin')
  recent(@Query() q: RecentOrdersQuery) {
    return this.orders.recent(q.limit ?? 20);
  }

  @Get('admin/shards')
  @Roles('admin')
  shards() {
    return this.orders.shards();
  }
}
