import { decode, fmtCreds, fromSeed, type ClaimsData, type User } from '@nats-io/jwt';
import { BusError, type Bus, type Logger } from '@fleetgraph/kit/core';
import { renewAgentCredentials } from '@fleetgraph/schema';

/** Credentials that cannot be used: not a credentials file, a JWT that does not decode, a seed of another key. */
export class CredentialsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CredentialsError';
  }
}

/** What an agent's NATS credentials file holds. */
export interface ParsedCredentials {
  /** The user JWT. */
  jwt: string;
  /** The user's seed (`SU...`): a secret, never logged. */
  seed: string;
  /** The user's public key (`U...`), the JWT's subject. */
  publicKey: string;
  /** The JWT's `iat`; null without one. */
  issuedAt: Date | null;
  /** The JWT's `exp`; null when it never expires. */
  expiresAt: Date | null;
}

/**
 * The armoured sections of a `.creds` file (`-----BEGIN NATS USER JWT-----` ...
 * `------END ...------`), as nats.js reads them.
 */
const SECTION = /-{3,}[^\n]*-{3,}\r?\n\s*([\w\-.=]+)\s*\r?\n\s*-{3,}[^\n]*-{3,}/g;

const decoder = new TextDecoder();

function claimsOf(jwt: string): ClaimsData<User> {
  try {
    // Checks the JWT's shape and its signature by its issuer.
    return decode<User>(jwt);
  } catch (error) {
    throw new CredentialsError(`the user JWT does not decode: ${(error as Error).message}`, { cause: error });
  }
}

const dateOf = (seconds: number | undefined) =>
  typeof seconds === 'number' && seconds > 0 ? new Date(seconds * 1000) : null;

/**
 * Reads a NATS credentials file (user JWT and seed). @throws CredentialsError when it is not
 * one, or when its seed is not the key the JWT was issued for
 */
export function parseCredentials(text: string): ParsedCredentials {
  const sections = [...text.matchAll(SECTION)].map((m) => m[1]!);
  if (sections.length < 2) throw new CredentialsError('not a NATS credentials file: expected a user JWT and a seed');
  const [jwt, seed] = sections as [string, string];
  const claims = claimsOf(jwt);
  let publicKey: string;
  try {
    publicKey = fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  } catch (error) {
    throw new CredentialsError('the seed of the credentials file is not a NATS seed', { cause: error });
  }
  if (claims.sub !== publicKey) throw new CredentialsError(`the seed is not the key of the user JWT (${claims.sub})`);
  return { jwt, seed, publicKey, issuedAt: dateOf(claims.iat), expiresAt: dateOf(claims.exp) };
}

/** The longest timer Node keeps (about 24.8 days); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface CredentialsRenewalOptions {
  clusterId: string;
  log: Logger;
  /** The share of a JWT's life after which a new one is asked for. @default 2/3 */
  renewAfter?: number;
  /** How long one renewal request may take. @default 10 000 */
  requestTimeoutMs?: number;
  /** The longest wait between two attempts after a failure. @default 60 000 */
  maxRetryMs?: number;
  /**
   * Called with each renewed credentials file, so that what restarts the agent finds them (the
   * real agent writes them back to its Secret, the local cloud to its store). A failure is logged.
   */
  onRenewed?: (creds: string, expiresAt: Date | null) => void | Promise<void>;
}

/** Where a renewal stands: renewing (or waiting to), stopped by its owner, or refused because the cluster is gone. */
export type RenewalState = 'renewing' | 'stopped' | 'cluster-deleted';

export interface CredentialsRenewal {
  readonly state: RenewalState;
  /** Renewals that succeeded. */
  readonly renewals: number;
  stop(): void;
}

/**
 * An agent's NATS credentials as they are now: the seed stays, the JWT is renewed over NATS
 * (`renewAgentCredentials`, served by the clusters service) at ~2/3 of its life. Give
 * {@link AgentCredentials.current} to `createBus` as its `credentials` function: NATS closes a
 * connection whose JWT expired, and the client's reconnect reads the current, renewed one.
 */
export class AgentCredentials {
  #parsed: ParsedCredentials;
  #text: string;

  /** @throws CredentialsError when `text` is not a usable credentials file */
  constructor(text: string) {
    this.#parsed = parseCredentials(text);
    this.#text = text;
  }

