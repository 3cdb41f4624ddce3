import { kubernetesMinorOf } from './catalogue.js';
import type { ImageDefinition } from './signature.js';

/** Quotes a string for a POSIX shell. */
const sh = (text: string) => `'${text.replace(/'/g, `'"'"'`)}'`;

/**
 * The cloud-init user data of a builder machine: installs Kubernetes (unless the base has it),
 * runs the Ansible roles in order with the OS pack's values as variables, cleans the machine
 * for capture and powers it off. On AWS and Azure the images service waits for the machine to
 * stop and then captures it; the local cloud runs no scripts, so there the service simulates
 * this run (see {@link simulatedBuildLog}).
 */
export function builderUserData(
  definition: ImageDefinition,
  options: { installKubernetes: boolean; signature: string },
): string {
  const k8s = definition.kubernetes.version.replace(/^v/, '');
  const minor = kubernetesMinorOf(k8s) ?? k8s;
  const lines = [
    '#!/bin/bash',
    `# Fleetgraph image build ${options.signature}: ${definition.os.name} ${definition.os.version}, Kubernetes ${k8s}`,
    'set -euo pipefail',
    'exec > >(tee -a /var/log/fleetgraph-image-build.log) 2>&1',
    'export DEBIAN_FRONTEND=noninteractive',
    'apt-get update -q',
    'apt-get install -y -q ansible-core curl gpg',
  ];
  if (options.installKubernetes) {
    lines.push(
      'mkdir -p /etc/apt/keyrings',
      `curl -fsSL https://pkgs.k8s.io/core:/stable:/v${minor}/deb/Release.key | ` +
        'gpg --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg',
      "echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] " +
        `https://pkgs.k8s.io/core:/stable:/v${minor}/deb/ /' > /etc/apt/sources.list.d/kubernetes.list`,
      'apt-get update -q',
      `apt-get install -y -q containerd kubelet=${k8s}-* kubeadm=${k8s}-* kubectl=${k8s}-*`,
      'apt-mark hold kubelet kubeadm kubectl',
      'systemctl enable containerd kubelet',
    );
  }
  lines.push('mkdir -p /etc/fleetgraph');
  lines.push(
    `cat > /etc/fleetgraph/values.yaml <<'FLEETGRAPH_VALUES'\n${definition.os.values ?? '{}'}\nFLEETGRAPH_VALUES`,
  );
  if (definition.os.ansibleRoles.length > 0) {
    lines.push(`ansible-galaxy role install ${definition.os.ansibleRoles.map(sh).join(' ')}`);
    const play = [
      '- hosts: localhost',
      '  connection: local',
      '  become: true',
      '  roles:',
      ...definition.os.ansibleRoles.map((r) => `    - ${JSON.stringify(r)}`),
    ].join('\n');
    lines.push(`cat > /etc/fleetgraph/image.yml <<'FLEETGRAPH_PLAY'\n${play}\nFLEETGRAPH_PLAY`);
    lines.push('ansible-playbook /etc/fleetgraph/image.yml -e @/etc/fleetgraph/values.yaml');
  }
  lines.push('cloud-init clean --logs', 'truncate -s 0 /etc/machine-id', 'shutdown -h now');
  return `${lines.join('\n')}\n`;
}

/**
 * The log of a build, line by line, as the local cloud's simulated builder writes it: what the
 * real run of {@link builderUserData} prints, shortened to Ansible's task lines.
 */
export function simulatedBuildLog(definition: ImageDefinition, options: { installKubernetes: boolean }): string[] {
  const k8s = definition.kubernetes.version.replace(/^v/, '');
  const lines = [
    `PLAY [fleetgraph image ${definition.os.name} ${definition.os.version}] ***`,
    'TASK [Gathering Facts] ok: [builder]',
  ];
  if (options.installKubernetes) {
    lines.push(
      'TASK [kubernetes : add the pkgs.k8s.io apt repository] changed: [builder]',
      `TASK [kubernetes : install containerd, kubelet, kubeadm, kubectl ${k8s}] changed: [builder]`,
      'TASK [kubernetes : hold kubelet, kubeadm, kubectl] changed: [builder]',
    );
  }
  for (const role of definition.os.ansibleRoles) lines.push(`TASK [${role} : main] changed: [builder]`);
  const changed = lines.length - 2;
  lines.push('TASK [cleanup : cloud-init clean, machine-id reset] changed: [builder]');
  lines.push(`PLAY RECAP builder: ok=${changed + 2} changed=${changed + 1} unreachable=0 failed=0`);
  return lines;
}
