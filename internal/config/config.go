package config

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// Defaults applied when the configuration leaves a setting out.
const (
	DefaultStoragePath  = "/var/lib/renewer"
	DefaultKeepVersions = 3
	DefaultListen       = ":80"
	DefaultHookTimeout  = 60 * time.Second
)

// Load reads path, then every *.hcl file of the conf.d directory beside it
// (ConfDFiles), and returns the validated config, or *Errors listing every
// problem of every file. A file or a conf.d directory that cannot be read
// gives a plain wrapped error; a missing conf.d is fine.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	confd, err := ConfDFiles(path)
	if err != nil {
		return nil, err
	}
	return load(path, src, confd)
}

// ConfDFiles lists the files of the conf.d directory beside the config file
// path that Load reads after it: those whose name ends in ".hcl" and does
// not start with a dot (editor backups such as site.hcl~ or .#site.hcl,
// and package leftovers such as site.hcl.dpkg-dist, are skipped), in byte
// order of their names. A missing directory lists nothing; one that cannot
// be read is an error.
func ConfDFiles(path string) ([]string, error) {
	dir := filepath.Join(filepath.Dir(path), "conf.d")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".hcl") && !strings.HasPrefix(n, ".") {
			files = append(files, filepath.Join(dir, n))
		}
	}
	return files, nil
}

// Parse is Load on bytes already read, without conf.d; relative paths in
// the file are relative to filepath.Dir(filename).
func Parse(filename string, src []byte) (*Config, error) {
	return load(filename, src, nil)
}

// load decodes the main file, then reads, parses and decodes each conf.d
// file in turn. Only the typed result is kept of a file: its syntax tree is
// let go before the next file is read (unless it has problems, for the
// snippets of Errors.WriteText), so many files cost no more memory at once
// than the largest of them.
func load(filename string, src []byte, confd []string) (*Config, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, newErrors(diags, map[string]*hcl.File{filename: f}, []string{filename})
	}
	dir := filepath.Dir(filename)
	d := newDecoder(dir)
	bad := map[string]*hcl.File{} // the files with problems
	cfg := d.config(filename, f.Body)
	if len(d.diags) > 0 {
		bad[filename] = f
	}
	for _, name := range confd {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		n := len(d.diags)
		f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		d.diags = append(d.diags, diags...)
		if !diags.HasErrors() {
			d.confD(cfg, filename, f.Body)
		}
		if len(d.diags) > n {
			bad[name] = f
		}
		cfg.ConfD = append(cfg.ConfD, name)
	}
	if d.diags.HasErrors() {
		return nil, newErrors(d.diags, bad, append([]string{filename}, confd...))
	}
	cfg.LiteralSecrets = d.secrets
	return cfg, nil
}

var (
	certNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// decoder walks the HCL body, evaluating attributes and collecting every
// diagnostic rather than stopping at the first.
type decoder struct {
	dir     string // the main config file's directory
	ctx     *hcl.EvalContext
	diags   hcl.Diagnostics
	secrets []SecretField   // secrets written in the files (secrets.go)
	schema  *schemaRecorder // non-nil only in SchemaOf (schema.go)
	defs    Certificate     // the defaults block's settings, for every file's certificates
	// The first definition of each certificate and watch name, in any file.
	certNames, watchNames map[string]hcl.Range
}

// newDecoder returns a decoder for a config whose main file is in dir.
func newDecoder(dir string) *decoder {
	return &decoder{dir: dir, ctx: evalContext(dir), certNames: map[string]hcl.Range{}, watchNames: map[string]hcl.Range{}}
}

func (d *decoder) errorAt(rng hcl.Range, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr(),
	})
}

// attrError reports a problem with a's value.
func (d *decoder) attrError(a *hcl.Attribute, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: detail,
		Subject: a.Expr.Range().Ptr(), Context: a.Range.Ptr(),
	})
}

func (d *decoder) missing(block *hcl.Block, name string) {
	d.errorAt(block.DefRange, "Missing required argument",
		fmt.Sprintf("The argument %q is required, but no definition was found.", name))
}