  /** The credentials file as it is now (bound: pass it as is). */
  readonly current = (): string => this.#text;

  get publicKey(): string {
    return this.#parsed.publicKey;
  }

  get jwt(): string {
    return this.#parsed.jwt;
  }

  get issuedAt(): Date | null {
    return this.#parsed.issuedAt;
  }

  get expiresAt(): Date | null {
    return this.#parsed.expiresAt;
  }

  /**
   * Takes a new JWT for the same key. @throws CredentialsError when it does not decode or names
   * another key (it would not authenticate with this seed)
   */
  replaceJwt(jwt: string): void {
    const claims = claimsOf(jwt);
    if (claims.sub !== this.#parsed.publicKey)
      throw new CredentialsError(`the renewed JWT is for another key (${claims.sub})`);
    this.#text = decoder.decode(fmtCreds(jwt, fromSeed(new TextEncoder().encode(this.#parsed.seed))));
    this.#parsed = { ...this.#parsed, jwt, issuedAt: dateOf(claims.iat), expiresAt: dateOf(claims.exp) };
  }

  /**
   * Renews the JWT over `bus` before each expiry, until stopped or until the platform answers
   * NOT_FOUND (the cluster is deleted: renewing stops, and NATS refuses the agent once its JWT
   * expires). Failures are retried, more often as the expiry nears. Credentials that never
   * expire are never renewed.
   */
  renew(bus: Bus, options: CredentialsRenewalOptions): CredentialsRenewal {
    const { clusterId, log } = options;
    const renewAfter = options.renewAfter ?? 2 / 3;
    const maxRetryMs = options.maxRetryMs ?? 60_000;
    let state: RenewalState = 'renewing';
    let renewals = 0;
    let timer: NodeJS.Timeout | undefined;

    const wait = (ms: number, then: () => void) => {
      if (state !== 'renewing') return;
      clearTimeout(timer);
      timer = setTimeout(then, Math.min(Math.max(0, ms), MAX_TIMER_MS));
      timer.unref();
    };

    const schedule = () => {
      const expiresAt = this.expiresAt;
      if (!expiresAt) return;
      const issuedAt = this.issuedAt?.getTime() ?? Date.now();
      const due = issuedAt + (expiresAt.getTime() - issuedAt) * renewAfter;
      // A wait longer than a timer holds is taken in steps, each scheduling anew.
      wait(due - Date.now(), () => (due - Date.now() > 0 ? schedule() : void attempt()));
    };

    const attempt = async () => {
      if (state !== 'renewing') return;
      if (bus.closed) {
        state = 'stopped';
        return;
      }
      try {
        const reply = await bus.request(
          renewAgentCredentials,
          { clusterId, publicKey: this.publicKey },
          { timeoutMs: options.requestTimeoutMs ?? 10_000 },
        );
        if (state !== 'renewing') return;
        this.replaceJwt(reply.jwt);
        renewals++;
        log.info({ clusterId, expiresAt: this.expiresAt?.toISOString() ?? null }, 'NATS credentials renewed');
        try {
          await options.onRenewed?.(this.current(), this.expiresAt);
        } catch (error) {
          log.warn({ err: error, clusterId }, 'renewed NATS credentials could not be kept for a restart');
        }
        schedule();
      } catch (error) {
        if (state !== 'renewing') return;
        if (error instanceof BusError && error.code === 'NOT_FOUND') {
          state = 'cluster-deleted';
          log.warn(
            { clusterId, expiresAt: this.expiresAt?.toISOString() ?? null },
            'the platform no longer manages this cluster: NATS credentials are not renewed, and expire',
          );
          return;
        }
        // Sooner as the expiry nears: a tenth of what is left, between 1 s and maxRetryMs.
        const left = (this.expiresAt?.getTime() ?? Date.now()) - Date.now();
        const retryMs = Math.min(maxRetryMs, Math.max(1_000, left / 10));
        log.warn(
          { err: error, clusterId, retryMs, expiresAt: this.expiresAt?.toISOString() ?? null },
          'NATS credentials not renewed; retrying',
        );
        wait(retryMs, () => void attempt());
      }
    };

    schedule();
    return {
      get state() {
        return state;
      },
      get renewals() {
        return renewals;
      },
      stop() {
        if (state === 'renewing') state = 'stopped';
        clearTimeout(timer);
      },
    };
  }
}
