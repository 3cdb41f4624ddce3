import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { CreateSubnetCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, expect, it } from 'vitest';

/**
 * What one EC2 call costs the orchestrator's process through the AWS SDK, against the same
 * request made with node:http (issue 18, goal 3: where a provisioning step's CPU goes). An EC2
 * API stand-in runs in a child process and answers every request with a canned response (EC2's
 * own XML, as its documentation shows it): CreateSubnet (a small answer; most of a cluster's calls
 * are creates like it) and DescribeInstances (three instances). This process's CPU
 * (`process.cpuUsage()`, every thread) over `CALLS` calls, `CONCURRENCY` at a time, is the client's
 * alone:
 *
 * - `node:http`: a keep-alive POST of the call's form body, the answer read as text: the floor
 *   of any client;
 * - `AWS SDK`: `@aws-sdk/client-ec2` configured as the AWS adapter configures it
 *   (services/clouds/src/aws/ec2.ts: adaptive retries, the middleware stack cached, no logger
 *   middleware): serialising, signing (SigV4), retry bookkeeping, endpoint resolution, parsing
 *   the XML into the output shape.
 *
 * The two alternate over `ROUNDS` rounds; prints the medians and the SDK's cost over the floor.
 * Asserts only that the answers were read; nothing about time.
 *
 *   npx vitest run --project bench test/bench/ec2-call.bench.ts
 *
 * EC2_BENCH_CALLS (3000), _CONCURRENCY (8), _ROUNDS (5) change the shape.
 */
const CALLS = Number(process.env.EC2_BENCH_CALLS ?? 3000);
const CONCURRENCY = Number(process.env.EC2_BENCH_CONCURRENCY ?? 8);
const ROUNDS = Number(process.env.EC2_BENCH_ROUNDS ?? 5);

const CREATE_SUBNET = `<?xml version="1.0" encoding="UTF-8"?>
<CreateSubnetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId><subnet><subnetId>subnet-1a2b3c4d</subnetId><state>pending</state><vpcId>vpc-1a2b3c4d</vpcId><cidrBlock>10.0.1.0/24</cidrBlock><ipv6CidrBlockAssociationSet/><availableIpAddressCount>251</availableIpAddressCount><availabilityZone>us-east-1a</availabilityZone><defaultForAz>false</defaultForAz><mapPublicIpOnLaunch>false</mapPublicIpOnLaunch><tagSet><item><key>fleetgraph:cluster</key><value>cls_1</value></item></tagSet></subnet></CreateSubnetResponse>`;

const instance = (n: number) =>
  `<item><instanceId>i-0598c7d356eba48d${n}</instanceId><imageId>ami-0abcdef1234567890</imageId><instanceState><code>16</code><name>running</name></instanceState><privateDnsName>ip-10-0-1-${n}.ec2.internal</privateDnsName><dnsName></dnsName><keyName>my-key</keyName><amiLaunchIndex>0</amiLaunchIndex><instanceType>m5.large</instanceType><launchTime>2026-11-03T12:00:00.000Z</launchTime><placement><availabilityZone>us-east-1a</availabilityZone><tenancy>default</tenancy></placement><monitoring><state>disabled</state></monitoring><subnetId>subnet-1a2b3c4d</subnetId><vpcId>vpc-1a2b3c4d</vpcId><privateIpAddress>10.0.1.${n}</privateIpAddress><groupSet><item><groupId>sg-1a2b3c4d</groupId><groupName>workers</groupName></item></groupSet><architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName><blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><volumeId>vol-1234567890abcdef${n}</volumeId><status>attached</status><attachTime>2026-11-03T12:00:01.000Z</attachTime><deleteOnTermination>true</deleteOnTermination></ebs></item></blockDeviceMapping><virtualizationType>hvm</virtualizationType><tagSet><item><key>fleetgraph:cluster</key><value>cls_1</value></item><item><key>fleetgraph:pool</key><value>workers</value></item><item><key>Name</key><value>cls_1-workers-${n}</value></item></tagSet><hypervisor>xen</hypervisor><networkInterfaceSet/><ebsOptimized>false</ebsOptimized></item>`;
const DESCRIBE_INSTANCES = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>8f7724cf-496f-496e-8fe3-example</requestId><reservationSet><item><reservationId>r-1234567890abcdef0</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>${[1, 2, 3].map(instance).join('')}</instancesSet></item></reservationSet></DescribeInstancesResponse>`;

/** The stand-in: answers by the form body's Action. */
const SERVER = `
const { createServer } = require('node:http');
const answers = ${JSON.stringify({ CreateSubnet: CREATE_SUBNET, DescribeInstances: DESCRIBE_INSTANCES })};
const server = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const action = /(?:^|&)Action=([A-Za-z]+)/.exec(body)?.[1];
    const answer = answers[action];
    res.writeHead(answer ? 200 : 400, { 'content-type': 'text/xml;charset=UTF-8' });
    res.end(answer ?? '<Response><Errors><Error><Code>InvalidAction</Code><Message>unknown</Message></Error></Errors></Response>');
  });
});
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
`;

let server: ChildProcess;
let url: string;

beforeAll(async () => {
  server = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('message', (message) => resolve(Number(message)));
    server.once('exit', (code) => reject(new Error(`the EC2 stand-in exited with ${code}`)));
  });
  url = `http://127.0.0.1:${port}`;
});

