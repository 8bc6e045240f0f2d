//go:build lean

package main

import (
	"fmt"

	"github.com/go-acme/lego/v4/providers/dns/acmedns"
	"github.com/go-acme/lego/v4/providers/dns/exec"
	"github.com/go-acme/lego/v4/providers/dns/httpreq"
	"github.com/go-acme/lego/v4/providers/dns/rfc2136"

	"github.com/renewer/renewer/internal/acme"
)

// A lean build (`make build-lean`, go build -tags lean) is for a single
// server: no fleet mode (cmd/renewer/fleet.go is left out, and etcd's client
// with it), and only the DNS providers that need no vendor SDK: RFC 2136 for
// your own nameservers, an acme-dns delegation, and exec and httpreq,
// through which a script or a small HTTP service reaches any DNS API. The
// 200 SDKs of the full build and etcd's client cost about 30 MB of resident
// memory in every renewer process, because their package initialisers
// touch pages all over a 67 MB binary (see internal/docs/performance.md, "Memory").
func init() {
	acme.SetDNSProviders(func(name string) (acme.DNSProvider, error) {
		switch name {
		case "rfc2136", "dnsupdate":
			return rfc2136.NewDNSProvider()
		case "acme-dns", "acmedns":
			return acmedns.NewDNSProvider()
		case "exec":
			return exec.NewDNSProvider()
		case "httpreq":
			return httpreq.NewDNSProvider()
		}
		return nil, fmt.Errorf("DNS provider %q is not in this lean build of renewer (it has rfc2136, acme-dns, exec and httpreq); use the full build (make build)", name)
	})
}
