export default async function globalTeardown() {
  if (globalThis.__MALLSCALE_COMPOSE__) await globalThis.__MALLSCALE_COMPOSE__.down();
}
