import { parseEnv, serviceEnvShape } from '@fleetgraph/kit';
import { z } from 'zod';

/** The profiles service's environment; see the README for each variable. */
export const readEnv = () =>
  parseEnv({ ...serviceEnvShape, PORT: z.coerce.number().int().min(0).max(65535).default(4001) });
export type Env = ReturnType<typeof readEnv>;
