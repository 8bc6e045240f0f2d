package config

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Defaults of the install and verify blocks.
const (
	DefaultCertMode      os.FileMode = 0o644
	DefaultKeyMode       os.FileMode = 0o600
	DefaultVerifyTimeout             = 30 * time.Second
)

// Install says where the live certificate is copied after each renewal, and
// with which ownership and modes. At least one of Dir and HAProxyBundle is set.
//
// One install block per certificate: it covers the usual targets (a
// directory of four files for nginx/Apache/Postfix and one bundle file for
// HAProxy) with one owner, group and pair of modes. Anything more exotic is a
// hook's job, which sees the paths of the new files in RENEWER_*.
type Install struct {
	Dir           string      // cert.pem chain.pem fullchain.pem privkey.pem are written here
	HAProxyBundle string      // a file with the certificate, its chain and the key, as HAProxy's crt wants
	Owner, Group  string      // as written in the config ("" = leave as created: renewer's user)
	UID, GID      int         // resolved Owner and Group; -1 when not set
	CertMode      os.FileMode // cert.pem, chain.pem, fullchain.pem (default 0644)
	KeyMode       os.FileMode // privkey.pem and the HAProxy bundle (default 0600)
}

// Verify is one endpoint at which the installed certificate must be served
// once the hooks have run.
type Verify struct {
	Endpoint   string        // host:port to connect to with TLS
	ServerName string        // SNI name sent; "" sends none (an IP address domain)
	Timeout    time.Duration // keep retrying until this much time has passed
	DeclRange  hcl.Range
}

func (d *decoder) install(b *hcl.Block) *Install {
	c := d.content(b.Body, []string{"dir", "haproxy_bundle", "owner", "group", "cert_mode", "key_mode"})
	in := &Install{UID: -1, GID: -1, CertMode: DefaultCertMode, KeyMode: DefaultKeyMode}
	dir, bundle := c.Attributes["dir"], c.Attributes["haproxy_bundle"]
	if dir == nil && bundle == nil {
		d.errorAt(b.DefRange, "Missing install target",
			`An install block needs dir, haproxy_bundle, or both.`)
	}
	in.Dir, _, _ = d.path(dir)
	in.HAProxyBundle, _, _ = d.path(bundle)
	if a := c.Attributes["owner"]; d.eval(a, &in.Owner) {
		in.UID = d.lookupID(a, in.Owner, "user", func(n string) (string, error) {
			u, err := user.Lookup(n)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
	}
	if a := c.Attributes["group"]; d.eval(a, &in.Group) {
		in.GID = d.lookupID(a, in.Group, "group", func(n string) (string, error) {
			g, err := user.LookupGroup(n)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
	}
	in.CertMode = d.mode(c.Attributes["cert_mode"], in.CertMode, false)
	in.KeyMode = d.mode(c.Attributes["key_mode"], in.KeyMode, true)
	return in
}

// lookupID resolves a user or group name (or a number) to its numeric ID.
func (d *decoder) lookupID(a *hcl.Attribute, name, kind string, lookup func(string) (string, error)) int {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n
	}
	id, err := lookup(name)
	if err == nil {
		if n, err := strconv.Atoi(id); err == nil {
			return n
		}
	}
	d.attrError(a, "Unknown "+kind, fmt.Sprintf("There is no %s %q on this machine.", kind, name))
	return -1
}

// mode parses an octal permission string such as "0640". A key mode must
// not give other users any access.
func (d *decoder) mode(a *hcl.Attribute, def os.FileMode, key bool) os.FileMode {
	var s string
	if !d.eval(a, &s) {
		return def
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 || !strings.HasPrefix(s, "0") {
		d.attrError(a, "Invalid file mode", fmt.Sprintf(
			`%q is not an octal permission string from "0000" to "0777", such as "0640".`, s))
		return def
	}
	m := os.FileMode(n)
	if key && m&0o007 != 0 {
		d.attrError(a, "Unsafe key mode", fmt.Sprintf(
			"%s would let every user on the machine read or change the private key; use 0600 or 0640 with a group.", s))
		return def
	}
	if m&0o400 == 0 {
		d.attrError(a, "Invalid file mode", fmt.Sprintf("%s does not let the owner read the file.", s))
		return def
	}
	return m
}

func (d *decoder) verifyBlocks(blocks hcl.Blocks, domains []string) []Verify {
	var out []Verify
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		c := d.content(b.Body, []string{"endpoint", "server_name", "timeout"})
		v := Verify{Timeout: DefaultVerifyTimeout, DeclRange: b.DefRange}
		endpoint := c.Attributes["endpoint"]
		if endpoint == nil {
			d.missing(b, "endpoint")
		}
		if d.eval(endpoint, &v.Endpoint) {
			host, port, err := net.SplitHostPort(v.Endpoint)
			if n, perr := strconv.Atoi(port); err != nil || perr != nil || host == "" || n < 1 || n > 65535 {
				d.attrError(endpoint, "Invalid endpoint",
					fmt.Sprintf(`%q is not host:port with a port from 1 to 65535, e.g. "127.0.0.1:443".`, v.Endpoint))
			}
		}
		if a := c.Attributes["server_name"]; a != nil {
			if d.eval(a, &v.ServerName) {
				if err := checkDomain(strings.ToLower(v.ServerName)); err != nil || strings.HasPrefix(v.ServerName, "*") {
					d.attrError(a, "Invalid server_name", fmt.Sprintf("%q is not a host name to send as SNI.", v.ServerName))
				}
			}
		} else {
			v.ServerName = defaultServerName(domains)
			if v.ServerName == "" && len(domains) > 0 && net.ParseIP(domains[0]) == nil {
				d.errorAt(b.DefRange, "Missing server_name",
					"Every domain is a wildcard, so set server_name to a name the endpoint serves this certificate for.")
			}
		}
		if a := c.Attributes["timeout"]; a != nil {
			var s string
			if d.eval(a, &s) {
				t, err := ParseDuration(s)
				switch {
				case err != nil:
					d.attrError(a, "Invalid timeout", err.Error()+".")
				case t <= 0:
					d.attrError(a, "Invalid timeout", fmt.Sprintf("%q is not a duration greater than zero.", s))
				default:
					v.Timeout = t
				}
			}
		}
		key := v.Endpoint + " " + v.ServerName
		if first, dup := seen[key]; dup && v.Endpoint != "" {
			d.errorAt(b.DefRange, "Duplicate verify block", fmt.Sprintf(
				"%s with server_name %q is already verified at line %d.", v.Endpoint, v.ServerName, first.Start.Line))
		} else {
			seen[key] = b.DefRange
		}
		out = append(out, v)
	}
	return out
}

// defaultServerName is the first domain that can be sent as SNI: not a
// wildcard and not an IP address. "" when there is none.
func defaultServerName(domains []string) string {
	for _, n := range domains {
		if !strings.HasPrefix(n, "*.") && net.ParseIP(n) == nil {
			return n
		}
	}
	return ""
}
