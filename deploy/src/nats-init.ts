import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  generateNatsKeys,
  natsServerSecurityConfig,
  serviceCredentials,
  SUBGRAPHS,
  type NatsKeys,
} from '@fleetgraph/kit/core';

/**
 * `nats-init`: the NATS security of an installation, for Compose's init container or an
 * operator preparing Kubernetes Secrets. The same keys and files `pnpm start` makes for itself,
 * written where containers can share them:
 *
 * - the keys (operator, system and platform account seeds) in `keysFile`, reused on every later
 *   run, so that streams and credentials outlive a restart; taken from NATS_OPERATOR_SEED,
 *   NATS_SYSTEM_ACCOUNT_SEED and NATS_ACCOUNT_SEED when all three are set;
 * - `auth.conf`, the nats-server configuration of the operator and the accounts, for every NATS
 *   node to include;
 * - `creds/<process>.creds`, each platform process's own user (made once, kept);
 * - `account.seed` (or `accountSeedFile`), the account seed the clusters service mints agents'
 *   credentials with.
 *
 * The keys file may live apart from the rest (another volume), so that no service sees the
 * operator's seed; so may the account seed, so that only the clusters service sees it (whoever
 * holds it can mint NATS users of the account).
 */

/** The processes that connect to NATS as their own user. */
export const NATS_USERS = ['gateway', ...SUBGRAPHS.map((s) => s.name), 'local-cloud'] as const;

export interface NatsInitOptions {
  outDir: string;
  /** @default `<outDir>/keys.json` */
  keysFile?: string;
  /** @default `<outDir>/account.seed` */
  accountSeedFile?: string;
  env?: NodeJS.ProcessEnv;
}

const secret = (file: string, text: string) => {
  writeFileSync(file, text, { mode: 0o600 });
  // The mode of writeFileSync applies to new files only.
  chmodSync(file, 0o600);
};

function loadKeys(
  file: string,
  env: NodeJS.ProcessEnv,
): { keys: NatsKeys; source: 'kept' | 'environment' | 'generated' } {
  if (existsSync(file)) return { keys: JSON.parse(readFileSync(file, 'utf8')) as NatsKeys, source: 'kept' };
  const {
    NATS_OPERATOR_SEED: operatorSeed,
    NATS_SYSTEM_ACCOUNT_SEED: systemAccountSeed,
    NATS_ACCOUNT_SEED: accountSeed,
  } = env;
  if (operatorSeed && systemAccountSeed && accountSeed)
    return { keys: { operatorSeed, systemAccountSeed, accountSeed }, source: 'environment' };
  return { keys: generateNatsKeys(), source: 'generated' };
}

/** Writes what is missing under `outDir` (auth.conf every time: it follows the keys); returns what it did, one line each. */
export async function natsInit(options: NatsInitOptions): Promise<string[]> {
  const outDir = resolve(options.outDir);
  const keysFile = resolve(options.keysFile ?? join(outDir, 'keys.json'));
  const accountSeedFile = resolve(options.accountSeedFile ?? join(outDir, 'account.seed'));
  const done: string[] = [];
  mkdirSync(join(outDir, 'creds'), { recursive: true });
  mkdirSync(dirname(keysFile), { recursive: true });
  mkdirSync(dirname(accountSeedFile), { recursive: true });

  const { keys, source } = loadKeys(keysFile, options.env ?? process.env);
  if (source !== 'kept') secret(keysFile, JSON.stringify(keys));
  done.push(`keys ${source}: ${keysFile}`);
  secret(join(outDir, 'auth.conf'), await natsServerSecurityConfig(keys));
  secret(accountSeedFile, keys.accountSeed);
  // Kept apart: a copy an earlier run left beside the rest (which every process mounts) goes.
  const beside = join(outDir, 'account.seed');
  if (accountSeedFile !== beside) rmSync(beside, { force: true });
  done.push(`auth.conf: ${outDir}; account seed: ${accountSeedFile}`);
  for (const user of NATS_USERS) {
    const file = join(outDir, 'creds', `${user}.creds`);
    // A new key pair for a user already out there would leave its running processes' files stale.
    if (existsSync(file) && source === 'kept') continue;
    secret(file, await serviceCredentials(keys, user));
    done.push(`credentials: ${file}`);
  }
  return done;
}

const usage = 'usage: nats-init <out-dir> [--keys <keys.json>] [--account-seed <file>]';

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { keys: { type: 'string' }, 'account-seed': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [outDir, ...rest] = positionals;
  if (values.help || !outDir || rest.length > 0) {
    console.error(usage);
    process.exit(values.help ? 0 : 2);
  }
  const files = {
    ...(values.keys ? { keysFile: values.keys } : {}),
    ...(values['account-seed'] ? { accountSeedFile: values['account-seed'] } : {}),
  };
  for (const line of await natsInit({ outDir, ...files })) console.log(line);
}

// Run as a command (the image's `nats-init`), not when a test imports it.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
