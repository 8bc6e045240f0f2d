// Command mkdeb builds renewer's Debian package: `make deb` runs
// `go run ./internal/debpkg/mkdeb -binary bin/renewer -version V -out bin`.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/renewer/renewer/internal/debpkg"
)

func main() {
	bin := flag.String("binary", "bin/renewer", "the renewer binary to package")
	version := flag.String("version", "devel", "version (git describe); made a Debian version")
	examples := flag.String("examples", "examples", "the repository's examples directory")
	out := flag.String("out", "bin", "output directory")
	flag.Parse()
	p, err := debpkg.Build(debpkg.Options{Binary: *bin, Version: debpkg.DebVersion(*version), Examples: *examples, OutDir: *out, Now: time.Now()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	fmt.Println(p)
}
