import assert from "node:assert/strict";
import { savedModelShape } from "../../../serving-image/src/model/load.ts";

/** Shaped like google-protobuf's TensorShapeProto.Dim, which tfjs-node hands over as a "shape" element. */
class Dim {
  readonly #size: number | string;
  constructor(size: number | string) {
    this.#size = size;
  }
  getSize(): number | string {
    return this.#size;
  }
  toString(): string {
    return String(this.#size);
  }
}

describe("savedModelShape (SavedModel signatures from tfjs-node)", function () {
  it("reads the sizes out of protobuf Dim messages, -1 where unknown", function () {
    const shape = savedModelShape([new Dim(-1), new Dim(32), new Dim(32), new Dim(3)], "conv2d_1_input");
    assert.deepEqual(shape, [-1, 32, 32, 3]);
    assert.ok(shape.every((d) => typeof d === "number"));
  });

  it("takes int64 sizes given as strings, plain numbers, and a missing size as unknown", function () {
    assert.deepEqual(savedModelShape([new Dim("-1"), new Dim("1000")], "logits"), [-1, 1000]);
    assert.deepEqual(savedModelShape([-1, 7, null], "x"), [-1, 7, -1]);
    assert.deepEqual(savedModelShape([], "scalar"), []);
  });

  it("names the tensor and the dimension it cannot read", function () {
    assert.throws(
      () => savedModelShape([new Dim(1), { size: 3 }], "images"),
      /SavedModel signature tensor images has dimension 1 of unknown form/,
    );
    assert.throws(() => savedModelShape([new Dim("x")], "images"), /dimension 0 of unknown form \("x"\)/);
    assert.throws(() => savedModelShape([2.5], "images"), /dimension 0/);
  });
});
