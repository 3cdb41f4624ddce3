import type { IncomingMessage } from 'node:http';
import { REQUEST_ID_HEADER, requestIdOf, type Identity, type Logger } from '@fleetgraph/kit/core';

/** Operation names an access line lists at most (a connection may subscribe to many). */
const MAX_OPERATION_NAMES = 10;

/** What the access line of one graphql-ws connection says, gathered while it is open. */
interface ConnectionRecord {
  requestId: string;
  openedAt: number;
  caller?: string;
  tenantId?: string;
  operations: string[];
  subscribes: number;
}

/**
 * One access line per graphql-ws connection, written when it closes (`graphql-ws connection`):
 * its upgrade's request id, the caller, the operations it subscribed to (names only, never
 * variables or tokens), how many subscribes, the close code as its status, and how long it lasted.
 */
export function createConnectionLog(log: Logger) {
  const upgrades = new WeakMap<IncomingMessage, string>();
  const records = new WeakMap<object, ConnectionRecord>();
  return {
    /** The request id of an upgrade request (its own when it looks like an id), remembered for its connection. */
    upgraded(request: IncomingMessage): string {
      const requestId = requestIdOf(request.headers[REQUEST_ID_HEADER] as string | undefined);
      upgrades.set(request, requestId);
      return requestId;
    },
    opened(socket: object, request: IncomingMessage): void {
      records.set(socket, {
        requestId: upgrades.get(request) ?? requestIdOf(undefined),
        openedAt: performance.now(),
        operations: [],
        subscribes: 0,
      });
    },
    identified(socket: object, identity: Identity): void {
      const record = records.get(socket);
      if (!record) return;
      record.caller = identity.userId;
      record.tenantId = identity.tenantId;
    },
    subscribed(socket: object, operationName: string | null | undefined): void {
      const record = records.get(socket);
      if (!record) return;
      record.subscribes++;
      const name = operationName || '(anonymous)';
      if (record.operations.length < MAX_OPERATION_NAMES && !record.operations.includes(name))
        record.operations.push(name);
    },
    closed(socket: object, code: number | undefined, reason: string | undefined): void {
      const record = records.get(socket);
      if (!record) return;
      records.delete(socket);
      log.info(
        {
          requestId: record.requestId,
          status: code,
          ...(reason && { reason }),
          durationMs: Math.round(performance.now() - record.openedAt),
          ...(record.caller && { caller: record.caller, tenantId: record.tenantId }),
          operationNames: record.operations,
          subscribes: record.subscribes,
        },
        'graphql-ws connection',
      );
    },
  };
}
