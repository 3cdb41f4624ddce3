/**
 * A machine's cloud-init user data (Cluster API's kubeadm bootstrap provider is the model): what
 * turns a machine of the cluster's image into a Kubernetes node, with no SSH and nothing else.
 *
 * - Every node: containerd, kubelet and kubeadm installed from the Kubernetes project's packages
 *   for the cluster's version, unless the image has them (catalogue images, BYO images with
 *   skipK8sInstall); proxy settings for apt, containerd and the kubelet when the cluster has them.
 * - The first control-plane node: the cluster's CA files written under /etc/kubernetes/pki,
 *   then `kubeadm init` with the generated configuration (which creates the bootstrap token the
 *   others join with); once the API server answers, the agent's manifest is applied and removed.
 * - Further control-plane nodes: the CA files, then `kubeadm join --control-plane`.
 * - Workers: `kubeadm join` through the short-lived bootstrap token and the CA's hash only: no
 *   key, and no other long-lived secret.
 */
import { BOOTSTRAP_PATHS } from '@fleetgraph/schema';
import { stringify } from 'yaml';
import { initConfiguration, joinConfiguration, type KubeadmNode } from './kubeadm.js';
import type { ClusterPki } from './pki.js';

export interface ProxyConfig {
  httpProxy: string | null;
  httpsProxy: string | null;
  noProxy: readonly string[];
}

export type NodeBootstrap =
  | {
      kind: 'init';
      kubeadm: KubeadmNode;
      pki: ClusterPki;
      agentManifest: string;
      kubernetesPreinstalled: boolean;
      proxy: ProxyConfig | null;
    }
  | {
      kind: 'join-control-plane';
      kubeadm: KubeadmNode;
      pki: ClusterPki;
      kubernetesPreinstalled: boolean;
      proxy: ProxyConfig | null;
    }
  | { kind: 'join-worker'; kubeadm: KubeadmNode; kubernetesPreinstalled: boolean; proxy: ProxyConfig | null };

export { BOOTSTRAP_PATHS };

interface WriteFile {
  path: string;
  content: string;
  permissions: string;
  owner: string;
}

const file = (path: string, content: string, permissions = '0644'): WriteFile => ({
  path,
  content,
  permissions,
  owner: 'root:root',
});

function pkiFiles(pki: ClusterPki): WriteFile[] {
  return [
    file('/etc/kubernetes/pki/ca.crt', pki.ca.cert),
    file('/etc/kubernetes/pki/ca.key', pki.ca.key, '0600'),
    file('/etc/kubernetes/pki/etcd/ca.crt', pki.etcdCa.cert),
    file('/etc/kubernetes/pki/etcd/ca.key', pki.etcdCa.key, '0600'),
    file('/etc/kubernetes/pki/front-proxy-ca.crt', pki.frontProxyCa.cert),
    file('/etc/kubernetes/pki/front-proxy-ca.key', pki.frontProxyCa.key, '0600'),
    file('/etc/kubernetes/pki/sa.key', pki.serviceAccount.key, '0600'),
    file('/etc/kubernetes/pki/sa.pub', pki.serviceAccount.pub),
  ];
}

/** The Kubernetes project's package repository of a minor version (pkgs.k8s.io). */
function installKubernetesScript(kubernetesVersion: string): string {
  const version = kubernetesVersion.replace(/^v/, '');
  const minor = version.split('.').slice(0, 2).join('.');
  return `#!/bin/bash
# Installs containerd and Kubernetes ${version} (kubelet, kubeadm, kubectl) on a Debian or Ubuntu image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
swapoff -a
sed -i '/\\sswap\\s/d' /etc/fstab
printf 'overlay\\nbr_netfilter\\n' > /etc/modules-load.d/kubernetes.conf
modprobe overlay
modprobe br_netfilter
printf 'net.bridge.bridge-nf-call-iptables = 1\\nnet.bridge.bridge-nf-call-ip6tables = 1\\nnet.ipv4.ip_forward = 1\\n' \
> /etc/sysctl.d/99-kubernetes.conf
sysctl --system
apt-get update -q
apt-get install -y -q containerd apt-transport-https ca-certificates curl gpg
mkdir -p /etc/containerd
containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' > /etc/containerd/config.toml
systemctl restart containerd
mkdir -p -m 755 /etc/apt/keyrings
curl -fsSL https://pkgs.k8s.io/core:/stable:/v${minor}/deb/Release.key | \
gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v${minor}/deb/ /' \
> /etc/apt/sources.list.d/kubernetes.list
apt-get update -q
apt-get install -y -q "kubelet=${version}-*" "kubeadm=${version}-*" "kubectl=${version}-*"
apt-mark hold kubelet kubeadm kubectl
systemctl enable --now kubelet
`;
}

