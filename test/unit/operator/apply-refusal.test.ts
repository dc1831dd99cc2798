import assert from "node:assert/strict";
import { ApiError } from "../../../operator/src/controller/errors.ts";
import { applyRefusal } from "../../../operator/src/model-deployment-reconciler.ts";

describe("applyRefusal", function () {
  const api = (code: number, reason: string, message: string) =>
    new ApiError("apply", "/apis/apps/v1/namespaces/ml/deployments/x", code, reason, message);

  it("tells a spec the API server refuses from a forbidden apply and from a failed one, in the server's words", function () {
    assert.deepEqual(applyRefusal("Deployment", api(422, "Invalid", "spec.template.spec.affinity: Invalid value")), {
      kind: "invalid",
      message: "The API server refused the Deployment: spec.template.spec.affinity: Invalid value",
    });
    assert.equal(applyRefusal("Deployment", api(400, "BadRequest", "x")).kind, "invalid");
    assert.deepEqual(applyRefusal("Service", api(403, "Forbidden", "exceeded quota: services=1")), {
      kind: "forbidden",
      message: "The API server refused the Service: exceeded quota: services=1",
    });
    assert.deepEqual(applyRefusal("Deployment", api(500, "InternalError", 'failed calling webhook "hang"')), {
      kind: "failed",
      message:
        'The API server failed to apply the Deployment (500 InternalError): failed calling webhook "hang"; retrying with back-off',
    });
    assert.equal(applyRefusal("Deployment", api(409, "Conflict", "x")).kind, "failed");
  });

  it("reports a request that got no answer (a timeout, a refused connection) as failed, naming the cause", function () {
    const r = applyRefusal("Deployment", new Error("apply /apis/apps/v1/x: The operation was aborted due to timeout"));
    assert.deepEqual(r, {
      kind: "failed",
      message:
        "Applying the Deployment failed: apply /apis/apps/v1/x: The operation was aborted due to timeout; retrying with back-off",
    });
  });
});
