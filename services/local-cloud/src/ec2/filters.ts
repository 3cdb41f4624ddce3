import { ec2Errors } from './ec2-error.js';

/** How to read one filterable field of a resource; a list matches when any of its values does. */
export type FilterFields<T> = Record<string, (resource: T) => string | string[] | undefined>;

/** EC2's wildcards: `*` any run of characters, `?` one character. */
function matches(pattern: string, value: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === value;
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(value);
}

/**
 * Applies EC2 filters: every filter must hold; within one, any value. `tag:<key>` and `tag-key`
 * work for anything with tags.
 */
export function applyFilters<T extends { tags: Record<string, string> }>(
  resources: T[],
  filters: { name: string; values: string[] }[],
  fields: FilterFields<T>,
): T[] {
  const readers = filters.map((filter) => {
    let read: (r: T) => string | string[] | undefined;
    if (filter.name.startsWith('tag:')) {
      const key = filter.name.slice(4);
      read = (r) => r.tags[key];
    } else if (filter.name === 'tag-key') {
      read = (r) => Object.keys(r.tags);
    } else if (filter.name === 'tag-value') {
      read = (r) => Object.values(r.tags);
    } else {
      const field = fields[filter.name];
      if (!field) throw ec2Errors.invalidFilter(filter.name);
      read = field;
    }
    return { read, values: filter.values };
  });
  return resources.filter((r) =>
    readers.every(({ read, values }) => {
      const have = read(r);
      const list = have === undefined ? [] : Array.isArray(have) ? have : [have];
      return list.some((v) => values.some((pattern) => matches(pattern, v)));
    }),
  );
}
