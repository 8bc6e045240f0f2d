package certbot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/renewer/renewer/internal/store"
)

// ErrManaged is returned by Adopt when renewer already has a live version.
var ErrManaged = errors.New("renewer already manages a certificate of this name")

// Adopt makes the lineage's current certificate and key the first version
// of name in st, validated like any install (key matches, names covered,
// chain verifies, not expired at now), and records it as applied: certbot
// deployed it already. It never replaces a version renewer has installed.
func Adopt(ctx context.Context, st *store.Store, l Lineage, now time.Time) (*store.Version, error) {
	unlock, err := st.Lock(ctx, l.Name) // a renew running meanwhile must not race the adoption
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := st.Live(l.Name); err == nil {
		return nil, ErrManaged
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	full, err := os.ReadFile(l.Fullchain)
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(l.Privkey)
	if err != nil {
		return nil, err
	}
	cert, chain := splitLeaf(full)
	v, err := st.Install(l.Name, l.Domains, store.Bundle{Cert: cert, Chain: chain, Key: key}, now)
	if v == nil {
		return nil, fmt.Errorf("adopt %s: %w", l.Fullchain, err)
	}
	s, _ := st.LoadState(l.Name)
	s.Adopted(now, l.Facts.Serial)
	if err := st.SaveState(l.Name, s); err != nil {
		return v, err
	}
	return v, nil
}

// splitLeaf cuts a fullchain PEM after its first certificate.
func splitLeaf(full []byte) (leaf, chain []byte) {
	const end = "-----END CERTIFICATE-----"
	i := bytes.Index(full, []byte(end))
	if i < 0 {
		return full, nil
	}
	i += len(end)
	for i < len(full) && (full[i] == '\n' || full[i] == '\r') {
		i++
	}
	return full[:i], bytes.TrimLeft(full[i:], "\r\n")
}
