package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/renewer/renewer/internal/testca"
)

// The scripts in testdata/script run the renewer binary (this test binary,
// re-executed as "renewer", with main's signal handling) the way a user
// types it; other tests find it on $PATH as "renewer" too (built with -race
// under make test). A script whose name
// starts with "ca_" gets a fresh Pebble CA of its own, described by
// $ACME_DIRECTORY, $CA_BUNDLE, $HTTP_LISTEN and $TLS_LISTEN; $DEAD_DIRECTORY
// is a directory URL where nothing listens.
func TestMain(m *testing.M) {
	testscript.Main(removeBuilt{m}, map[string]func(){
		"renewer": func() { os.Exit(run()) },
	})
}

// removeBuilt runs the tests, then removes the binary buildRenewer made.
type removeBuilt struct{ m *testing.M }

func (r removeBuilt) Run() int {
	code := r.m.Run()
	if builtOnce.Load() {
		if bin, err := buildRenewer(); err == nil {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	return code
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("RENEWER_CONFIG", env.WorkDir+"/renewer.hcl")
			if !strings.HasPrefix(filepath.Base(env.WorkDir), "script-ca_") {
				return nil
			}
			ca, err := testca.Start(context.Background(), testca.Options{Dir: env.WorkDir + "/.ca"})
			if err != nil {
				return err
			}
			env.Defer(ca.Stop)
			env.Setenv("ACME_DIRECTORY", ca.Directory)
			env.Setenv("CA_BUNDLE", ca.CABundle)
			env.Setenv("HTTP_LISTEN", "127.0.0.1:"+strconv.Itoa(ca.HTTPPort))
			env.Setenv("TLS_LISTEN", "127.0.0.1:"+strconv.Itoa(ca.TLSPort))
			dead, err := testca.FreePort()
			if err != nil {
				return err
			}
			env.Setenv("DEAD_DIRECTORY", "https://127.0.0.1:"+strconv.Itoa(dead)+"/dir")
			return nil
		},
	})
}