// content decodes body against the named attributes and blocks; anything
// else in it is an error. Absent attributes are nil in the result.
func (d *decoder) content(body hcl.Body, attrs []string, blocks ...hcl.BlockHeaderSchema) *hcl.BodyContent {
	s := &hcl.BodySchema{Blocks: blocks}
	for _, a := range attrs {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a})
	}
	c, diags := body.Content(s)
	d.diags = append(d.diags, diags...)
	if c == nil {
		c = &hcl.BodyContent{}
	}
	d.schema.record(body, attrs, blocks, c)
	return c
}

// single returns the first of blocks, or nil, and reports any further one.
func (d *decoder) single(blocks hcl.Blocks) *hcl.Block {
	if len(blocks) == 0 {
		return nil
	}
	for _, b := range blocks[1:] {
		d.errorAt(b.DefRange, fmt.Sprintf("Duplicate %s block", b.Type), fmt.Sprintf(
			"Only one %s block is allowed here; the first is at line %d.", b.Type, blocks[0].DefRange.Start.Line))
	}
	return blocks[0]
}

// eval decodes a's value into target (a pointer to a Go value gocty knows).
// It returns false without a diagnostic when a is nil (absent), and false
// with one when the value is null or unsuitable.
func (d *decoder) eval(a *hcl.Attribute, target any) bool {
	if a == nil {
		return false
	}
	v, diags := a.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return false
	}
	if v.IsNull() {
		d.attrError(a, "Invalid value", fmt.Sprintf("The argument %q must not be null.", a.Name))
		return false
	}
	ty, err := gocty.ImpliedType(target)
	if err == nil {
		v, err = convert.Convert(v, ty)
	}
	if err == nil {
		err = gocty.FromCtyValue(v, target)
	}
	if err != nil {
		d.attrError(a, "Unsuitable value type", fmt.Sprintf("Unsuitable value: %s.", err))
		return false
	}
	return true
}

// path evaluates a path attribute and returns it as written and made
// absolute, relative paths being relative to the config file's directory.
func (d *decoder) path(a *hcl.Attribute) (abs, raw string, ok bool) {
	if !d.eval(a, &raw) {
		return "", "", false
	}
	if raw == "" {
		d.attrError(a, "Empty path", fmt.Sprintf("The argument %q must not be empty.", a.Name))
		return "", "", false
	}
	abs = raw
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(d.dir, abs)
	}
	if p, err := filepath.Abs(abs); err == nil {
		abs = p
	}
	return abs, raw, true
}

func (d *decoder) config(filename string, body hcl.Body) *Config {
	cfg := &Config{
		File:    filename,
		Storage: Storage{Path: DefaultStoragePath, KeepVersions: DefaultKeepVersions},
		Daemon:  defaultDaemon(),
	}
	top := d.content(body, nil, topBlocks...)
	blocks := top.Blocks.ByType()
	cfg.Reloads = d.reloads(blocks["reload"])

	if b := d.single(blocks["storage"]); b != nil {
		c := d.content(b.Body, []string{"path", "keep_versions"})
		if p, _, ok := d.path(c.Attributes["path"]); ok {
			cfg.Storage.Path = p
		}
		var n int
		if a := c.Attributes["keep_versions"]; d.eval(a, &n) {
			if n < 0 {
				d.attrError(a, "Invalid keep_versions", "keep_versions must be 0 or more.")
			} else {
				cfg.Storage.KeepVersions = n
			}
		}
	}

	if b := d.single(blocks["fleet"]); b != nil {
		cfg.Fleet = d.fleet(b) // fleet.go
	}

	if b := d.single(blocks["acme"]); b != nil {
		cfg.ACME = d.acme(b)
	} else {
		d.errorAt(body.MissingItemRange(), "Missing acme block", "An acme block is required.")
	}

	if b := d.single(blocks["daemon"]); b != nil {
		cfg.Daemon = d.daemon(b)
	}

	d.defs = Certificate{KeyType: KeyTypes[0], ARI: true}
	if b := d.single(blocks["defaults"]); b != nil {
		c := d.content(b.Body, []string{"key_type", "renew_before", "ari", "warn_before", "profile", "reuse_key"})
		d.defs.KeyType = d.keyType(c.Attributes["key_type"], d.defs.KeyType)
		d.defs.RenewBefore = d.renewBefore(c.Attributes["renew_before"], d.defs.RenewBefore)
		d.defs.WarnBefore = d.warnBefore(b.Body, d.defs.WarnBefore) // observe.go
		d.eval(c.Attributes["ari"], &d.defs.ARI)
		d.certOptions(c, &d.defs)
	}

	d.sites(cfg, blocks)
	d.observe(cfg, blocks) // observe.go
	return cfg
}

