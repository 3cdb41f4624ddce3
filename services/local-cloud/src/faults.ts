import { z } from 'zod';
import { Ec2Error, ec2Errors } from './ec2/ec2-error.js';

export const injectedErrorSchema = z.object({
  /** Only this action (`RunInstances`); every action when absent. */
  action: z.string().min(1).optional(),
  /** EC2's error code, e.g. `InsufficientInstanceCapacity`. */
  code: z.string().min(1),
  message: z.string().min(1),
  status: z.number().int().min(400).max(599).default(400),
  /** How many requests fail this way. */
  times: z.number().int().min(1).default(1),
});

export const faultSettingsSchema = z.object({
  /** Share of EC2 requests refused with 503 `Unavailable` before they do anything (0..1). */
  errorRate: z.number().min(0).max(1),
  /**
   * Share of EC2 requests that do their work and then answer 500 `InternalError`, as a lost
   * response looks to a client: what idempotency tokens are for (0..1).
   */
  lostResponseRate: z.number().min(0).max(1),
  /** Requests per second above which EC2 requests get 503 `RequestLimitExceeded`; 0 is no limit. */
  throttlePerSecond: z.number().int().min(0),
  /** Errors to answer with, in order, before anything else. */
  inject: z.array(injectedErrorSchema),
});

export type FaultSettings = z.infer<typeof faultSettingsSchema>;
export type InjectedError = z.infer<typeof injectedErrorSchema>;

/** What `POST /_admin/faults` takes: any subset of the settings. */
export const faultPatchSchema = z
  .object({
    errorRate: faultSettingsSchema.shape.errorRate,
    lostResponseRate: faultSettingsSchema.shape.lostResponseRate,
    throttlePerSecond: faultSettingsSchema.shape.throttlePerSecond,
    inject: z.array(injectedErrorSchema),
  })
  .partial()
  .strict();

/** The faults the local cloud injects into its EC2 API, changeable at runtime. */
export class Faults {
  private settings: FaultSettings;
  private recent: number[] = [];

  constructor(
    private readonly defaults: FaultSettings,
    private readonly random: () => number,
  ) {
    this.settings = structuredClone(defaults);
  }

  get current(): FaultSettings {
    return structuredClone(this.settings);
  }

  update(patch: Partial<FaultSettings>): FaultSettings {
    this.settings = { ...this.settings, ...structuredClone(patch) };
    return this.current;
  }

  reset(): FaultSettings {
    this.settings = structuredClone(this.defaults);
    this.recent = [];
    return this.current;
  }

  /** Throws the error a request meets before it is handled, if any. */
  beforeRequest(action: string): void {
    const now = performance.now();
    this.recent = this.recent.filter((t) => now - t < 1000);
    this.recent.push(now);
    const index = this.settings.inject.findIndex((e) => !e.action || e.action === action);
    if (index >= 0) {
      const injected = this.settings.inject[index]!;
      if (injected.times <= 1) this.settings.inject.splice(index, 1);
      else this.settings.inject[index] = { ...injected, times: injected.times - 1 };
      throw new Ec2Error(injected.code, injected.message, injected.status);
    }
    if (this.settings.throttlePerSecond > 0 && this.recent.length > this.settings.throttlePerSecond) {
      throw ec2Errors.requestLimitExceeded();
    }
    if (this.settings.errorRate > 0 && this.random() < this.settings.errorRate) throw ec2Errors.unavailable();
  }

  /** Whether a handled request's answer is to be lost. */
  loseResponse(): boolean {
    return this.settings.lostResponseRate > 0 && this.random() < this.settings.lostResponseRate;
  }
}
