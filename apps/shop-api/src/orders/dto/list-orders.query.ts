import { ApiPropertyOptional, PickType } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

export class MyOrdersQuery {
  @ApiPropertyOptional({ example: '2026-01-01', description: 'inclusive; YYYY-MM-DD or ISO-8601 (default: to - 90 days)' })
  @IsOptional()
  @IsString()
  @MaxLength(40)
  from?: string;

  @ApiPropertyOptional({ example: '2026-02-01', description: 'exclusive; YYYY-MM-DD or ISO-8601 (default: now)' })
  @IsOptional()
  @IsString()
  @MaxLength(40)
  to?: string;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page (opaque)' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  cursor?: string;

  @ApiPropertyOptional({ example: 20, minimum: 1, maximum: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;
}

/** Only the page size: the admin's cross-shard feed has no user, dates or cursor. */
export class RecentOrdersQuery extends PickType(MyOrdersQuery, ['limit'] as const) {}
