package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Pending TLS-ALPN-01 challenges, shared like HTTP-01 tokens so that
// whichever node the CA reaches answers:
//
//	P/tls-alpn/<name>  sealed JSON {identifier, key_authorization}, on a lease
//
// <name> is the server name the validator sends (the identifier, or the
// reverse-mapping name of an IP address). The value is sealed with the
// fleet key: a writer to etcd without the key cannot make the nodes present
// a challenge certificate of its choosing. Backend implements
// acme.ChallengeCertStore (without importing internal/acme).

// alpnNameRE is what a TLS-ALPN-01 server name can be: a lower-case DNS name
// (validated identifiers, or in-addr.arpa / ip6.arpa names).
var alpnNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,252}$`)

type alpnRecord struct {
	Identifier string `json:"identifier"`
	KeyAuth    string `json:"key_authorization"`
}

func (b *Backend) alpnKey(name string) (string, error) {
	if !alpnNameRE.MatchString(name) {
		return "", fmt.Errorf("fleet: %q is not a tls-alpn-01 server name", name)
	}
	return b.Key("tls-alpn", name), nil
}

// PutALPN implements acme.ChallengeCertStore: the challenge for name, on a
// lease of tokenTTL (it outlives any order; CleanUp deletes it sooner).
func (b *Backend) PutALPN(ctx context.Context, name, identifier, keyAuth string) error {
	k, err := b.alpnKey(name)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(alpnRecord{Identifier: identifier, KeyAuth: keyAuth})
	if err != nil {
		return fmt.Errorf("fleet: tls-alpn-01 challenge %s: %w", name, err)
	}
	sealed, err := b.key.seal(k, raw)
	if err != nil {
		return err
	}
	octx, cancel := b.op(ctx)
	defer cancel()
	lease, err := b.cli.Grant(octx, tokenTTL)
	if err != nil {
		return fmt.Errorf("fleet: tls-alpn-01 challenge lease: %w", err)
	}
	if _, err := b.cli.Put(octx, k, string(sealed), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("fleet: put tls-alpn-01 challenge %s: %w", name, err)
	}
	return nil
}

// DeleteALPN implements acme.ChallengeCertStore.
func (b *Backend) DeleteALPN(ctx context.Context, name string) error {
	k, err := b.alpnKey(name)
	if err != nil {
		return err
	}
	octx, cancel := b.op(ctx)
	defer cancel()
	resp, err := b.cli.Get(octx, k)
	if err != nil {
		return fmt.Errorf("fleet: delete tls-alpn-01 challenge %s: %w", name, err)
	}
	for _, kv := range resp.Kvs { // revoking the lease deletes the key
		if _, err := b.cli.Revoke(octx, clientv3.LeaseID(kv.Lease)); err != nil {
			return fmt.Errorf("fleet: delete tls-alpn-01 challenge %s: %w", name, err)
		}
	}
	return nil
}

// ALPN implements acme.ChallengeCertStore: the pending challenge for name,
// read from etcd (a validator connects a few times per challenge; no cache
// is kept here, the solver keeps the certificate it builds).
func (b *Backend) ALPN(ctx context.Context, name string) (identifier, keyAuth string, ok bool, err error) {
	k, err := b.alpnKey(name)
	if err != nil {
		return "", "", false, nil // never a pending challenge
	}
	octx, cancel := b.op(ctx)
	defer cancel()
	resp, err := b.cli.Get(octx, k)
	if err != nil {
		return "", "", false, fmt.Errorf("fleet: read tls-alpn-01 challenge %s: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return "", "", false, nil
	}
	plain, err := b.key.open(k, resp.Kvs[0].Value)
	if err != nil {
		return "", "", false, fmt.Errorf("fleet: tls-alpn-01 challenge %s: %w", name, err)
	}
	var r alpnRecord
	if err := json.Unmarshal(plain, &r); err != nil {
		return "", "", false, fmt.Errorf("fleet: tls-alpn-01 challenge %s: %w", name, err)
	}
	return r.Identifier, r.KeyAuth, true, nil
}
