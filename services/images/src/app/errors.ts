/** A resolve request that cannot be served as asked: an unknown OS, region or image ref. Nothing was changed. */
export class ImageRequestError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ImageRequestError';
  }
}

/**
 * The cloud could not be asked what a request needs to know (its regions, an image ref); asking
 * again later may succeed.
 */
export class CloudUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CloudUnavailableError';
  }
}
