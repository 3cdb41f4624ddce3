import { VersionConflictError, type Bus, type Logger } from '@fleetgraph/kit';
import { imageStatusChanged, type ImageMessage } from '@fleetgraph/schema';
import type { ImageStatusEvents, ImageStore } from '../app/ports.js';
import type { Image, ImageRecord } from '../domain/image.js';

/** An image as it travels over NATS (`images.v1.resolve` replies, `images.v1.status` events). */
export function toMessage(image: Image): ImageMessage {
  return {
    id: image.id,
    tenantId: image.tenantId,
    signature: image.signature,
    os: image.os,
    osVersion: image.osVersion,
    kubernetesVersion: image.kubernetesVersion,
    cloud: image.cloud,
    region: image.region,
    source: image.source,
    status: image.status,
    artifactId: image.artifactId,
    ansibleRoles: image.ansibleRoles,
    message: image.message,
    description: image.description,
    createdAt: image.createdAt,
  };
}

/**
 * Publishes `images.v1.status.<tenantId>.<imageId>` to the IMAGES stream. The message id is the
 * image id with its status sequence, so a change published twice (a retry, a takeover) is
 * stored once.
 */
export class ImageEvents implements ImageStatusEvents {
  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  /** @returns whether the event is in the stream (now or before). */
  async publish(image: Image): Promise<boolean> {
    try {
      await this.bus.publish(imageStatusChanged, toMessage(image), { msgId: `${image.id}:${image.statusSeq}` });
      return true;
    } catch (error) {
      this.log.warn(
        { err: error, imageId: image.id, status: image.status },
        'could not publish images.v1.status; will retry',
      );
      return false;
    }
  }

  /**
   * Publishes the image's pending event and clears the flag. A concurrent update of the image
   * leaves the flag set, and the sweep publishes it again later (dropped as a duplicate if the
   * stream still remembers the message id).
   */
  async flush(images: Pick<ImageStore, 'replace'>, image: ImageRecord): Promise<ImageRecord> {
    if (!image.pendingEvent || !(await this.publish(image))) return image;
    try {
      return await images.replace({ ...image, pendingEvent: false });
    } catch (error) {
      if (error instanceof VersionConflictError) return image;
      throw error;
    }
  }
}
