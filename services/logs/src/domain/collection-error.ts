/** Why a collection failed; the message is what the bundle's `message` says. */
export const CollectionFailure = {
  AGENT_UNREACHABLE: 'No agent of the cluster is connected.',
  AGENT_TIMEOUT: 'The agent did not answer the collect-logs request in time.',
  AGENT_REFUSED: 'The agent refused the collection (busy, or cannot read logs).',
  AGENT_FAILED: 'The agent failed while collecting.',
  STREAM_TIMEOUT: 'The agent stopped sending logs.',
  STREAM_BROKEN: 'The stream broke: a message was lost, malformed or out of order.',
  TOO_LARGE: 'The archive grew past the maximum size.',
  DEADLINE: 'The collection took longer than allowed.',
  STOPPED: 'The logs service stopped while the collection waited or ran.',
} as const;
export type CollectionFailure = keyof typeof CollectionFailure;

/** A collection that cannot finish: the bundle goes FAILED with this message. */
export class CollectionError extends Error {
  constructor(
    readonly code: CollectionFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CollectionError';
  }
}
