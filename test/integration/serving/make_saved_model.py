"""Writes a small SavedModel for the tfjs-node tests: probabilities = softmax(features @ W + b).

features is [-1, 4] float32; W and b are the constants below (test/integration/serving/tfjs-node.test.ts
computes the expected answers from the same numbers). Usage: make_saved_model.py <output directory>.
"""

import sys

import tensorflow as tf

W = [[0.5, -1.0, 0.25], [1.5, 0.0, -0.5], [-2.0, 1.0, 0.75], [0.1, 0.2, 0.3]]
B = [0.1, -0.2, 0.05]


class Model(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(W, dtype=tf.float32)
        self.b = tf.Variable(B, dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def serve(self, features):
        return {"probabilities": tf.nn.softmax(tf.matmul(features, self.w) + self.b)}


model = Model()
tf.saved_model.save(model, sys.argv[1], signatures={"serving_default": model.serve})
