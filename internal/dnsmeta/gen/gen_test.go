package main

import (
	"os"
	"testing"
)

// The committed table matches the lego version in go.mod: after bumping
// lego, run `go generate ./internal/dnsmeta`.
func TestTableUpToDate(t *testing.T) {
	want, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../zz_providers.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("internal/dnsmeta/zz_providers.go is stale: run go generate ./internal/dnsmeta")
	}
}
