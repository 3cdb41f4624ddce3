import type { ActionHandler } from './context.js';
import { copyImage, createImage, deregisterImage, describeImages } from './images.js';
import { describeInstanceAttribute, describeInstances, runInstances, terminateInstances } from './instances.js';
import {
  authorizeSecurityGroupIngress,
  createSecurityGroup,
  createSubnet,
  createTags,
  createVpc,
  deleteSecurityGroup,
  deleteSubnet,
  deleteVpc,
  describeSecurityGroups,
  describeSubnets,
  describeVpcs,
  revokeSecurityGroupIngress,
} from './networks.js';
import { describeAvailabilityZones, describeInstanceTypes, describeRegions } from './offerings.js';

/** The subset of EC2's Query API (version 2016-11-15) the local cloud speaks. */
export const actions: Record<string, ActionHandler> = {
  DescribeRegions: describeRegions,
  DescribeAvailabilityZones: describeAvailabilityZones,
  DescribeInstanceTypes: describeInstanceTypes,
  RunInstances: runInstances,
  DescribeInstances: describeInstances,
  DescribeInstanceAttribute: describeInstanceAttribute,
  TerminateInstances: terminateInstances,
  DescribeImages: describeImages,
  CopyImage: copyImage,
  CreateImage: createImage,
  DeregisterImage: deregisterImage,
  CreateVpc: createVpc,
  DescribeVpcs: describeVpcs,
  DeleteVpc: deleteVpc,
  CreateSubnet: createSubnet,
  DescribeSubnets: describeSubnets,
  DeleteSubnet: deleteSubnet,
  CreateSecurityGroup: createSecurityGroup,
  DescribeSecurityGroups: describeSecurityGroups,
  AuthorizeSecurityGroupIngress: authorizeSecurityGroupIngress,
  RevokeSecurityGroupIngress: revokeSecurityGroupIngress,
  DeleteSecurityGroup: deleteSecurityGroup,
  CreateTags: createTags,
};
