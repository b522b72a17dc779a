import { Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AuthService } from './auth.service.js';
import { AuthGuard, CurrentUser, type AuthUser } from './auth.guard.js';
import { ChangePasswordDto, CredentialsDto, TokenDto } from './auth.dto.js';

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

@ApiTags('accounts')
@Controller('me')
export class PasswordController {
  constructor(private readonly auth: AuthService) {}

  /** 204; every token issued before stops working (sign in again with the new password). */
  @ApiBearerAuth()
  @UseGuards(AuthGuard)
  @Post('password')
  @HttpCode(204)
  @ApiNoContentResponse()
  async change(@CurrentUser() user: AuthUser, @Body() dto: ChangePasswordDto): Promise<void> {
    await this.auth.changePassword(user.id, dto.currentPassword, dto.newPassword);
  }
}
