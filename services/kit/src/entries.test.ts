import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = dirname(fileURLToPath(import.meta.url));

/** The packages a module of the kit reaches through its static imports (type-only imports load nothing). */
function packagesReached(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [, clause, from] of text.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)) {
      if (clause || !from) continue;
      if (from.startsWith('.')) visit(join(dirname(file), from.replace(/\.js$/, '.ts')));
      else if (!from.startsWith('node:'))
        packages.add(from.startsWith('@') ? from.split('/').slice(0, 2).join('/') : from.split('/')[0]!);
    }
    for (const [, from] of text.matchAll(/^import\s+'([^']+)';/gm))
      if (from && !from.startsWith('.')) packages.add(from);
  };
  visit(join(src, entry));
  return packages;
}

describe("the kit's entry points", () => {
  it('should keep the core free of the store, the subgraph server and type-graphql', () => {
    const reached = packagesReached('core.ts');
    for (const heavy of [
      'better-sqlite3',
      'mongodb',
      'type-graphql',
      'reflect-metadata',
      '@apollo/server',
      '@apollo/subgraph',
    ])
      expect(reached, heavy).not.toContain(heavy);
    expect(reached).toContain('nats');
  });

  it('should keep the subgraph entry free of the store', () => {
    const reached = packagesReached('subgraph.ts');
    expect(reached).not.toContain('better-sqlite3');
    expect(reached).not.toContain('mongodb');
    expect(reached).toContain('type-graphql');
  });
});
