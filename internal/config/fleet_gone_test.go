package config

import (
	"strings"
	"testing"
	"time"
)

// node_gone_after: the default, a value, and the values refused.
func TestFleetNodeGoneAfter(t *testing.T) {
	block := func(attr string) string {
		return "acme { directory = \"letsencrypt\" }\nfleet {\n  node = \"edge-1\"\n  key_file = \"/k\"\n" + attr +
			"\n  etcd { endpoints = [\"http://127.0.0.1:2379\"] }\n}\n"
	}
	for _, tc := range []struct {
		attr    string
		want    time.Duration
		wantErr string
	}{
		{"", DefaultNodeGoneAfter, ""},
		{`node_gone_after = "90s"`, 90 * time.Second, ""},
		{`node_gone_after = "1d"`, 24 * time.Hour, ""},
		{`node_gone_after = "500ms"`, 0, "node_gone_after must be at least 1s"},
		{`node_gone_after = "0s"`, 0, "not a duration greater than zero"},
		{`node_gone_after = "soon"`, 0, "Invalid node_gone_after"},
	} {
		cfg, err := Parse("/etc/renewer/renewer.hcl", []byte(block(tc.attr)))
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.attr, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.attr, err)
		case cfg.Fleet.NodeGoneAfter != tc.want:
			t.Errorf("%q: node_gone_after %s, want %s", tc.attr, cfg.Fleet.NodeGoneAfter, tc.want)
		}
	}
}
