/**
 * The subgraphs of the supergraph, with the port each listens on by default. The compose
 * script, the gateway and the local launcher all read this one list.
 */
export const SUBGRAPHS = [
  { name: 'profiles', port: 4001 },
  { name: 'clusters', port: 4002 },
  { name: 'images', port: 4003 },
  { name: 'health', port: 4004 },
  { name: 'logs', port: 4005 },
] as const satisfies readonly { name: string; port: number }[];

export type SubgraphName = (typeof SUBGRAPHS)[number]['name'];

/** The environment variable that overrides a subgraph's URL at the gateway, e.g. PROFILES_URL. */
export const subgraphUrlVariable = (name: string) => `${name.toUpperCase()}_URL`;
