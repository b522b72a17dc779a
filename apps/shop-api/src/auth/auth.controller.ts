import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AuthService } from './auth.service.js';
import { CredentialsDto, TokenDto } from './auth.dto.js';

@ApiTags('accounts')
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Post('sign-up')
  @ApiCreatedResponse({ type: TokenDto })
  async signUp(@Body() dto: CredentialsDto): Promise<TokenDto> {
    const { accessToken } = await this.auth.signUp(dto.email, dto.password);
    return { accessToken };
  }

  @Post('sign-in')
  @HttpCode(200)
  @ApiOkResponse({ type: TokenDto })
  signIn(@Body() dto: CredentialsDto): Promise<TokenDto> {
    return this.auth.signIn(dto.email, dto.password);
  }
}