// topBlocks are the blocks of a config file.
var topBlocks = []hcl.BlockHeaderSchema{
	{Type: "storage"},
	{Type: "fleet"},
	{Type: "acme"},
	{Type: "defaults"},
	{Type: "daemon"},
	{Type: "certificate", LabelNames: []string{"name"}},
	{Type: "metrics"},
	{Type: "watch", LabelNames: []string{"name"}},
	{Type: "notify", LabelNames: []string{"name"}},
	{Type: "reload", LabelNames: []string{"name"}},
}

// siteBlocks are the blocks a conf.d file may hold: what one site needs.
// Every other block is global and belongs in the main file only.
var siteBlocks = []string{"certificate", "watch"}

// confD decodes the body of a conf.d file (main is the main file's name).
func (d *decoder) confD(cfg *Config, main string, body hcl.Body) {
	top := d.content(body, nil, topBlocks...)
	for _, b := range top.Blocks {
		if !slices.Contains(siteBlocks, b.Type) {
			d.errorAt(b.DefRange, "Global block in conf.d file", fmt.Sprintf(
				"%s blocks belong in the main config file %s only; a conf.d file may hold certificate and watch blocks.", b.Type, main))
		}
	}
	d.sites(cfg, top.Blocks.ByType())
}

// sites decodes the certificate and watch blocks of one file; their names
// are unique across all files.
func (d *decoder) sites(cfg *Config, blocks map[string]hcl.Blocks) {
	for _, b := range blocks["certificate"] {
		name, nameRange := b.Labels[0], b.LabelRanges[0]
		if !certNameRE.MatchString(name) {
			d.errorAt(nameRange, "Invalid certificate name", fmt.Sprintf(
				"%q must start with a letter or digit and hold at most 64 letters, digits, '.', '_' or '-', as it names a directory.", name))
		}
		if first, dup := d.certNames[name]; dup {
			d.errorAt(nameRange, "Duplicate certificate",
				fmt.Sprintf("A certificate named %q is already defined at %s.", name, where(first, nameRange)))
		} else {
			d.certNames[name] = b.DefRange
		}
		cert := d.certificate(b, d.defs)
		d.checkReloadRefs(cfg, cert) // the main file's reload blocks are decoded before any certificate
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	d.watches(cfg, blocks["watch"]) // observe.go
}

// where names the place of first as seen from a problem at r: its line in
// the same file, file:line in another.
func where(first, r hcl.Range) string {
	if first.Filename == r.Filename {
		return fmt.Sprintf("line %d", first.Start.Line)
	}
	return fmt.Sprintf("%s:%d", first.Filename, first.Start.Line)
}

// checkPEMCerts makes sure the file at p holds at least one PEM CERTIFICATE.
func checkPEMCerts(p string) error {
	data, err := readFile(p)
	if err != nil {
		return fmt.Errorf("cannot be read: %s", reason(err))
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return errors.New("holds no PEM CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			return nil
		}
	}
}

// reason is err without the path of an *fs.PathError.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// certOptions decodes the settings a certificate shares with defaults
// (besides key_type and renew_before) into cert.
func (d *decoder) certOptions(c *hcl.BodyContent, cert *Certificate) {
	if a := c.Attributes["profile"]; d.eval(a, &cert.Profile) && !profileRE.MatchString(cert.Profile) {
		d.attrError(a, "Invalid profile", fmt.Sprintf(
			"%q is not a profile name such as \"classic\" or \"shortlived\".", cert.Profile))
	}
	d.eval(c.Attributes["reuse_key"], &cert.ReuseKey)
}

var profileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (d *decoder) keyType(a *hcl.Attribute, def string) string {
	var s string
	if !d.eval(a, &s) {
		return def
	}
	if !slices.Contains(KeyTypes, s) {
		d.attrError(a, "Unsupported key type",
			fmt.Sprintf("%q is not a key type; use one of %s.", s, strings.Join(KeyTypes, ", ")))
		return def
	}
	return s
}

func (d *decoder) renewBefore(a *hcl.Attribute, def RenewBefore) RenewBefore {
	var s string
	if !d.eval(a, &s) {
		return def
	}
	rb, err := ParseRenewBefore(s)
	if err != nil {
		d.attrError(a, "Invalid renew_before", err.Error()+".")
		return def
	}
	return rb
}

// certificate decodes one certificate block; defs holds the defaults block's
// settings.
func (d *decoder) certificate(b *hcl.Block, defs Certificate) Certificate {
	c := d.content(b.Body, []string{"domains", "key_type", "renew_before", "ari", "warn_before", "profile", "reuse_key", "reload"},
		hcl.BlockHeaderSchema{Type: "challenge", LabelNames: []string{"type"}},
		hcl.BlockHeaderSchema{Type: "install"},
		hcl.BlockHeaderSchema{Type: "hook", LabelNames: []string{"name"}},
		hcl.BlockHeaderSchema{Type: "verify"})
	blocks := c.Blocks.ByType()
	cert := Certificate{
		Name:        b.Labels[0],
		KeyType:     d.keyType(c.Attributes["key_type"], defs.KeyType),
		RenewBefore: d.renewBefore(c.Attributes["renew_before"], defs.RenewBefore),
		ARI:         defs.ARI,
		Profile:     defs.Profile,
		ReuseKey:    defs.ReuseKey,
		WarnBefore:  d.warnBefore(b.Body, defs.WarnBefore), // observe.go
		DeclRange:   b.DefRange,
	}
	d.eval(c.Attributes["ari"], &cert.ARI)
	d.certOptions(c, &cert)
	if ch := d.single(blocks["challenge"]); ch != nil {
		cert.Challenge = d.challenge(ch)
	} else {
		d.errorAt(b.DefRange, "Missing challenge block",
			`A certificate needs one challenge block, e.g. challenge "http" { listen = ":80" }.`)
	}
	if c.Attributes["domains"] == nil {
		d.missing(b, "domains")
	}
	cert.Domains = d.domains(c.Attributes["domains"], cert.Challenge.Type)
	d.checkPersistPolicy(cert) // persist.go
	if ib := d.single(blocks["install"]); ib != nil {
		cert.Install = d.install(ib)
	}
	cert.Verify = d.verifyBlocks(blocks["verify"], cert.Domains)
	cert.Reloads, cert.reloadRanges = d.reloadRefs(c.Attributes["reload"])
	first := map[string]*hcl.Block{}
	for _, h := range blocks["hook"] {
		name := h.Labels[0]
		if f, dup := first[name]; dup {
			d.errorAt(h.LabelRanges[0], "Duplicate hook", fmt.Sprintf(
				"A hook named %q is already defined for this certificate at line %d.", name, f.DefRange.Start.Line))
		} else {
			first[name] = h
		}
		cert.Hooks = append(cert.Hooks, d.hook(h))
	}
	return cert
}

// domains evaluates, normalises and checks a certificate's domains.
func (d *decoder) domains(a *hcl.Attribute, challenge string) []string {
	var names []string
	if !d.eval(a, &names) {
		return nil
	}
	if len(names) == 0 {
		d.attrError(a, "Empty domains", "List at least one domain name.")
		return nil
	}
	ranges := elementRanges(a.Expr, len(names))
	first := map[string]int{}
	var out []string
	for i, raw := range names {
		name := strings.ToLower(strings.TrimSuffix(raw, "."))
		if ip := net.ParseIP(name); ip != nil {
			if challenge == ChallengeDNS || challenge == ChallengeDNSPersist {
				d.errorAt(ranges[i], "IP address needs http or tls-alpn challenge",
					fmt.Sprintf("%q: IP addresses (RFC 8738) cannot be validated with the %s challenge.", raw, challenge))
				continue
			}
			name = ip.String()
		} else {
			if err := checkDomain(name); err != nil {
				d.errorAt(ranges[i], "Invalid domain name", fmt.Sprintf("%q: %s.", raw, err))
				continue
			}
			if challenge != ChallengeDNS && challenge != ChallengeDNSPersist && challenge != "" && strings.HasPrefix(name, "*.") {
				d.errorAt(ranges[i], "Wildcard needs dns challenge",
					fmt.Sprintf("%q: wildcard names need the dns or dns-persist challenge.", raw))
				continue
			}
		}
		if j, dup := first[name]; dup {
			as := ""
			if names[j] != raw {
				as = fmt.Sprintf(" as %q", names[j])
			}
			d.errorAt(ranges[i], "Duplicate domain", fmt.Sprintf("%q is already listed%s at line %d, column %d.",
				raw, as, ranges[j].Start.Line, ranges[j].Start.Column))
			continue
		}
		first[name] = i
		out = append(out, name)
	}
	return out
}

// elementRanges returns the ranges of a list expression's n elements, or
// the whole expression's range n times when they cannot be told apart.
func elementRanges(expr hcl.Expression, n int) []hcl.Range {
	elems, diags := hcl.ExprList(expr)
	out := make([]hcl.Range, n)
	for i := range out {
		if !diags.HasErrors() && len(elems) == n {
			out[i] = elems[i].Range()
		} else {
			out[i] = expr.Range()
		}
	}
	return out
}

// checkDomain applies the DNS label rules to a lower-cased name; a leading
// "*." wildcard label is allowed.
func checkDomain(name string) error {
	if name == "" {
		return errors.New("the name is empty")
	}
	if len(name) > 253 {
		return errors.New("longer than 253 characters")
	}
	labels := strings.Split(strings.TrimPrefix(name, "*."), ".")
	if len(labels) < 2 {
		return errors.New("a domain name needs at least two labels, as in example.com")
	}
	for _, l := range labels {
		switch {
		case l == "":
			return errors.New("empty label")
		case l == "*":
			return errors.New(`a wildcard "*" is only allowed as the first label`)
		case len(l) > 63:
			return fmt.Errorf("label %q is longer than 63 characters", l)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("label %q starts or ends with '-'", l)
		}
		for _, r := range l {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
				return fmt.Errorf("label %q holds %q; use only letters, digits and '-'", l, r)
			}
		}
	}
	return nil
}