afterAll(() => {
  server?.kill();
});

interface Call {
  name: string;
  /** The call's form body, as the SDK sends it (for node:http). */
  form: string;
  sdk(client: EC2Client): Promise<unknown>;
  /** Whether an answer was read whole. */
  check(answer: unknown): boolean;
}

const CALLS_MEASURED: Call[] = [
  {
    name: 'CreateSubnet',
    form: 'Action=CreateSubnet&Version=2016-11-15&VpcId=vpc-1a2b3c4d&CidrBlock=10.0.1.0%2F24&AvailabilityZone=us-east-1a&TagSpecification.1.ResourceType=subnet&TagSpecification.1.Tag.1.Key=fleetgraph%3Acluster&TagSpecification.1.Tag.1.Value=cls_1',
    sdk: (client) =>
      client.send(
        new CreateSubnetCommand({
          VpcId: 'vpc-1a2b3c4d',
          CidrBlock: '10.0.1.0/24',
          AvailabilityZone: 'us-east-1a',
          TagSpecifications: [{ ResourceType: 'subnet', Tags: [{ Key: 'fleetgraph:cluster', Value: 'cls_1' }] }],
        }),
      ),
    check: (answer) =>
      typeof answer === 'string'
        ? answer.includes('subnet-1a2b3c4d')
        : (answer as { Subnet?: { SubnetId?: string } }).Subnet?.SubnetId === 'subnet-1a2b3c4d',
  },
  {
    name: 'DescribeInstances (3 instances)',
    form: 'Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Afleetgraph%3Acluster&Filter.1.Value.1=cls_1&Filter.2.Name=instance-state-name&Filter.2.Value.1=pending&Filter.2.Value.2=running',
    sdk: (client) =>
      client.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'tag:fleetgraph:cluster', Values: ['cls_1'] },
            { Name: 'instance-state-name', Values: ['pending', 'running'] },
          ],
        }),
      ),
    check: (answer) =>
      typeof answer === 'string'
        ? answer.includes('i-0598c7d356eba48d3')
        : (answer as { Reservations?: { Instances?: unknown[] }[] }).Reservations?.[0]?.Instances?.length === 3,
  },
];

/** The SDK client as the AWS adapter makes it (services/clouds/src/aws/ec2.ts). */
function adapterClient(endpoint: string): EC2Client {
  const client = new EC2Client({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
    maxAttempts: 5,
    retryMode: 'adaptive',
    requestHandler: { requestTimeout: 30_000, connectionTimeout: 5_000 },
    cacheMiddleware: true,
  });
  client.middlewareStack.remove('loggerMiddleware');
  return client;
}

const agent = new Agent({ keepAlive: true, maxSockets: 50 });

function post(form: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(form);
  });
}

/** CPU of this process (ms) per call over `count` calls of `one`, `CONCURRENCY` at a time. */
async function cpuPerCall(count: number, one: () => Promise<unknown>, check: (answer: unknown) => boolean) {
  let left = count;
  let bad = 0;
  const start = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) if (!check(await one())) bad++;
    }),
  );
  const used = process.cpuUsage(start);
  expect(bad).toBe(0);
  return (used.user + used.system) / 1000 / count;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

it(
  'prints what one EC2 call costs through the AWS SDK and through node:http',
  async () => {
    const client = adapterClient(url);
    const lines: string[] = [];
    for (const call of CALLS_MEASURED) {
      const figures = { http: [] as number[], sdk: [] as number[] };
      // Warm-up: the JIT, the SDK's cached middleware stack, the sockets.
      await cpuPerCall(500, () => post(call.form), call.check);
      await cpuPerCall(500, () => call.sdk(client), call.check);
      for (let round = 0; round < ROUNDS; round++) {
        figures.http.push(await cpuPerCall(CALLS, () => post(call.form), call.check));
        figures.sdk.push(await cpuPerCall(CALLS, () => call.sdk(client), call.check));
      }
      const http = median(figures.http);
      const sdk = median(figures.sdk);
      lines.push(
        `  ${call.name}: node:http ${http.toFixed(3)} ms, AWS SDK ${sdk.toFixed(3)} ms of CPU per call ` +
          `(${(sdk / http).toFixed(1)}x; the SDK's own ${(sdk - http).toFixed(3)} ms)`,
      );
    }
    client.destroy();
    agent.destroy();
    console.log(
      `EC2 call benchmark: ${CALLS} calls per round, ${CONCURRENCY} at a time, medians of ${ROUNDS} rounds; this process's CPU only (the EC2 stand-in is another process)\n${lines.join('\n')}`,
    );
  },
  10 * 60_000,
);
