"""KServe's Python ModelServer serving a TF SavedModel, as the serving bench's KServe contender.

Usage: python server.py --model_dir <saved-model> --workers 2 --http_port 0 --enable_grpc false
       (any other `kserve` ModelServer flag is accepted too)

Answers the v1 protocol as maas does: POST /v1/models/model:predict with {"instances": [...]} gives
{"predictions": [...]}. Prints {"port": n} on stdout once bound to 127.0.0.1, then {"ready": true,
"pid": p} from each worker once its model is loaded; SIGTERM stops the parent and its workers, and
so does a worker that cannot load the model.

KServe's multi-process server pickles the registered model into each worker process and kills a
worker that does not answer its liveness ping within 5 s. Importing TensorFlow can take longer on a
busy machine, so each worker imports it and loads the SavedModel in a background thread and reports
not ready until then. The parent never imports TensorFlow.
"""

import argparse
import copy
import json
import os
import signal
import sys
import threading

import kserve
import kserve.logging
import kserve.model_server
from kserve.protocol.rest.multiprocess.server import RESTServerMultiProcess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = "-1"


def quiet_log_config() -> dict:
    """KServe's log configuration without its per-request lines and with only warnings otherwise.

    uvicorn writes an access log line only while its access logger has handlers, and KServe's timing
    middleware logs each request on kserve.trace at INFO. maas logs nothing per request.
    """
    config = copy.deepcopy(kserve.logging.KSERVE_LOG_CONFIG)
    loggers = config["loggers"]
    loggers["uvicorn.access"]["handlers"] = []
    for name in ("kserve", "kserve.trace", "uvicorn", "uvicorn.error"):
        loggers[name]["level"] = "WARNING"
    return config


# This module runs again in every worker (multiprocessing's spawn imports the main module first), so
# each worker has this configuration before KServe's own configure_logging(None), which then keeps it.
kserve.logging.configure_logging(quiet_log_config())


def report(line: dict) -> None:
    print(json.dumps(line), flush=True)


class SavedModelPredictor(kserve.Model):
    """Predicts with a SavedModel's serving_default signature (one input, one output)."""

    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self._serve = None
        # The parent only registers the model (ModelServer refuses a model that is not ready); each
        # worker loads its own copy, see __setstate__.
        self.ready = True

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_serve"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.ready = False
        threading.Thread(target=self._load, name="load-saved-model", daemon=True).start()

    def _load(self) -> None:
        try:
            import tensorflow as tf

            # One thread per worker process, so N workers use N cores (as maas's N worker threads do).
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            serve = tf.saved_model.load(self.model_dir).signatures["serving_default"]
            spec = next(iter(serve.structured_input_signature[1].values()))
            self._input_dtype = spec.dtype.as_numpy_dtype
            self._tf = tf
            shape = [1 if d is None else d for d in spec.shape]
            serve(tf.zeros(shape, spec.dtype))  # the first call traces; not in the first request
            self._serve = serve
            self.ready = True
            report({"ready": True, "pid": os.getpid()})
        except BaseException as e:
            # KServe would go on serving "not ready" (and restart a worker that exits): stop it all.
            print(f"loading {self.model_dir} failed: {e!r}", file=sys.stderr, flush=True)
            os.kill(os.getppid(), signal.SIGTERM)
            raise

    def predict(self, payload: dict, headers=None) -> dict:
        import numpy as np

        x = self._tf.constant(np.asarray(payload["instances"], dtype=self._input_dtype))
        (y,) = self._serve(x).values()
        return {"predictions": y.numpy().tolist()}


class LoopbackRESTServer(RESTServerMultiProcess):
    """KServe's multi-process REST server bound to 127.0.0.1 (KServe binds every interface), reporting
    the port it was given (--http_port 0 lets the OS choose)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rest_server.config.host = "127.0.0.1"

    def init_processes(self, sockets) -> None:
        report({"port": sockets[0].getsockname()[1]})
        super().init_processes(sockets)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True, help="the SavedModel directory")
    args, _ = parser.parse_known_args()
    if args.workers < 2:
        sys.exit("server.py needs --workers 2 or more: only KServe's multi-process server loads in workers")
    kserve.model_server.RESTServerMultiProcess = LoopbackRESTServer
    kserve.ModelServer().start([SavedModelPredictor(args.model_name, args.model_dir)])