func (d *decoder) hook(b *hcl.Block) Hook {
	c := d.content(b.Body, []string{"command", "timeout", "env"})
	command, timeout, env := c.Attributes["command"], c.Attributes["timeout"], c.Attributes["env"]
	h := Hook{Name: b.Labels[0], Timeout: DefaultHookTimeout}
	if command == nil {
		d.missing(b, "command")
	}
	if d.eval(command, &h.Command) && (len(h.Command) == 0 || h.Command[0] == "") {
		d.attrError(command, "Empty command", "command must list the program to run, then its arguments.")
	}
	var s string
	if d.eval(timeout, &s) {
		t, err := ParseDuration(s)
		switch {
		case err != nil:
			d.attrError(timeout, "Invalid timeout", err.Error()+".")
		case t <= 0:
			d.attrError(timeout, "Invalid timeout", fmt.Sprintf("%q is not a duration greater than zero.", s))
		default:
			h.Timeout = t
		}
	}
	if d.eval(env, &h.Env) {
		for _, k := range slices.Sorted(maps.Keys(h.Env)) {
			if !envNameRE.MatchString(k) {
				d.errorAt(d.keyRange(env, k), "Invalid environment variable name", fmt.Sprintf(
					"%q is not a valid name: use letters, digits and '_', not starting with a digit.", k))
			}
		}
	}
	return h
}

// keyRange finds the range of key k in a's object constructor, or else the
// range of a's value.
func (d *decoder) keyRange(a *hcl.Attribute, k string) hcl.Range {
	pairs, diags := hcl.ExprMap(a.Expr)
	if diags.HasErrors() {
		return a.Expr.Range()
	}
	for _, p := range pairs {
		v, diags := p.Key.Value(d.ctx)
		if !diags.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type() == cty.String && v.AsString() == k {
			return p.Key.Range()
		}
	}
	return a.Expr.Range()
}
