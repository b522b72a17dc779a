/**
 * Where a scenario module is: load-tests/scenarios/<name>.ts, compiled with the rest (dist/load-tests/scenarios/),
 * imported relative to this file so the runner (from dist/) and jest (from the sources) both find it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '#libs/core';

/** The module of scenario `name`: its default export is the Scenario, `demo` its preset for `npm run demo`. */
export async function loadScenario(name: string): Promise<Record<string, any>> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`no scenario '${name}' (scenario names are lower-case words joined by -)`);
  if (!existsSync(join(repoRoot(), 'load-tests', 'scenarios', `${name}.ts`))) throw new Error(`no scenario '${name}' in load-tests/scenarios`);
  return import(`../scenarios/${name}.js`);
}
