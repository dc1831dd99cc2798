import assert from "node:assert/strict";
import {
  ApiError,
  PermanentError,
  TemporaryError,
  classifyError,
  type ErrorDisposition,
} from "../../../operator/src/controller/errors.ts";

const api = (code: number, reason: string): ApiError => new ApiError("patch", "/apis/apps/v1/x", code, reason, "m");

describe("classifyError", () => {
  const cases: [string, unknown, ErrorDisposition][] = [
    [
      "a TemporaryError without delay retries with back-off",
      new TemporaryError("x"),
      { action: "retry", quiet: false },
    ],
    [
      "a TemporaryError with a delay retries after that delay",
      new TemporaryError("x", 30_000),
      { action: "retry", quiet: false, delayMs: 30_000 },
    ],
    [
      "a TemporaryError with a cap retries with back-off up to that cap",
      new TemporaryError("x", undefined, { maxDelayMs: 30_000 }),
      { action: "retry", quiet: false, maxDelayMs: 30_000 },
    ],
    [
      "a PermanentError is terminal with its reason",
      new PermanentError("ChildNotOwned", "x"),
      { action: "terminal", reason: "ChildNotOwned" },
    ],
    ["a 409 Conflict retries quietly", api(409, "Conflict"), { action: "retry", quiet: true }],
    [
      "a 409 AlreadyExists retries with back-off, not quietly",
      api(409, "AlreadyExists"),
      { action: "retry", quiet: false },
    ],
    ["a 422 Invalid is terminal", api(422, "Invalid"), { action: "terminal", reason: "Invalid" }],
    ["a 400 BadRequest is terminal", api(400, "BadRequest"), { action: "terminal", reason: "BadRequest" }],
    ["a 400 without a Status reason is terminal as Invalid", api(400, ""), { action: "terminal", reason: "Invalid" }],
    ["a 403 Forbidden retries (RBAC may be fixed)", api(403, "Forbidden"), { action: "retry", quiet: false }],
    ["a 404 NotFound retries", api(404, "NotFound"), { action: "retry", quiet: false }],
    ["a 429 TooManyRequests retries", api(429, "TooManyRequests"), { action: "retry", quiet: false }],
    ["a 500 retries", api(500, "InternalError"), { action: "retry", quiet: false }],
    ["a network error retries", new TypeError("fetch failed"), { action: "retry", quiet: false }],
    ["a thrown string retries", "boom", { action: "retry", quiet: false }],
  ];
  for (const [name, err, expected] of cases) {
    it(name, () => {
      assert.deepEqual(classifyError(err), expected);
    });
  }
});
