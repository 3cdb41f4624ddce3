/**
 * The `complete` condition of a `@jetstream` binding: `path in [A, B]` or `path == A` (or `!=`),
 * evaluated on each event payload. Values are enum-like names (compared as strings), quoted
 * strings, numbers, `true`, `false` or `null`; `path` is a field, or fields joined by dots.
 */
export type Condition = (payload: unknown) => boolean;

type Literal = string | number | boolean | null;

const TOKEN =
  /\s*(?:(\[|\]|,|==|!=)|("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*))/y;

function tokenize(source: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < source.length) {
    if (/^\s*$/.test(source.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(source);
    if (!match) throw new SyntaxError(`unexpected "${source.slice(at).trim()}"`);
    tokens.push(match[1] ?? match[2] ?? match[3] ?? match[4]!);
  }
  return tokens;
}

function literal(token: string | undefined): Literal {
  if (token === undefined) throw new SyntaxError('a value is missing');
  if (token.startsWith('"')) return JSON.parse(token) as string;
  if (/^-?\d/.test(token)) return Number(token);
  if (token === 'true' || token === 'false') return token === 'true';
  if (token === 'null') return null;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(token)) return token;
  throw new SyntaxError(`"${token}" is not a value`);
}

function read(payload: unknown, path: readonly string[]): unknown {
  let value = payload;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** Compiles a condition. @throws SyntaxError with what is wrong */
export function parseCondition(source: string): Condition {
  const tokens = tokenize(source);
  const [path, op, ...rest] = tokens;
  if (!path || !/^[A-Za-z_]/.test(path) || ['true', 'false', 'null'].includes(path))
    throw new SyntaxError('a condition starts with a field path');
  const keys = path.split('.');
  if (op === 'in') {
    if (rest[0] !== '[' || rest.at(-1) !== ']') throw new SyntaxError('"in" takes a list: in [A, B]');
    const inner = rest.slice(1, -1);
    const values: Literal[] = [];
    for (let i = 0; i < inner.length; i += 2) {
      values.push(literal(inner[i]));
      if (i + 1 < inner.length && inner[i + 1] !== ',') throw new SyntaxError('list values are separated by commas');
    }
    if (values.length === 0) throw new SyntaxError('the list is empty');
    const set = new Set<unknown>(values);
    return (payload) => set.has(read(payload, keys));
  }
  if (op === '==' || op === '!=') {
    if (rest.length !== 1) throw new SyntaxError(`"${op}" takes one value`);
    const value = literal(rest[0]);
    return op === '==' ? (payload) => read(payload, keys) === value : (payload) => read(payload, keys) !== value;
  }
  throw new SyntaxError('expected "in", "==" or "!=" after the field path');
}
