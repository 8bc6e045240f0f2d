package store

import (
	"context"
	"errors"
	"time"
)

// Shared is storage shared by the nodes of a fleet: one renewal per
// certificate for all of them, the issued versions, what each node serves,
// the ACME account and pending HTTP-01 tokens. internal/fleet keeps it in
// etcd. The local Store stays what nginx and HAProxy read: every node
// installs a shared version into its own Store exactly as it would a
// certificate it obtained itself.
type Shared interface {
	// Node is this node's name in the fleet.
	Node() string
	// Claim takes the fleet-wide renewal lock of name without waiting. ok
	// is false (and err nil) when another node holds it.
	Claim(ctx context.Context, name string) (c Claim, ok bool, err error)
	// Latest is the newest published version of name; nil when none is.
	Latest(ctx context.Context, name string) (*Published, error)
	// Report records which serial this node serves of name and whether it
	// applied (install copies, hooks, verification) it.
	Report(ctx context.Context, name string, r NodeReport) error
	// Reports lists every node's report of name, by node name.
	Reports(ctx context.Context, name string) ([]NodeReport, error)
	// SyncAccount makes the ACME account named key the fleet's: it hands
	// the shared one to put (the account's files are internal/acme's, which
	// writes them), or, when the fleet has none yet, calls register (which
	// leaves a registered account) and shares what get returns. Nodes
	// calling it at once agree on one account.
	SyncAccount(ctx context.Context, key string, get func() ([]byte, error), put func([]byte) error, register func(context.Context) error) error
	// Changes receives a value soon after another version of any
	// certificate is published (and after a reconnection), until ctx ends.
	Changes(ctx context.Context) <-chan struct{}
	// PutToken, DeleteToken and Token share pending HTTP-01 challenge
	// tokens, so whichever node the CA reaches answers.
	PutToken(ctx context.Context, token, keyAuth string) error
	DeleteToken(ctx context.Context, token string) error
	Token(token string) (keyAuth string, ok bool)
}

// Claim is a held renewal lock of one certificate.
type Claim interface {
	// Publish makes b the fleet's version of the claimed certificate. It
	// fails with ErrClaimLost, writing nothing, when the lock is no
	// longer this node's (its lease expired while it was cut off).
	Publish(ctx context.Context, p Published) error
	// Release gives the lock up; safe to call more than once.
	Release()
}

// ErrWrongFleetKey is returned (wrapped) when a shared value cannot be
// opened with this node's fleet key: the node is misconfigured, not cut off.
var ErrWrongFleetKey = errors.New("cannot be opened with this fleet key (a different fleet key sealed it, or it was altered)")

// ErrClaimLost is returned (wrapped) by Claim.Publish when the lock is gone.
var ErrClaimLost = errors.New("renewal lock lost to another node")

// Published is one version of a certificate as the fleet shares it.
type Published struct {
	Name     string
	Serial   string
	NotAfter time.Time
	Node     string    // the node that obtained it
	At       time.Time // when it was published
	Bundle   Bundle    // certificate, chain and (decrypted) key
}

// NodeReport is what one node serves of one certificate.
type NodeReport struct {
	Node     string    `json:"node"`
	Serial   string    `json:"serial"`            // the serial installed on this node
	Applied  bool      `json:"applied"`           // install copies, hooks and verification all succeeded for it
	Verified bool      `json:"verified"`          // its verify endpoints served it (false when it has none)
	Error    string    `json:"error,omitempty"`   // why not applied, or the last renewal failure
	At       time.Time `json:"at"`                // when this report was written
	Version  string    `json:"version,omitempty"` // local version directory
	// NotAfter of the installed serial (zero in reports of older nodes).
	NotAfter time.Time `json:"not_after,omitzero"`
	// Endpoints: what each of the node's verify endpoints served when the
	// report was written (its own check; none without a verify block).
	Endpoints []EndpointReport `json:"endpoints,omitempty"`
}

// EndpointReport is what one verify endpoint of a node served.
type EndpointReport struct {
	Endpoint string    `json:"endpoint"`
	Serial   string    `json:"serial,omitempty"`   // the leaf it served ("" when it could not be reached)
	NotAfter time.Time `json:"not_after,omitzero"` // of that leaf
	Error    string    `json:"error,omitempty"`    // why it could not be checked
}
