package config_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/config"
)

// Benchmarks, not tests: `go test -run '^$' -bench . -benchmem ./internal/config`.

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

// BenchmarkLoadPeak loads 10,000 certificates written as one file and as
// conf.d files (one per certificate, and 100 of 100 each), and reports the
// peak heap of each load in MB (peak-heap-MB): the most heap in use, sampled
// every 100µs with the default GOGC, less the heap before the load, and the
// heap the loaded config itself holds (config-MB, after a GC). Each
// conf.d file's syntax tree is let go before the next is parsed, so their
// peak is a fraction of the one file's. `make bench` runs it once.
func BenchmarkLoadPeak(b *testing.B) {
	const n = 10000
	for _, tc := range []struct {
		name    string
		perFile int // certificates per conf.d file; 0: all in the main file
	}{
		{"one-file", 0},
		{"confd-100-files", n / 100},
		{"confd-10000-files", 1},
	} {
		b.Run(fmt.Sprintf("certs=%d/%s", n, tc.name), func(b *testing.B) {
			file := writeCerts(b, n, tc.perFile)
			var peak, kept float64
			for b.Loop() {
				var cfg *config.Config
				p, k := peakHeap(func() {
					var err error
					if cfg, err = config.Load(file); err != nil {
						b.Fatal(err)
					}
				})
				if len(cfg.Certificates) != n {
					b.Fatalf("%d certificates", len(cfg.Certificates))
				}
				runtime.KeepAlive(cfg)
				peak, kept = max(peak, p), max(kept, k)
			}
			b.ReportMetric(peak, "peak-heap-MB")
			b.ReportMetric(kept, "config-MB")
		})
	}
}

// writeCerts writes a main config file and n certificates like the ones
// `renewer import certbot` writes: all in the main file when perFile is 0,
// else perFile of them in each conf.d file. It returns the main file's path.
func writeCerts(b *testing.B, n, perFile int) string {
	b.Helper()
	dir := b.TempDir()
	webroot := filepath.Join(dir, "acme")
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(webroot, 0o755); err != nil {
		b.Fatal(err)
	}
	cert := func(w io.Writer, i int) {
		fmt.Fprintf(w, "certificate \"c%05d\" {\n  domains = [\"c%05d.example.com\", \"www.c%05d.example.com\"]\n  challenge \"http\" { webroot = %q }\n}\n", i, i, i, webroot)
	}
	var main bytes.Buffer
	main.WriteString("storage { path = \"/var/lib/renewer\" }\nacme {\n  directory    = \"letsencrypt\"\n  email        = \"ops@example.com\"\n  accept_terms = true\n}\n")
	for i := 0; i < n; {
		if perFile == 0 {
			cert(&main, i)
			i++
			continue
		}
		var f bytes.Buffer
		for range perFile {
			cert(&f, i)
			i++
		}
		if err := os.WriteFile(filepath.Join(dir, "conf.d", fmt.Sprintf("site%05d.hcl", i)), f.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, main.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return file
}

// peakHeap runs f and returns the most heap in use while it ran and the
// heap in use after it and a GC, in MB, less the heap in use before it
// (after a GC).
func peakHeap(f func()) (peak, kept float64) {
	const name = "/memory/classes/heap/objects:bytes" // live and not yet swept objects
	read := func() uint64 {
		s := []metrics.Sample{{Name: name}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		var peak uint64
		for {
			select {
			case <-stop:
				done <- max(peak, read())
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	}()
	f()
	close(stop)
	mb := func(n uint64) float64 { return float64(max(n, base)-base) / 1e6 }
	peak = mb(<-done)
	runtime.GC()
	return peak, mb(read())
}
