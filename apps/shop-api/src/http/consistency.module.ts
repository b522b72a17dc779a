import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { ConsistencyInterceptor } from './consistency.interceptor.js';

/** Registers the read-your-writes interceptor for every route (X-Consistency-Token in and out). */
@Module({ providers: [{ provide: APP_INTERCEPTOR, useClass: ConsistencyInterceptor }] })
export class ConsistencyModule {}
