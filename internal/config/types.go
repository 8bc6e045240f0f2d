// Package config decodes, defaults and validates renewer's HCL configuration.
//
// The types in this file are the typed result of decoding: every later stage
// (plan, acme, store, hook, agent) reads these and never the HCL.
package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Well-known ACME directory names accepted by acme.directory.
const (
	LetsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// Config is one decoded, validated configuration: the main file and the
// conf.d files read after it.
type Config struct {
	File         string   // path the main config file was read from
	ConfD        []string // the conf.d files read after File, in order (Load)
	Storage      Storage
	Fleet        *Fleet // nil: single node (fleet.go)
	ACME         ACME
	Daemon       Daemon
	Certificates []Certificate // in file order (File, then ConfD), names unique
	Reloads      []Hook        // top-level reload blocks (main file only), in file order, names unique (reload.go)
	Metrics      *Metrics      // nil: no metrics endpoint (observe.go)
	Watches      []Watch       // in file order (File, then ConfD), names unique
	Notifiers    []Notify      // in file order, names unique
	// LiteralSecrets are the secrets written in the files themselves
	// rather than read with env() or file() (see PermissionWarning).
	LiteralSecrets []SecretField
}

// Storage says where renewer keeps accounts, certificates and state.
type Storage struct {
	Path         string // absolute or relative to the config file's directory
	KeepVersions int    // how many old versions to keep besides the live one (default 3)
}

// ACME describes the certificate authority and the account used with it.
type ACME struct {
	Directory        string // resolved URL ("letsencrypt" -> LetsEncrypt)
	StagingDirectory string // the staging twin for --dry-run; equals Directory when unknown
	Email            string
	AcceptTerms      bool   // accept_terms; must be true to register
	CABundle         string // optional PEM file of roots trusted for the ACME server's TLS (path resolved)
	EAB              *EAB   // external account binding for Directory, when the CA requires one
	PreferredChain   string // issuer common name of the preferred alternate chain at Directory
	Fallback         []CA   // CAs tried in order when Directory is unreachable, fails or rate-limits
}

// Certificate is one certificate "NAME" block with defaults applied.
type Certificate struct {
	Name        string
	Domains     []string // lower-cased, in config order, no duplicates
	KeyType     string   // one of KeyTypes
	RenewBefore RenewBefore
	ARI         bool        // follow the CA's ACME Renewal Information when it offers it (default true)
	WarnBefore  RenewBefore // expiring (notify) this long before expiry; default: see WarnAt
	Challenge   Challenge
	Profile     string   // ACME profile to order (draft-ietf-acme-profiles); empty: the CA's default
	ReuseKey    bool     // keep the live private key across renewals
	Install     *Install // nil when there is no install block
	Hooks       []Hook   // in file order; run for this certificate alone
	Reloads     []string // names of top-level reload blocks, each run once per pass for all its certificates
	Verify      []Verify // endpoints checked after the hooks, in file order
	DeclRange   hcl.Range

	reloadRanges []hcl.Range // of each Reloads entry, for checkReloadRefs
}

// KeyTypes lists the accepted key_type values; the first is the default.
var KeyTypes = []string{"ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"}

// RenewBefore is either a fixed duration before expiry or a fraction of the
// certificate's lifetime. The zero value means "the default rule": 1/3 of the
// lifetime, 1/2 for lifetimes of 10 days or less.
type RenewBefore struct {
	Duration time.Duration // > 0 for "30d", "720h"
	Fraction float64       // in (0,1) for "1/3", "0.25"
}

// IsDefault reports whether no explicit renew_before was configured.
func (r RenewBefore) IsDefault() bool { return r.Duration == 0 && r.Fraction == 0 }

// Challenge says how domain control is proven. For Type "http" exactly one
// of Listen and Webroot is set; "tls-alpn" sets Listen; "dns" sets DNS;
// "dns-persist" sets Persist.
type Challenge struct {
	Type    string      // "http", "dns", "dns-persist" or "tls-alpn"
	Listen  string      // http standalone or tls-alpn: host:port renewer listens on, e.g. ":80"
	Webroot string      // webroot: directory; files go to <webroot>/.well-known/acme-challenge/
	DNS     *DNS        // the dns challenge's settings (challenge.go)
	Persist *DNSPersist // the dns-persist challenge's settings (persist.go)
}

// Hook is a command run after a new certificate goes live.
type Hook struct {
	Name    string
	Command []string // argv; no shell unless the user writes one
	Timeout time.Duration
	Env     map[string]string
}
