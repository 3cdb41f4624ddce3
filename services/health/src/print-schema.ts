import { printSubgraph } from '@fleetgraph/kit';
import { buildHealthSchema } from './schema/index.js';

// Prints the subgraph SDL for schema/ (see schema/src/compose.ts).
process.stdout.write(printSubgraph(await buildHealthSchema()));
