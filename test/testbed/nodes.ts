/**
 * The test bed's nodes: kwok-managed fake nodes (one CPU node, two GPU nodes of different products,
 * tainted like real GPU pools) and the name of the local node whose kubelet is the node agent.
 */
import type { V1Node } from "@kubernetes/client-node";

export const localNodeName = "maas-local-node";
/** Pods opt in to the local node (real processes) with this toleration and a hostname nodeSelector. */
export const localNodeTaint = { key: "maas.dev/testbed-local-node", value: "true", effect: "NoSchedule" } as const;

export const gpuProducts = { h100: "NVIDIA-H100-80GB-HBM3", a10: "NVIDIA-A10G", local: "Testbed-Local-GPU" } as const;
/**
 * The local node advertises two GPUs it does not have, so GPU-bound serving pods run there as real
 * processes (on the cpu/wasm backends): the scheduler's GPU accounting is real, and a third replica
 * stays Pending with "Insufficient nvidia.com/gpu" while the first two serve and export metrics.
 */
export const localNodeGpus = { count: 2, product: gpuProducts.local } as const;
export const gpuTaint = { key: "nvidia.com/gpu", value: "present", effect: "NoSchedule" } as const;

export function fakeNode(
  name: string,
  cpu: string,
  memory: string,
  pods: string,
  gpus?: { count: number; product: string },
): V1Node {
  const capacity: Record<string, string> = { cpu, memory, pods, "ephemeral-storage": "1Ti" };
  const labels: Record<string, string> = {
    "kubernetes.io/hostname": name,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    type: "kwok",
  };
  if (gpus) {
    capacity["nvidia.com/gpu"] = String(gpus.count);
    labels["nvidia.com/gpu.product"] = gpus.product;
    labels["nvidia.com/gpu.count"] = String(gpus.count);
  }
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels, annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" } },
    spec: gpus ? { taints: [{ ...gpuTaint }] } : {},
    status: { capacity, allocatable: capacity },
  };
}

/** Pod capacity is large so benchmarks can run a thousand pods on the fake nodes. */
export function fakeNodes(): V1Node[] {
  return [
    // CPU and memory sized so a thousand pods at the operator's default requests fit.
    fakeNode("kwok-cpu-0", "1200", "4Ti", "1100"),
    fakeNode("kwok-gpu-h100-0", "96", "1Ti", "250", { count: 4, product: gpuProducts.h100 }),
    fakeNode("kwok-gpu-a10-0", "48", "192Gi", "250", { count: 2, product: gpuProducts.a10 }),
  ];
}
