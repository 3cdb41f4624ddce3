import { readFileSync } from 'node:fs';
import { buildASTSchema, isObjectType, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { NODE_TYPES, nodeTypeOf } from './nodes.js';

const api = buildASTSchema(parse(readFileSync(new URL('../../api.graphql', import.meta.url), 'utf8')));
const ULID = '01J9ZQ3V5X7K8M2N4P6R8T0W1Y';

describe('Node types', () => {
  it('should name every type that implements Node in the API, and no other', () => {
    const implementing = Object.values(api.getTypeMap())
      .filter((type) => isObjectType(type) && type.getInterfaces().some((i) => i.name === 'Node'))
      .map((type) => type.name);

    expect(Object.keys(NODE_TYPES).sort()).toEqual(implementing.sort());
  });

  it('should give each type a prefix of its own, none the start of another', () => {
    const prefixes = Object.values(NODE_TYPES).map((t) => t.prefix);

    for (const prefix of prefixes) expect(prefixes.filter((p) => p.startsWith(prefix))).toEqual([prefix]);
  });

  it.each(Object.entries(NODE_TYPES))('should tell a %s from its id', (type, { prefix }) => {
    expect(nodeTypeOf(`${prefix}${ULID}`)).toBe(type);
  });

  it.each([
    ['an unknown prefix', `usr_${ULID}`],
    ['no prefix', ULID],
    ['a prefix alone', 'cls_'],
    ['a short ULID', 'cls_01J9ZQ3V5X'],
    ['a lower-case ULID', `cls_${ULID.toLowerCase()}`],
    ['trailing text', `cls_${ULID}.x`],
    ['the empty string', ''],
  ])('should tell no type from %s', (_, id) => {
    expect(nodeTypeOf(id)).toBeNull();
  });
});
