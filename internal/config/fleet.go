package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Defaults of the fleet block.
const (
	DefaultFleetPrefix = "/renewer"
	DefaultLockTTL     = 10 * time.Second
	DefaultDialTimeout = 5 * time.Second
	// DefaultNodeGoneAfter: a node whose reports are older than this is
	// gone (it stopped, or left the fleet); live daemons refresh theirs
	// every quarter of it.
	DefaultNodeGoneAfter = 10 * time.Minute
	MinNodeGoneAfter     = time.Second
)

// Fleet is fleet mode: many nodes serving the same certificates share one
// renewal through etcd (internal/fleet). nil in Config means single-node.
type Fleet struct {
	Node    string        // this node's name in the fleet (default: the host name)
	KeyFile string        // the fleet key: private keys in etcd are sealed with it (path resolved)
	LockTTL time.Duration // lease of a renewal lock: how long a dead node blocks the others
	// NodeGoneAfter: a node that has not reported for this long is gone
	// (named in status and metrics; the fleet converges without it; status.AssessFleet).
	NodeGoneAfter time.Duration
	Etcd          Etcd
	Range         hcl.Range // the fleet block, for errors at run time
}

// Etcd is how a node reaches the etcd cluster.
type Etcd struct {
	Endpoints    []string
	Prefix       string // every key renewer writes starts with it, e.g. "/renewer"
	CAFile       string // client TLS: roots to trust for the servers (path resolved)
	CertFile     string // client TLS certificate and key (both or neither)
	KeyFile      string
	Username     string        // etcd authentication
	PasswordFile string        // the password, read at start (path resolved)
	DialTimeout  time.Duration // connecting, and each request: a node cut off fails fast
}

var nodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (d *decoder) fleet(b *hcl.Block) *Fleet {
	c := d.content(b.Body, []string{"node", "key_file", "lock_ttl", "node_gone_after"}, hcl.BlockHeaderSchema{Type: "etcd"})
	f := &Fleet{LockTTL: DefaultLockTTL, NodeGoneAfter: DefaultNodeGoneAfter, Range: b.DefRange,
		Etcd: Etcd{Prefix: DefaultFleetPrefix, DialTimeout: DefaultDialTimeout}}
	if a := c.Attributes["node"]; d.eval(a, &f.Node) {
		if !nodeRE.MatchString(f.Node) {
			d.attrError(a, "Invalid node name", fmt.Sprintf(
				"%q must start with a letter or digit and hold at most 64 letters, digits, '.', '_' or '-'.", f.Node))
		}
	} else if a == nil {
		host, err := os.Hostname()
		if err != nil || !nodeRE.MatchString(host) {
			d.errorAt(b.DefRange, "Missing node name", "The host name cannot name this node; set node = \"...\" in the fleet block.")
		}
		f.Node = host
	}
	if a := c.Attributes["key_file"]; a != nil {
		f.KeyFile, _, _ = d.path(a)
	} else {
		d.errorAt(b.DefRange, "Missing fleet key", "Fleet mode seals private keys in etcd with a fleet key: set key_file = \"/etc/renewer/fleet.key\" (32 random bytes, base64), the same file on every node.")
	}
	d.duration(c.Attributes["lock_ttl"], &f.LockTTL, false)
	if a := c.Attributes["lock_ttl"]; a != nil && f.LockTTL < 2*time.Second {
		d.attrError(a, "Invalid lock_ttl", "lock_ttl must be at least 2s (etcd leases are granted in whole seconds).")
	}
	d.duration(c.Attributes["node_gone_after"], &f.NodeGoneAfter, false)
	if a := c.Attributes["node_gone_after"]; a != nil && f.NodeGoneAfter < MinNodeGoneAfter {
		d.attrError(a, "Invalid node_gone_after", fmt.Sprintf("node_gone_after must be at least %s (live nodes report every quarter of it).", MinNodeGoneAfter))
	}
	eb := d.single(c.Blocks.OfType("etcd"))
	if eb == nil {
		d.errorAt(b.DefRange, "Missing etcd block", `The fleet block needs an etcd block, e.g. etcd { endpoints = ["https://10.0.0.1:2379"] }.`)
		return f
	}
	e := d.content(eb.Body, []string{"endpoints", "prefix", "ca_file", "cert_file", "key_file", "username", "password_file", "dial_timeout"})
	if a := e.Attributes["endpoints"]; a == nil {
		d.missing(eb, "endpoints")
	} else if d.eval(a, &f.Etcd.Endpoints) {
		if len(f.Etcd.Endpoints) == 0 {
			d.attrError(a, "Empty endpoints", "List at least one etcd endpoint, e.g. \"https://10.0.0.1:2379\".")
		}
		for i, ep := range f.Etcd.Endpoints {
			if strings.TrimSpace(ep) == "" {
				d.errorAt(elementRanges(a.Expr, len(f.Etcd.Endpoints))[i], "Empty endpoint", "An etcd endpoint is host:port or a URL.")
			}
		}
	}
	if a := e.Attributes["prefix"]; d.eval(a, &f.Etcd.Prefix) {
		if !strings.HasPrefix(f.Etcd.Prefix, "/") || len(f.Etcd.Prefix) < 2 || strings.HasSuffix(f.Etcd.Prefix, "/") {
			d.attrError(a, "Invalid prefix", fmt.Sprintf("%q: a prefix starts with '/', does not end with one and is not just \"/\", e.g. \"/renewer\".", f.Etcd.Prefix))
		}
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"ca_file", &f.Etcd.CAFile}, {"cert_file", &f.Etcd.CertFile}, {"key_file", &f.Etcd.KeyFile}, {"password_file", &f.Etcd.PasswordFile}} {
		if a := e.Attributes[p.name]; a != nil {
			*p.dst, _, _ = d.path(a)
		}
	}
	if (f.Etcd.CertFile == "") != (f.Etcd.KeyFile == "") {
		d.errorAt(eb.DefRange, "Incomplete client certificate", "Set both cert_file and key_file for etcd client TLS, or neither.")
	}
	d.eval(e.Attributes["username"], &f.Etcd.Username)
	if (f.Etcd.Username == "") != (f.Etcd.PasswordFile == "") {
		d.errorAt(eb.DefRange, "Incomplete etcd authentication", "Set both username and password_file, or neither.")
	}
	d.duration(e.Attributes["dial_timeout"], &f.Etcd.DialTimeout, false)
	return f
}
