import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  DEV_INTERNAL_SECRET,
  optionalSecretSetting,
  parseEnv,
  publicBase,
  publicUrlSetting,
  secretSetting,
  serviceEnvShape,
} from './env.js';

describe('parseEnv', () => {
  it('should apply defaults and treat empty strings as unset', () => {
    const env = parseEnv(
      { ...serviceEnvShape, PORT: z.coerce.number().default(4001) },
      { DATA_DIR: '', NATS_URL: 'nats://x:1' },
    );
    expect(env).toMatchObject({ DATA_DIR: './.data', NATS_URL: 'nats://x:1', PORT: 4001, LOG_LEVEL: 'info' });
  });

  it('should report every problem at once', () => {
    try {
      parseEnv(serviceEnvShape, { PORT: 'abc', LOG_LEVEL: 'loud', MONGODB_URI: 'not a url' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.map((p) => p.split(':')[0])).toEqual(
        expect.arrayContaining(['PORT', 'LOG_LEVEL', 'MONGODB_URI']),
      );
    }
  });

  describe('in production', () => {
    const shape = {
      ...serviceEnvShape,
      PORT: z.coerce.number().default(4001),
      API_SECRET: secretSetting('dev-secret-everyone-knows-it'),
      PUBLIC_URL: publicUrlSetting(),
    };
    const safe = {
      NODE_ENV: 'production',
      INTERNAL_AUTH_SECRET: 'i'.repeat(40),
      API_SECRET: 's'.repeat(32),
      PUBLIC_URL: 'https://fleet.example.com/graphql',
      NATS_CREDENTIALS: 'creds',
    };
    const problemsOf = (env: NodeJS.ProcessEnv) => {
      try {
        parseEnv(shape, env);
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };

    it('should start with secrets of its own, its public URL and NATS credentials', () => {
      expect(problemsOf(safe)).toEqual([]);
    });

    it('should refuse development secrets, short secrets, a missing public URL and NATS without credentials, one line per variable', () => {
      const problems = problemsOf({
        NODE_ENV: 'production',
        INTERNAL_AUTH_SECRET: DEV_INTERNAL_SECRET,
        API_SECRET: 'short-but-valid-16',
      });
      expect(problems).toEqual([
        expect.stringMatching(/^INTERNAL_AUTH_SECRET: is the public development default/),
        expect.stringMatching(/^API_SECRET: too short for production \(18 characters; at least 32\)/),
        expect.stringMatching(/^PUBLIC_URL: required in production/),
        expect.stringMatching(/^NATS_CREDENTIALS or NATS_CREDENTIALS_FILE: required in production/),
      ]);
      // The defaults, unset: the same refusals.
      expect(problemsOf({ NODE_ENV: 'production' }).map((p) => p.split(':')[0])).toEqual([
        'INTERNAL_AUTH_SECRET',
        'API_SECRET',
        'PUBLIC_URL',
        'NATS_CREDENTIALS or NATS_CREDENTIALS_FILE',
      ]);
    });

    it('should let development run on its defaults', () => {
      expect(problemsOf({})).toEqual([]);
    });

    it('should let production go without an optional secret once its alternative is set, and only then', () => {
      const optional = { ...shape, TOKEN_SECRET: optionalSecretSetting('dev-token-secret-known', 'IDP_URL') };
      const parse = (env: NodeJS.ProcessEnv) => parseEnv({ ...optional, IDP_URL: z.string().optional() }, env);
      // Development: the default, with or without the alternative.
      expect(parse({}).TOKEN_SECRET).toBe('dev-token-secret-known');
      expect(parse({ IDP_URL: 'https://idp' }).TOKEN_SECRET).toBe('dev-token-secret-known');
      // Production with the alternative: off.
      expect(parse({ ...safe, IDP_URL: 'https://idp' }).TOKEN_SECRET).toBeUndefined();
      // Production without it: the development default is refused, a secret of its own taken.
      expect(() => parse(safe)).toThrow(
        /TOKEN_SECRET: is the public development default; .*, or leave it unset and set IDP_URL/,
      );
      expect(() => parse({ ...safe, TOKEN_SECRET: 'short-but-valid-16' })).toThrow(/TOKEN_SECRET: too short/);
      expect(parse({ ...safe, IDP_URL: 'https://idp', TOKEN_SECRET: 't'.repeat(32) }).TOKEN_SECRET).toBe(
        't'.repeat(32),
      );
    });
  });

  it("should put the gateway's other routes beside its GraphQL path", () => {
    expect(publicBase('https://fleet.example.com/graphql')).toBe('https://fleet.example.com');
    expect(publicBase('https://example.com/fleet/graphql/')).toBe('https://example.com/fleet');
    expect(publicBase('http://127.0.0.1:5000/graphql')).toBe('http://127.0.0.1:5000');
  });
});
