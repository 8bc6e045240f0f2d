package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/config"
)

// Benchmarks, not tests: `go test -bench . -benchmem ./internal/config`.

// BenchmarkParse decodes and validates a config of n certificates, each
// like the ones `renewer import certbot` writes.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("certs=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			webroot := filepath.Join(dir, "acme")
			if err := os.Mkdir(webroot, 0o755); err != nil {
				b.Fatal(err)
			}
			var src strings.Builder
			src.WriteString("storage { path = \"/var/lib/renewer\" }\nacme {\n  directory    = \"letsencrypt\"\n  email        = \"ops@example.com\"\n  accept_terms = true\n}\n")
			for i := range n {
				fmt.Fprintf(&src, "certificate \"c%05d\" {\n  domains = [\"c%05d.example.com\", \"www.c%05d.example.com\"]\n  challenge \"http\" { webroot = %q }\n}\n", i, i, i, webroot)
			}
			data := []byte(src.String())
			file := filepath.Join(dir, "renewer.hcl")
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				cfg, err := config.Parse(file, data)
				if err != nil {
					b.Fatal(err)
				}
				if len(cfg.Certificates) != n {
					b.Fatalf("%d certificates", len(cfg.Certificates))
				}
			}
		})
	}
}
