/** The Service in front of a ModelDeployment's serving pods, and the endpoint it gives clients. */
import type { V1Service } from "@kubernetes/client-node";
import type { ModelDeployment } from "../api/index.ts";
import { PortNames, Ports } from "../../../serving-image/src/contract.ts";
import { childLabels, ownerReference, selectorLabels, type Desired } from "./labels.ts";

export function desiredService(md: ModelDeployment): Desired<V1Service> {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: md.metadata.name!,
      namespace: md.metadata.namespace!,
      labels: childLabels(md),
      ownerReferences: [ownerReference(md)],
    },
    spec: {
      type: "ClusterIP",
      selector: selectorLabels(md),
      ports: [
        { name: PortNames.http, port: Ports.http, targetPort: PortNames.http, protocol: "TCP" },
        { name: PortNames.metrics, port: Ports.metrics, targetPort: PortNames.metrics, protocol: "TCP" },
      ],
    },
  };
}

/** In-cluster URL clients use, as recorded in status.endpoint. */
export function endpointOf(md: ModelDeployment): string {
  return `http://${md.metadata.name!}.${md.metadata.namespace!}.svc:${Ports.http}`;
}
