"""Drives maas-serving with Triton's own Python HTTP client (tritonclient[http]).

Usage: python3 triton_client.py <host:port> <model> <input.json>
input.json: {"name": ..., "shape": [...], "data": [flat floats]}. Prints one JSON object with what the
client saw: liveness, readiness, metadata, and the output of a JSON-mode and a binary-mode inference.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient


def main() -> None:
    url, model, input_path = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(input_path) as f:
        spec = json.load(f)
    data = np.asarray(spec["data"], dtype=np.float32).reshape(spec["shape"])
    client = httpclient.InferenceServerClient(url=url)
    result = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "server_metadata": client.get_server_metadata(),
        "model_metadata": client.get_model_metadata(model),
    }
    meta = result["model_metadata"]
    out_name = meta["outputs"][0]["name"]
    for mode, binary in (("json", False), ("binary", True)):
        inp = httpclient.InferInput(spec["name"], list(data.shape), "FP32")
        inp.set_data_from_numpy(data, binary_data=binary)
        out = httpclient.InferRequestedOutput(out_name, binary_data=binary)
        response = client.infer(model, inputs=[inp], outputs=[out], request_id=f"triton-{mode}")
        array = response.as_numpy(out_name)
        result[mode] = {
            "id": response.get_response()["id"],
            "shape": list(array.shape),
            "dtype": str(array.dtype),
            "data": array.flatten().tolist(),
            "binary_in_response": "binary_data_size" in json.dumps(response.get_response()),
        }
    try:
        client.get_model_metadata("no-such-model")
        result["unknown_model_error"] = None
    except Exception as err:  # tritonclient raises InferenceServerException
        result["unknown_model_error"] = {"status": str(err.status()), "message": err.message()}
    client.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
