import type { ModelDeployment, ModelDeploymentSpec } from "../../../operator/src/api/index.ts";

export function md(
  spec: Partial<ModelDeploymentSpec> = {},
  extra: Partial<ModelDeployment["metadata"]> = {},
): ModelDeployment {
  return {
    apiVersion: "maas.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "sentiment", namespace: "ml", uid: "uid-1", generation: 3, ...extra },
    spec: { model: { uri: "https://models.example.com/sentiment/3/model.json", format: "tfjs-graph" }, ...spec },
  };
}
