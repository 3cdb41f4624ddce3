/**
 * An enum-like object of a list of names (`CloudType.AWS === 'AWS'`): what a GraphQL enum is
 * registered from, made from the contract's list so that the names are written once.
 */
export function enumOf<const T extends readonly string[]>(names: T): { readonly [K in T[number]]: K } {
  return Object.fromEntries(names.map((name) => [name, name])) as { readonly [K in T[number]]: K };
}
