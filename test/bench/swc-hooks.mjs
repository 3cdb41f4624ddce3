// Node module hooks that run the workspace's TypeScript sources in a plain `node` process, compiled
// by swc as vitest compiles them (decorator metadata for type-graphql), so a benchmark can put a
// gateway in a child process of its own and measure the sources as they are, without a build.
// Use: node --conditions=source --import ./swc-hooks.mjs <entry>.ts
// (`source`: workspace packages export their sources under that condition.)
// JavaScript, not TypeScript: it is what makes TypeScript loadable.
import { readFile } from 'node:fs/promises';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import swc from '@swc/core';

// Imported by --import on the main thread: install this same file as the hooks (they run on a thread of their own).
if (isMainThread) register(import.meta.url);

/** `./x.js` written in a .ts source means `./x.ts` (NodeNext import style). */
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const local = specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('file:');
    if (
      error?.code !== 'ERR_MODULE_NOT_FOUND' ||
      !local ||
      !specifier.endsWith('.js') ||
      !context.parentURL?.endsWith('.ts')
    )
      throw error;
    return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts') || url.endsWith('.d.ts')) return nextLoad(url, context);
  const path = new URL(url);
  const { code } = await swc.transform(await readFile(path, 'utf8'), {
    filename: path.pathname,
    sourceMaps: 'inline',
    module: { type: 'es6' },
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      target: 'es2022',
      transform: { legacyDecorator: true, decoratorMetadata: true },
    },
  });
  return { format: 'module', source: code, shortCircuit: true };
}
