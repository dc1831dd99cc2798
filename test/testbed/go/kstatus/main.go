// kstatus computes the status of Kubernetes objects with sigs.k8s.io/cli-utils' kstatus library, the
// library Flux's kustomize-controller (and kpt, and `kubectl apply --prune`'s successors) use for
// health checks. For a custom resource, kstatus' polling engine reads the object from the API server
// and hands it to status.Compute (its generic status reader); this program does the same with an
// object the caller just read from the API server.
//
// Input: Kubernetes objects as a stream of JSON values on stdin (`kubectl get -o json` of each). Output: one JSON line per object,
// {"status": "Current|InProgress|Failed|Terminating|Unknown|NotFound", "message": "..."} or {"error": "..."}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func main() {
	in := json.NewDecoder(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for {
		var raw json.RawMessage
		if err := in.Decode(&raw); err == io.EOF {
			return
		} else if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var r result
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			r.Error = err.Error()
		} else if res, err := status.Compute(u); err != nil {
			r.Error = err.Error()
		} else {
			r = result{Status: res.Status.String(), Message: res.Message}
		}
		if err := out.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
