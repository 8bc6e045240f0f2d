package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
)

// Meta is what meta.json records about one version.
type Meta struct {
	Name        string
	Serial      string
	NotAfter    time.Time
	Domains     []string
	InstalledAt time.Time
	CA          string // ACME directory that issued it ("" for versions installed before it was recorded)
	Account     string // account directory name under accounts/ that ordered it
}

// ReadMeta reads v's meta.json.
func ReadMeta(v *Version) (Meta, error) {
	raw, err := os.ReadFile(filepath.Join(v.Dir, MetaFile))
	if err != nil {
		return Meta{}, fmt.Errorf("store: meta of %s: %w", v.ID, err)
	}
	var m meta
	if err := json.Unmarshal(raw, &m); err != nil {
		return Meta{}, fmt.Errorf("store: meta of %s: %w", v.ID, err)
	}
	m.Serial = certinfo.NormalizeSerial(m.Serial) // older meta.json: lowercase, no leading zero
	return Meta(m), nil
}
