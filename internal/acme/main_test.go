package acme

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-acme/lego/v4/providers/dns/exec"
	"github.com/go-acme/lego/v4/providers/dns/rfc2136"
)

// The tests link the two DNS providers they use, not lego's whole
// registry (the renewer binary does that), so this test binary stays small.
var testProviders DNSProviderFunc = func(name string) (DNSProvider, error) {
	switch name {
	case "rfc2136", "dnsupdate":
		p, err := rfc2136.NewDNSProvider()
		if err != nil {
			return nil, err
		}
		return p, nil
	case "exec":
		p, err := exec.NewDNSProvider()
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("provider %q not linked into the acme tests", name)
}

// TestMain doubles as the program lego's exec provider runs: with
// RENEWER_EXEC_HELPER set to challtestsrv's management URL it publishes or
// clears the TXT record it is given, and appends "<id> <action> <fqdn>" to
// $RENEWER_EXEC_LOG.
func TestMain(m *testing.M) {
	if api := os.Getenv("RENEWER_EXEC_HELPER"); api != "" {
		os.Exit(execHelper(api, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func execHelper(api string, args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: present|cleanup FQDN VALUE")
		return 2
	}
	action, fqdn, value := args[0], args[1], args[2]
	if log := os.Getenv("RENEWER_EXEC_LOG"); log != "" {
		f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%s %s %s\n", os.Getenv("RENEWER_EXEC_ID"), action, fqdn)
			f.Close()
		}
	}
	if api == "none" { // a script that claims success and publishes nothing
		return 0
	}
	path := "/set-txt"
	body := map[string]string{"host": fqdn, "value": value}
	if action == "cleanup" {
		path = "/clear-txt"
		delete(body, "value")
	}
	raw, _ := json.Marshal(body)
	resp, err := http.Post(api+path, "application/json", strings.NewReader(string(raw)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

// execScript writes a script for lego's exec provider that runs this test
// binary as the helper above, with its settings baked in (the program runs
// with renewer's environment, not the certificate's env).
func execScript(t *testing.T, api, id, log string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "dns-"+id+".sh")
	if api == "none" { // claims success, publishes nothing: plain sh, no process start cost
		src := fmt.Sprintf("#!/bin/sh\necho %q \"$1\" \"$2\" >> %q\n", id, log)
		if err := os.WriteFile(script, []byte(src), 0o700); err != nil {
			t.Fatal(err)
		}
		return script
	}
	src := fmt.Sprintf("#!/bin/sh\nRENEWER_EXEC_HELPER=%q RENEWER_EXEC_ID=%q RENEWER_EXEC_LOG=%q exec %q \"$@\"\n", api, id, log, self)
	if err := os.WriteFile(script, []byte(src), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}
