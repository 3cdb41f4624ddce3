import { BusError, type Bus, type Logger } from '@fleetgraph/kit';
import { imagesNode, resolveImage } from '@fleetgraph/schema';
import { CloudUnavailableError, ImageRequestError } from '../app/errors.js';
import type { ImageRequests } from '../app/image-requests.js';
import { toMessage } from './image.events.js';
import type { ImageRepository } from './image.repo.js';

/**
 * Answers `images.v1.resolve` (queue group `images`): the image's current state at once, never
 * waiting for a copy or build. Bad input is BAD_REQUEST with the reason; a cloud that cannot be
 * asked is INTERNAL with the reason, so that the caller can tell it from a bug.
 */
export function serveImageRequests(bus: Bus, requests: ImageRequests, log: Logger): void {
  bus.serve(resolveImage, async (request) => {
    try {
      return toMessage(await requests.resolve(request));
    } catch (error) {
      if (error instanceof ImageRequestError) throw new BusError('BAD_REQUEST', error.message, { cause: error });
      if (error instanceof CloudUnavailableError) {
        log.warn({ err: error, cloud: request.cloud, region: request.region }, 'resolve could not reach the cloud');
        throw new BusError('INTERNAL', error.message, { cause: error });
      }
      throw error;
    }
  });
}

/**
 * Answers `images.v1.node.Image` for `Query.node` (served by the clusters subgraph): whether the
 * caller may read the image, as the `Image` reference decides (its tenant's or the public catalogue).
 */
export function serveImageNodes(bus: Bus, images: ImageRepository): void {
  bus.serve(
    imagesNode,
    async ({ id, claims }) => ({ readable: (await images.getVisible(claims.tenantId, id)) !== null }),
    {
      tokens: { type: 'Image' },
    },
  );
}
