package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// lookupEnv is os.LookupEnv; tests replace it.
var lookupEnv = os.LookupEnv

// evalContext returns the functions available in expressions: env and file,
// the latter resolving relative paths against dir. There are no variables.
func evalContext(dir string) *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env":  envFunc,
		"file": fileFunc(dir),
	}}
}

var envFunc = function.New(&function.Spec{
	Description: "Returns the value of an environment variable, which must be set.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		name := args[0].AsString()
		v, ok := lookupEnv(name)
		if !ok {
			return cty.NilVal, fmt.Errorf("environment variable %q is not set", name)
		}
		return cty.StringVal(v), nil
	},
})

func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns a file's contents without one trailing newline; relative paths are relative to the config file.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			b, err := readFile(p)
			if err != nil {
				return cty.NilVal, err
			}
			if !utf8.Valid(b) {
				return cty.NilVal, fmt.Errorf("%s is not valid UTF-8 text", p)
			}
			s := string(b)
			if t, ok := strings.CutSuffix(s, "\r\n"); ok {
				s = t
			} else {
				s = strings.TrimSuffix(s, "\n")
			}
			return cty.StringVal(s), nil
		},
	})
}

// maxFileSize bounds what file() and ca_bundle read, so a path such as
// /dev/zero fails instead of eating memory.
const maxFileSize = 1 << 20

// readFile is os.ReadFile limited to maxFileSize; its errors name the file.
func readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err // *fs.PathError from os.File
	}
	if len(b) > maxFileSize {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("file is larger than 1 MiB")}
	}
	return b, nil
}
