import { createLogger, loadConfigOrExit } from '#libs/core';
import { createApp } from './app.js';

async function main() {
  const config = loadConfigOrExit('shop-api');
  const logger = createLogger(config.logLevel, 'shop-api');
  let app;
  try {
    app = await createApp(config, { logger });
  } catch (e) {
    console.error(`shop-api cannot start: ${(e as Error).message}`);
    process.exit(1);
  }
  await app.listen({ port: config.port, host: '0.0.0.0' });
  logger.info({ port: config.port }, `shop-api listening on http://localhost:${config.port} (OpenAPI at /docs)`);
}

void main();
