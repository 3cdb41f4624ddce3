import { ACCOUNT_ID, isRegion } from '../catalog.js';
import type { ImageDoc } from '../model.js';
import { newId } from '../net.js';
import { checkId, findInstance, idempotent, visibleImages, type ActionContext, type ActionHandler } from './context.js';
import { Ec2Error, ec2Errors } from './ec2-error.js';
import { applyFilters, type FilterFields } from './filters.js';
import { tagSet, type XmlValue } from './xml.js';

function imageXml(i: ImageDoc): XmlValue {
  return {
    imageId: i.id,
    imageLocation: `${i.ownerAlias ?? i.ownerId}/${i.name}`,
    imageState: i.state,
    imageOwnerId: i.ownerId,
    creationDate: i.creationDate,
    isPublic: i.isPublic,
    architecture: 'x86_64',
    imageType: 'machine',
    imageOwnerAlias: i.ownerAlias,
    name: i.name,
    description: i.description,
    rootDeviceType: 'ebs',
    rootDeviceName: '/dev/sda1',
    blockDeviceMapping: [],
    virtualizationType: 'hvm',
    hypervisor: 'xen',
    tagSet: tagSet(i.tags),
    stateReason: i.stateReason,
    platformDetails: 'Linux/UNIX',
    usageOperation: 'RunInstances',
    bootMode: 'uefi-preferred',
    enaSupport: true,
  };
}

const imageFields: FilterFields<ImageDoc> = {
  name: (i) => i.name,
  'image-id': (i) => i.id,
  state: (i) => i.state,
  'owner-id': (i) => i.ownerId,
  'owner-alias': (i) => i.ownerAlias,
  'is-public': (i) => String(i.isPublic),
  description: (i) => i.description,
  architecture: () => 'x86_64',
  'image-type': () => 'machine',
};

/** EC2's `Owner` values: `self`, an account id, or an owner alias (`amazon`, here `fleetgraph`). */
function ownedBy(image: ImageDoc, owners: string[]): boolean {
  return owners.some((o) =>
    o === 'self' ? image.ownerId === ACCOUNT_ID : image.ownerId === o || image.ownerAlias === o,
  );
}

export const describeImages: ActionHandler = async (ctx) => {
  const { q } = ctx;
  const ids = q.list('ImageId').map((id) => checkId('ami', id));
  const owners = q.list('Owner');
  let images = visibleImages(ctx);
  if (ids.length > 0) {
    const missing = ids.filter((id) => !images.some((i) => i.id === id));
    if (missing.length > 0) throw ec2Errors.imageNotFound(missing);
    images = images.filter((i) => ids.includes(i.id));
  }
  if (owners.length > 0) images = images.filter((i) => ownedBy(i, owners));
  images = applyFilters(images, q.filters(), imageFields).sort(
    (a, b) => a.creationDate.localeCompare(b.creationDate) || a.id.localeCompare(b.id),
  );
  return { imagesSet: images.map(imageXml) };
};

/** AMI names: 3 to 128 of letters, digits and `( ) [ ] . / - ' @ _` and spaces. */
function checkImageName(name: string): string {
  if (!/^[A-Za-z0-9()[\]./\-'@_ ]{3,128}$/.test(name)) {
    throw new Ec2Error(
      'InvalidAMIName.Malformed',
      'AMI names must be between 3 and 128 characters long, ' +
        "and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'",
    );
  }
  return name;
}

function checkNameFree(ctx: ActionContext, name: string): void {
  const taken = ctx.state.images
    .values()
    .find((i) => i.region === ctx.region && i.ownerId === ACCOUNT_ID && i.name === name);
  if (taken) throw ec2Errors.imageNameDuplicate(name, taken.id);
}

export const copyImage: ActionHandler = async (ctx) => {
  const { q } = ctx;
  const sourceRegion = q.required('SourceRegion');
  const sourceImageId = checkId('ami', q.required('SourceImageId'));
  const name = checkImageName(q.required('Name'));
  const result = await idempotent(ctx, 'CopyImage', q.string('ClientToken'), async () => {
    if (!isRegion(sourceRegion))
      throw ec2Errors.invalidParameterValue(`Invalid value '${sourceRegion}' for SourceRegion.`);
    const source = visibleImages(ctx, sourceRegion).find((i) => i.id === sourceImageId);
    if (!source) throw ec2Errors.imageNotFound([sourceImageId]);
    if (source.state !== 'available')
      throw new Ec2Error(
        'IncorrectState',
        `Image ${sourceImageId} is not in a valid state to be copied: ${source.state}`,
      );
    checkNameFree(ctx, name);
    const now = ctx.sim.now();
    const doc = await ctx.state.images.put({
      id: newId('ami'),
      region: ctx.region,
      name,
      description: q.string('Description') ?? source.description,
      state: 'pending',
      ownerId: ACCOUNT_ID,
      isPublic: false,
      creationDate: new Date(now).toISOString(),
      dueAt: now + ctx.sim.duration('imageCopy'),
      tags: { ...(q.bool('CopyImageTags') ? source.tags : {}), ...q.tagsFor('image') },
      source: { kind: 'copy', region: sourceRegion, imageId: sourceImageId },
    });
    return { resourceIds: [doc.id] };
  });
  return { imageId: result.resourceIds[0] };
};

export const createImage: ActionHandler = async (ctx) => {
  const { q } = ctx;
  const instanceId = checkId('i', q.required('InstanceId'));
  const name = checkImageName(q.required('Name'));
  const instance = findInstance(ctx, instanceId);
  if (!instance) throw ec2Errors.instancesNotFound([instanceId]);
  if (instance.state !== 'running' && instance.state !== 'stopped') throw ec2Errors.incorrectInstanceState(instanceId);
  checkNameFree(ctx, name);
  const now = ctx.sim.now();
  const doc = await ctx.state.images.put({
    id: newId('ami'),
    region: ctx.region,
    name,
    ...(q.string('Description') ? { description: q.string('Description') } : {}),
    state: 'pending',
    ownerId: ACCOUNT_ID,
    isPublic: false,
    creationDate: new Date(now).toISOString(),
    dueAt: now + ctx.sim.duration('imageCreate'),
    tags: q.tagsFor('image'),
    source: { kind: 'instance', instanceId },
  });
  return { imageId: doc.id };
};

export const deregisterImage: ActionHandler = async (ctx) => {
  const id = checkId('ami', ctx.q.required('ImageId'));
  const image = visibleImages(ctx).find((i) => i.id === id);
  if (!image) throw ec2Errors.imageNotFound([id]);
  if (image.ownerId !== ACCOUNT_ID) throw new Ec2Error('AuthFailure', `Not authorized for image:${id}`, 401);
  await ctx.state.images.remove(id);
  return { return: true };
};
