// argocd-lua-health runs an Argo CD resource health check (health.lua) in gopher-lua, the Lua VM
// Argo CD embeds, set up the way Argo CD sets it up for a health customization:
//
//   - without -open-libs (what a `resource.customizations.health.<group>_<kind>` entry in argocd-cm
//     gets unless `resource.customizations.useOpenLibs.<group>_<kind>` is "true"): only the package,
//     base and table libraries; no string, math or io library;
//   - with -open-libs (how Argo CD runs its own built-in checks and their health_test.yaml tests):
//     every standard library.
//
// In both, os is replaced by a safe table (here only time(); Argo CD also offers date()).
//
// In both, the object is the global `obj` (JSON numbers become Lua numbers, arrays become
// sequences), the script has one second, and a returned table's status must be one of Argo CD's
// health codes; anything else reads as Unknown, "Lua returned an invalid health status".
//
// Input: Kubernetes objects as a stream of JSON values on stdin. Output: one JSON line per object,
// {"status": "...", "message": "..."} or {"error": "..."}.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Argo CD's health status codes (gitops-engine's pkg/health).
var healthCodes = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func main() {
	openLibs := flag.Bool("open-libs", false, "open every standard Lua library (Argo CD's useOpenLibs)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua-health [-open-libs] health.lua < objects.jsonl")
		os.Exit(2)
	}
	script, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
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
		r, err := run(string(script), raw, *openLibs)
		if err != nil {
			r = result{Error: err.Error()}
		}
		if err := out.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func run(script string, objectJSON []byte, openLibs bool) (result, error) {
	dec := json.NewDecoder(bytes.NewReader(objectJSON))
	dec.UseNumber()
	var obj any
	if err := dec.Decode(&obj); err != nil {
		return result{}, fmt.Errorf("object: %w", err)
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	if !openLibs {
		for name, open := range map[string]lua.LGFunction{
			lua.LoadLibName: lua.OpenPackage,
			lua.BaseLibName: lua.OpenBase,
			lua.TabLibName:  lua.OpenTable,
		} {
			l.Push(l.NewFunction(open))
			l.Push(lua.LString(name))
			l.Call(1, 0)
		}
	}
	// Argo CD replaces os with a safe subset in both modes; time() is the part a health check could use.
	osTable := l.NewTable()
	osTable.RawSetString("time", l.NewFunction(func(l *lua.LState) int {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}))
	l.SetGlobal(lua.OsLibName, osTable)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return result{}, err
	}
	ret := l.Get(-1)
	switch t := ret.(type) {
	case *lua.LNilType:
		return result{}, nil
	case *lua.LTable:
		status, okStatus := stringField(t, "status")
		message, okMessage := stringField(t, "message")
		if !okStatus || !okMessage {
			return result{}, fmt.Errorf("status and message must be strings")
		}
		if !healthCodes[status] {
			return result{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
		}
		return result{Status: status, Message: message}, nil
	default:
		return result{}, fmt.Errorf("expect table output from Lua script, not %s", ret.Type().String())
	}
}

// stringField reads a string field of a table; an absent field is "".
func stringField(t *lua.LTable, key string) (string, bool) {
	switch v := t.RawGetString(key).(type) {
	case *lua.LNilType:
		return "", true
	case lua.LString:
		return string(v), true
	default:
		return "", false
	}
}

func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return lua.LNil
		}
		return lua.LNumber(f)
	case []any:
		t := l.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetString(k, toLua(l, item))
		}
		return t
	}
	return lua.LNil
}
