import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, parseEnv, serviceEnvShape } from './env.js';

describe('parseEnv', () => {
  it('should apply defaults and treat empty strings as unset', () => {
    const env = parseEnv({ ...serviceEnvShape, PORT: z.coerce.number().default(4001) }, { DATA_DIR: '', NATS_URL: 'nats://x:1' });
    expect(env).toMatchObject({ DATA_DIR: './.data', NATS_URL: 'nats://x:1', PORT: 4001, LOG_LEVEL: 'info' });
  });

  it('should report every problem at once', () => {
    try {
      parseEnv(serviceEnvShape, { PORT: 'abc', LOG_LEVEL: 'loud', MONGODB_URI: 'not a url' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.map((p) => p.split(':')[0])).toEqual(expect.arrayContaining(['PORT', 'LOG_LEVEL', 'MONGODB_URI']));
    }
  });
});
