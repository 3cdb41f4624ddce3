/**
 * An error as EC2 answers it: a code, a message and an HTTP status
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
 */
export class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'Ec2Error';
  }
}

/** The errors the local cloud answers with, worded as EC2 words them. */
export const ec2Errors = {
  authFailure: () => new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials', 401),
  unauthorized: () => new Ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403),
  invalidAction: (action: string) =>
    new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`),
  missingParameter: (name: string) =>
    new Ec2Error('MissingParameter', `The request must contain the parameter ${name}`),
  invalidParameterValue: (message: string) => new Ec2Error('InvalidParameterValue', message),
  invalidParameterCombination: (message: string) => new Ec2Error('InvalidParameterCombination', message),
  invalidFilter: (name: string) => new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`),
  malformedId: (kind: string, id: string, prefix: string) =>
    new Ec2Error(`${kind}.Malformed`, `Invalid id: "${id}" (expecting "${prefix}-...")`),
  instancesNotFound: (ids: string[]) =>
    new Ec2Error(
      'InvalidInstanceID.NotFound',
      ids.length === 1
        ? `The instance ID '${ids[0]}' does not exist`
        : `The instance IDs '${ids.join(', ')}' do not exist`,
    ),
  imageNotFound: (ids: string[]) =>
    new Ec2Error('InvalidAMIID.NotFound', `The image id '[${ids.join(', ')}]' does not exist`),
  imageUnavailable: (id: string, state: string) =>
    new Ec2Error('InvalidAMIID.Unavailable', `AMI ${id} is ${state}, and cannot be run`),
  imageNameDuplicate: (name: string, id: string) =>
    new Ec2Error('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${id}`),
  vpcNotFound: (id: string) => new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`),
  subnetNotFound: (id: string) => new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`),
  groupNotFound: (id: string) => new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`),
  groupDuplicate: (name: string, vpcId: string) =>
    new Ec2Error('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpcId}'`),
  permissionDuplicate: (peer: string, protocol: string) =>
    new Ec2Error(
      'InvalidPermission.Duplicate',
      `the specified rule "peer: ${peer}, ${protocol === '-1' ? 'ALL' : protocol.toUpperCase()}, ALLOW" already exists`,
    ),
  dependencyViolation: (message: string) => new Ec2Error('DependencyViolation', message),
  idempotentMismatch: () =>
    new Ec2Error(
      'IdempotentParameterMismatch',
      'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).',
    ),
  vcpuLimitExceeded: (limit: number) =>
    new Ec2Error(
      'VcpuLimitExceeded',
      `You have requested more vCPU capacity than your current vCPU limit of ${limit} allows ` +
        'for the instance bucket that the specified instance type belongs to. ' +
        'Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.',
    ),
  incorrectInstanceState: (id: string) =>
    new Ec2Error('IncorrectInstanceState', `The instance '${id}' is not in a state from which it can be imaged.`),
  requestLimitExceeded: () => new Ec2Error('RequestLimitExceeded', 'Request limit exceeded.', 503),
  unavailable: () => new Ec2Error('Unavailable', 'The server is overloaded and cannot handle the request.', 503),
  internalError: () => new Ec2Error('InternalError', 'An internal error has occurred.', 500),
};
