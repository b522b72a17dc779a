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
  // Loopback unless HOST says otherwise: a development server is not reachable from the network by accident.
  await app.listen({ port: config.port, host: config.host });
  const addr = app.getHttpServer().address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const shown = config.host.includes(':') ? `[${config.host}]` : config.host;
  logger.info({ host: config.host, port }, `shop-api listening on http://${shown}:${port} (OpenAPI at /docs)`);
}

void main();