/**
 * Waits for the API server, applies the agent's manifest (its Secret holds the agent's
 * credentials), then removes it from disk.
 */
const INSTALL_AGENT = `#!/bin/bash
set -euo pipefail
export KUBECONFIG=/etc/kubernetes/admin.conf
for attempt in $(seq 1 120); do
  if kubectl get --raw /readyz >/dev/null 2>&1; then break; fi
  sleep 5
done
kubectl apply -f ${BOOTSTRAP_PATHS.agentManifest}
shred -u ${BOOTSTRAP_PATHS.agentManifest}
`;

function proxyFiles(proxy: ProxyConfig): WriteFile[] {
  const vars: [string, string][] = [];
  if (proxy.httpProxy) vars.push(['HTTP_PROXY', proxy.httpProxy], ['http_proxy', proxy.httpProxy]);
  if (proxy.httpsProxy) vars.push(['HTTPS_PROXY', proxy.httpsProxy], ['https_proxy', proxy.httpsProxy]);
  if (proxy.noProxy.length) vars.push(['NO_PROXY', proxy.noProxy.join(',')], ['no_proxy', proxy.noProxy.join(',')]);
  const dropIn = `[Service]\n${vars.map(([k, v]) => `Environment="${k}=${v}"`).join('\n')}\n`;
  const apt = [
    proxy.httpProxy ? `Acquire::http::Proxy "${proxy.httpProxy}";` : '',
    proxy.httpsProxy ? `Acquire::https::Proxy "${proxy.httpsProxy}";` : '',
  ]
    .filter(Boolean)
    .join('\n');
  return [
    file('/etc/systemd/system/containerd.service.d/http-proxy.conf', dropIn),
    file('/etc/systemd/system/kubelet.service.d/http-proxy.conf', dropIn),
    ...(apt ? [file('/etc/apt/apt.conf.d/95fleetgraph-proxy', `${apt}\n`)] : []),
  ];
}

/** The user data of one machine, as `#cloud-config` YAML. */
export function userData(node: NodeBootstrap): string {
  const files: WriteFile[] = [];
  const commands: string[][] = [];
  if (node.proxy) {
    files.push(...proxyFiles(node.proxy));
    commands.push(['systemctl', 'daemon-reload']);
  }
  if (!node.kubernetesPreinstalled) {
    files.push(
      file(BOOTSTRAP_PATHS.installKubernetes, installKubernetesScript(node.kubeadm.kubernetesVersion), '0700'),
    );
    commands.push(['bash', BOOTSTRAP_PATHS.installKubernetes]);
  }
  if (node.kind === 'init') {
    files.push(...pkiFiles(node.pki));
    files.push(file(BOOTSTRAP_PATHS.kubeadmConfig, initConfiguration(node.kubeadm), '0600'));
    files.push(file(BOOTSTRAP_PATHS.agentManifest, node.agentManifest, '0600'));
    files.push(file(BOOTSTRAP_PATHS.installAgent, INSTALL_AGENT, '0700'));
    commands.push(['kubeadm', 'init', '--config', BOOTSTRAP_PATHS.kubeadmConfig]);
    commands.push(['bash', BOOTSTRAP_PATHS.installAgent]);
  } else {
    if (node.kind === 'join-control-plane') files.push(...pkiFiles(node.pki));
    files.push(
      file(BOOTSTRAP_PATHS.kubeadmConfig, joinConfiguration(node.kubeadm, node.kind === 'join-control-plane'), '0600'),
    );
    commands.push(['kubeadm', 'join', '--config', BOOTSTRAP_PATHS.kubeadmConfig]);
  }
  // The kubeadm configuration holds the bootstrap token: gone once used.
  commands.push(['rm', '-f', BOOTSTRAP_PATHS.kubeadmConfig]);
  return `#cloud-config\n${stringify({ write_files: files, runcmd: commands }, { lineWidth: 0 })}`;
}
