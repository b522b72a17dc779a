#!/usr/bin/env node
// `node scripts/node.mjs <node args…>`: the same as `node <node args…>`, on a supported Node (the system's
// when it satisfies engines.node, else the one bootstrap.mjs installs into var/node). `npm run jest` uses it.
import { envFor, runForwarded, supportedNode } from './bootstrap.mjs';

const node = supportedNode();
await runForwarded(node.bin, process.argv.slice(2), node.switched ? { ...envFor(node.bin), npm_config_nodedir: node.dir } : envFor(node.bin));
