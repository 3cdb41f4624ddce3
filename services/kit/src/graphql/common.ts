import { Directive, Field, ID, InputType, InterfaceType, Int, ObjectType, ArgsType } from 'type-graphql';

@InterfaceType({ description: 'An object with a globally unique id.' })
export abstract class Node {
  @Field(() => ID, { description: 'The globally unique id.' })
  id!: string;
}

@Directive('@shareable')
@ObjectType({ description: 'Where a page of a connection ends.' })
export class PageInfo {
  @Field({ description: 'Whether more nodes follow this page.' })
  hasNextPage!: boolean;

  @Field(() => String, {
    nullable: true,
    description: 'Cursor of the last node of the page; pass it as `after` for the next page.',
  })
  endCursor!: string | null;
}

/**
 * A connection's fields from a store page and its nodes as GraphQL objects: `nodes`, `edges` (each
 * node with its cursor, which `after` takes to continue right after it) and `pageInfo`.
 */
export function toConnection<N>(
  page: { cursors: readonly string[]; hasNextPage: boolean; endCursor: string | null },
  nodes: N[],
): { nodes: N[]; edges: { cursor: string; node: N }[]; pageInfo: PageInfo } {
  if (nodes.length !== page.cursors.length) throw new Error('a connection needs one cursor per node');
  return {
    nodes,
    edges: nodes.map((node, i) => ({ cursor: page.cursors[i]!, node })),
    pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor },
  };
}

/** A domain or validation failure of a mutation, returned as data. */
@Directive('@shareable')
@ObjectType({ description: 'A domain or validation failure of a mutation.' })
export class UserError {
  @Field(() => [String], {
    nullable: true,
    description: 'Path of the input field at fault, e.g. ["input", "layers", "0", "values"].',
  })
  field?: string[] | null;

  @Field({ description: 'Machine-readable code, e.g. INVALID_SEMVER, DUPLICATE_VERSION, FORBIDDEN.' })
  code!: string;

  @Field({ description: 'What went wrong, for a person.' })
  message!: string;
}

export function userError(code: string, message: string, field?: readonly (string | number)[]): UserError {
  return { code, message, field: field?.map(String) ?? null };
}

/** Bounds of a connection page. */
export const PAGE_SIZE = { default: 20, max: 100 } as const;

@ArgsType()
export class PageArgs {
  @Field(() => Int, {
    nullable: true,
    description: `Page size, 1 to ${PAGE_SIZE.max}. Defaults to ${PAGE_SIZE.default}.`,
  })
  first?: number | null;

  @Field(() => String, { nullable: true, description: 'The `endCursor` of the previous page.' })
  after?: string | null;
}

// InputType is re-exported so services import decorators from one place.
export { InputType };
