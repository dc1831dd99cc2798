import assert from "node:assert/strict";
import {
  decodeFlatTensor,
  decodeNestedTensor,
  encodeTensorJson,
  formatFloat32,
} from "../../../serving-image/src/protocol/json-tensor.ts";
import { concatRows } from "../../../serving-image/src/protocol/tensor.ts";
import { ServingError } from "../../../serving-image/src/protocol/errors.ts";

describe("JSON tensor codec", () => {
  it("infers the shape of a nested list and stores it row-major", () => {
    const t = decodeNestedTensor([[[1, 2]], [[3, 4]]], "float32", "x");
    assert.deepEqual(t.shape, [2, 1, 2]);
    assert.deepEqual(Array.from(t.data as Float32Array), [1, 2, 3, 4]);
  });

  it("decodes a scalar as a rank-0 tensor", () => {
    const t = decodeNestedTensor(7, "int32", "x");
    assert.deepEqual(t.shape, []);
    assert.deepEqual(Array.from(t.data as Int32Array), [7]);
  });

  const bad: [string, unknown, "float32" | "int32" | "bool" | "string", RegExp][] = [
    ["a ragged inner list", [[1, 2], [3]], "float32", /Ragged list in x: element \[1\] has 1 entries, expected 2/],
    ["a list where a number goes", [1, [2]], "float32", /Ragged list in x: element \[1\] is a list/],
    ["a number where a list goes", [[1], 2], "float32", /element \[1\] is number 2, expected a list of 1/],
    ["a fraction for int32", [1.5], "int32", /expected an integer for int32, got number 1.5/],
    ["an int32 overflow", [2 ** 31], "int32", /outside the int32 range/],
    ["a number for bool", [1], "bool", /expected true or false for bool, got number 1/],
    ["a number for string", [1], "string", /expected a string, got number 1/],
    ["a base64 object for string", [{ b64: "aGk=" }], "string", /base64 values .* are not supported/],
    ["an object for float32", [{ a: 1 }], "float32", /got an object/],
  ];
  for (const [name, value, dtype, message] of bad) {
    it(`rejects ${name} with a 400 naming the element`, () => {
      assert.throws(
        () => decodeNestedTensor(value, dtype, "x"),
        (err: unknown) => err instanceof ServingError && err.httpStatus === 400 && message.test(err.message),
      );
    });
  }

  it("accepts v2 data flat or nested but insists on the element count of the shape", () => {
    assert.deepEqual(
      Array.from(
        decodeFlatTensor(
          [
            [1, 2],
            [3, 4],
          ],
          "float32",
          [4],
          "i",
        ).data as Float32Array,
      ),
      [1, 2, 3, 4],
    );
    assert.throws(
      () => decodeFlatTensor([1, 2, 3], "float32", [2, 2], "i"),
      /has 3 elements, but shape \[2,2\] needs 4/,
    );
    assert.throws(() => decodeFlatTensor([1, 2, 3, 4, 5], "float32", [2, 2], "i"), /has 5 elements, but shape/);
    // The shape is only a claim: a huge one with little data is refused before anything is allocated.
    assert.throws(() => decodeFlatTensor(["a"], "string", [400_000_000], "i"), /has 1 elements, but shape/);
    assert.throws(() => decodeFlatTensor([1], "float32", [1_000_000_000_000], "i"), /has 1 elements, but shape/);
  });

  it("prints float32 values in the shortest text that reads back as the same float32", () => {
    assert.equal(formatFloat32(Math.fround(0.1)), "0.1");
    assert.equal(formatFloat32(3), "3");
    assert.equal(formatFloat32(Math.fround(1e-7)), "1e-7");
    assert.equal(formatFloat32(NaN), "NaN");
    assert.equal(formatFloat32(-Infinity), "-Infinity");
    for (let i = 0; i < 2000; i++) {
      const x = Math.fround((Math.random() - 0.5) * 10 ** ((i % 20) - 10));
      assert.equal(Math.fround(Number(formatFloat32(x))), x);
    }
  });

  it("encodes rows of a tensor as nested JSON, or flat for v2", () => {
    const t = { dtype: "float32" as const, shape: [2, 2], data: new Float32Array([1, 2.5, 3, 4]) };
    assert.equal(encodeTensorJson(t), "[[1,2.5],[3,4]]");
    assert.equal(encodeTensorJson(t, { from: 1, to: 2, dropFirstDim: true }), "[3,4]");
    assert.equal(encodeTensorJson(t, { flat: true }), "[1,2.5,3,4]");
    assert.equal(encodeTensorJson({ dtype: "bool", shape: [2], data: new Uint8Array([1, 0]) }), "[true,false]");
    assert.equal(encodeTensorJson({ dtype: "string", shape: [1], data: ['a"b'] }), '["a\\"b"]');
  });
});

describe("concatRows", () => {
  it("joins string tensors of any size (no spread into push, which overflows the stack)", () => {
    const part = (n: number, tag: string) => ({
      dtype: "string" as const,
      shape: [1, n],
      data: Array.from({ length: n }, (_, i) => `${tag}${i}`),
    });
    const joined = concatRows([part(200_000, "a"), part(200_000, "b")]);
    assert.deepEqual(joined.shape, [2, 200_000]);
    assert.equal(joined.data.length, 400_000);
    assert.equal(joined.data[0], "a0");
    assert.equal(joined.data[399_999], "b199999");
  });
});
