import assert from "node:assert/strict";
import { validateModelDeployment, withDefaults } from "../../../operator/src/api/index.ts";
import { admissionCases, inNamespace, runtimeVerdict } from "./admission-cases.ts";

// The unit half of the admission-equals-run-time check: the runtime validator (the CRD's rules in
// TypeScript) against the parsers of the pod's fetch and serve steps, for every generated case. The
// integration half (test/integration/api/admission-runtime.test.ts) puts the real API server and
// server-side dry-runs of the Deployment and its Pod in the validator's place.
describe("admission equals run time: the runtime validator against the serving image's parsers", () => {
  const cases = admissionCases();

  it("generates a few hundred cases, the same for the same seed and others for another", () => {
    assert.ok(cases.length >= 300 && cases.length <= 1000, `${cases.length} cases`);
    assert.deepEqual(admissionCases(), cases);
    assert.notDeepEqual(admissionCases(10), cases);
  });

  it("lands on both sides of the boundary in every part of the spec it varies", () => {
    const sides = new Map<string, Set<boolean>>();
    for (const c of cases) {
      const part = c.field.split(/[.[]/).slice(0, 3).join(".");
      sides.set(part, (sides.get(part) ?? new Set()).add(validateModelDeployment(c.manifest).ok));
    }
    assert.deepEqual(
      [...sides].filter(([, s]) => s.size < 2).map(([part]) => part),
      [],
    );
  });

  for (const c of cases) {
    it(c.what, () => {
      const md = inNamespace(c, "ml");
      const r = validateModelDeployment(md);
      if (r.ok) {
        const v = runtimeVerdict(r.value);
        assert.equal(v.fetch, undefined, "admitted, but fetch refuses it");
        assert.deepEqual(v.serve, [], "admitted, but serve refuses it");
        return;
      }
      assert.ok(
        r.errors.some((e) => e.field === c.field),
        `refused without naming ${c.field}: ${JSON.stringify(r.errors)}`,
      );
      if (c.owned !== undefined) {
        // The image shares this grammar: it must refuse what the API refuses, too.
        const v = runtimeVerdict(withDefaults(md));
        if (c.owned === "fetch") assert.notEqual(v.fetch, undefined, "refused, but fetch accepts it");
        else assert.notDeepEqual(v.serve, [], "refused, but serve accepts it");
      }
    });
  }
});
