package certinfo_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
)

// Benchmarks, not tests: `go test -bench . -benchmem ./internal/certinfo`.

// BenchmarkLoad is what inspecting one installed certificate costs: read
// fullchain.pem and privkey.pem, parse both, check the key matches.
func BenchmarkLoad(b *testing.B) {
	for _, kt := range []string{"ec256", "rsa2048"} {
		b.Run(kt, func(b *testing.B) {
			chain, key := certtest.Issue(b, certtest.Options{Names: []string{"example.com", "www.example.com"}, KeyType: kt})
			dir := b.TempDir()
			cf, kf := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
			if err := os.WriteFile(cf, chain, 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(kf, key, 0o600); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				f, err := certinfo.Load(cf, kf)
				if err != nil || !f.KeyMatches {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheck is the validation before an install (key, names, chain, dates).
func BenchmarkCheck(b *testing.B) {
	chain, key := certtest.Issue(b, certtest.Options{Names: []string{"example.com"}})
	f, err := certinfo.Parse(chain, key)
	if err != nil {
		b.Fatal(err)
	}
	now := f.NotBefore.Add(1)
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Check([]string{"example.com"}, now); err != nil {
			b.Fatal(err)
		}
	}
}
