package config

import (
	"slices"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Schema is the configuration language as the decoder accepts it: for each
// block path, the attributes and blocks allowed in it. The top level is "";
// a nested block's path is its parents' types joined by ".", e.g.
// "certificate.install". A block whose label selects its schema (the
// challenge type) has the label in its path: `certificate.challenge "dns"`.
type Schema map[string]SchemaBlock

// SchemaBlock lists what one block may contain, sorted.
type SchemaBlock struct {
	Attributes []string
	Blocks     []string // block types
}

// SchemaOf decodes src (as Parse does) and returns the schema the decoder
// used for every block it met. Nothing is validated: a block that src
// leaves out is still listed by its parent (in Blocks), but its own
// attributes are known only once src holds one such block. Only a syntax
// error is returned.
func SchemaOf(filename string, src []byte) (Schema, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, newErrors(diags, map[string]*hcl.File{filename: f}, []string{filename})
	}
	rec := &schemaRecorder{paths: map[hcl.Body]string{}, out: Schema{}}
	d := newDecoder(".")
	d.schema = rec
	d.config(filename, f.Body)
	return rec.out, nil
}

// schemaRecorder collects, in SchemaOf, what content was asked to accept.
type schemaRecorder struct {
	paths map[hcl.Body]string // body of a decoded block -> its path
	out   Schema
}

// record notes that body accepts attrs and blocks, and where the bodies of
// the blocks found in it sit. A nil recorder (normal decoding) does nothing.
func (r *schemaRecorder) record(body hcl.Body, attrs []string, blocks []hcl.BlockHeaderSchema, c *hcl.BodyContent) {
	if r == nil {
		return
	}
	path := r.paths[body]
	sb := r.out[path]
	for _, a := range attrs {
		if !slices.Contains(sb.Attributes, a) {
			sb.Attributes = append(sb.Attributes, a)
		}
	}
	byType := map[string]hcl.BlockHeaderSchema{}
	for _, b := range blocks {
		byType[b.Type] = b
		if !slices.Contains(sb.Blocks, b.Type) {
			sb.Blocks = append(sb.Blocks, b.Type)
		}
	}
	slices.Sort(sb.Attributes)
	slices.Sort(sb.Blocks)
	r.out[path] = sb
	for _, b := range c.Blocks {
		child := b.Type
		if h := byType[b.Type]; len(h.LabelNames) > 0 && h.LabelNames[0] == "type" && len(b.Labels) > 0 {
			child += " " + strconv.Quote(b.Labels[0])
		}
		if path != "" {
			child = path + "." + child
		}
		r.paths[b.Body] = child
	}
}
