import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from './errors.js';

describe('the error registry', () => {
  it("should be the README's table of error codes, code for code and word for word", async () => {
    const readme = await readFile(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
    const rows = new Map(
      [...readme.matchAll(/^ {2}\| `([A-Z_]+)` \| (.*) \|$/gm)].map(([, code, meaning]) => [
        code,
        meaning!.replace(/\\\|/g, '|'),
      ]),
    );
    expect(Object.fromEntries(rows)).toEqual(ErrorCodes);
  });
});
