package preflight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/renewer/renewer/internal/config"
)

// CAs reads the CAA identities of the configured CA and its fallbacks from
// their directories (meta.caaIdentities, RFC 8555 §9.7.6).
func CAs(ctx context.Context, acme config.ACME) []CA {
	var out []CA
	for i, ca := range acme.CAs() {
		ids, err := DirectoryCAA(ctx, ca.Directory, ca.CABundle)
		out = append(out, CA{Directory: ca.Directory, Identities: ids, Err: err, Fallback: i > 0})
	}
	return out
}

// DirectoryCAA returns the caaIdentities an ACME directory lists.
func DirectoryCAA(ctx context.Context, directory, caBundle string) ([]string, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if caBundle != "" {
		pemBytes, err := os.ReadFile(caBundle)
		if err != nil {
			return nil, fmt.Errorf("read ca_bundle: %w", err)
		}
		pool.AppendCertsFromPEM(pemBytes)
	}
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, directory, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("acme directory %s: %w", directory, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("acme directory %s: %s", directory, resp.Status)
	}
	var dir struct {
		Meta struct {
			CAAIdentities []string `json:"caaIdentities"`
		} `json:"meta"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		return nil, fmt.Errorf("acme directory %s: %w", directory, err)
	}
	return dir.Meta.CAAIdentities, nil
}
