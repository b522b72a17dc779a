import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsObject, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';

export class CreateProductDto {
  @ApiProperty({ example: 'laptop' })
  @IsString()
  @Matches(/^[a-z][a-z0-9-]{0,63}$/, { message: 'categoryCode must be a lower-case category code' })
  categoryCode: string;

  @ApiProperty({ example: 'Ultrabook 14' })
  @IsString()
  @MinLength(1)
  @MaxLength(300)
  name: string;

  @ApiProperty({ example: 129900, description: 'price in cents' })
  @IsInt()
  @Min(0)
  @Max(2_000_000_000)
  priceCents: number;

  @ApiProperty({ example: 10 })
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  stock: number;

  @ApiProperty({ example: { cpu: 'M4', ramGb: 16, storageGb: 512 }, description: "validated against the category's attribute schema" })
  @IsObject()
  attributes: Record<string, unknown>;
}

export class UpdateProductDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(300)
  name?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(2_000_000_000)
  priceCents?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  stock?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsObject()
  attributes?: Record<string, unknown>;
}
