import { devToken, usage, UsageError } from './dev-token.js';

try {
  const printed = await devToken(process.argv.slice(2));
  console.log(typeof printed === 'string' ? printed : printed.help);
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  console.error(`${error.message}\n\n${usage}`);
  process.exit(2);
}
