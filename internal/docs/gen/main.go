// Command gen writes internal/docs/dns-providers.md from internal/dnsmeta
// (run by go generate in internal/docs).
package main

import (
	"log"
	"os"

	"github.com/renewer/renewer/internal/docs"
)

func main() {
	if err := os.WriteFile(docs.ProvidersFile, []byte(docs.ProvidersPage()), 0o644); err != nil {
		log.Fatal(err)
	}
}
