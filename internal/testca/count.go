package testca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// CountingProxy is a TLS reverse proxy in front of Pebble's ACME API that
// counts what passes: every request by endpoint, and every new-order
// request with its identifiers, its "replaces" and Pebble's answer, so a
// test can tell how many orders each certificate got (a duplicate order is
// measured, not assumed). It also follows the orders in flight: created
// (201) and their certificate not yet downloaded. Pebble builds every URL
// from the request's Host, so the whole ACME conversation goes through it.
type CountingProxy struct {
	Directory string // the proxied directory URL: give this to the client

	mu          sync.Mutex
	requests    map[string]int // "METHOD /path/" (the last path segment, an ID, cut)
	orders      []Order
	inFlight    map[string]bool // first identifier of an order created and not yet downloaded
	maxInFlight int
	srv         *http.Server
}

// Order is one new-order request that passed through the proxy.
type Order struct {
	At          time.Time
	Identifiers []string // the order's identifier values, in its order
	Replaces    string   // the ARI identifier it names, "" for none
	Status      int      // Pebble's HTTP status: 201 when the order was created
	Problem     string   // the problem type when it was refused
}

// Created reports whether the CA created the order.
func (o Order) Created() bool { return o.Status == http.StatusCreated }

// StartCountingProxy proxies ca on a free loopback port, with the CA's own
// TLS certificate (so the same CABundle is trusted). Close stops it.
func StartCountingProxy(ca *CA) (*CountingProxy, error) {
	target, err := url.Parse(ca.Directory)
	if err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(ca.CABundle, filepath.Join(filepath.Dir(ca.CABundle), "ca-tls.key"))
	if err != nil {
		return nil, fmt.Errorf("testca: proxy certificate: %w", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}
	p := &CountingProxy{
		Directory: fmt.Sprintf("https://%s%s", ln.Addr(), target.Path),
		requests:  map[string]int{},
		inFlight:  map[string]bool{},
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "https", Host: target.Host})
	rp.Transport = ca.client.Transport
	rp.ModifyResponse = p.observe
	p.srv = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops the proxy.
func (p *CountingProxy) Close() { p.srv.Close() }

// Reset forgets every count (the orders in flight too): what follows is
// counted from now.
func (p *CountingProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests, p.orders, p.inFlight, p.maxInFlight = map[string]int{}, nil, map[string]bool{}, 0
}

// Requests returns the requests by endpoint ("POST /order-plz",
// "GET /draft-ietf-acme-ari-03/renewalInfo/", ...) since the last Reset.
func (p *CountingProxy) Requests() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.requests))
	for k, v := range p.requests {
		out[k] = v
	}
	return out
}

// Orders returns every new-order request since the last Reset, in the
// order Pebble answered them.
func (p *CountingProxy) Orders() []Order {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Order(nil), p.orders...)
}

// MaxInFlight is the most orders created and not yet downloaded at once
// since the last Reset.
func (p *CountingProxy) MaxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxInFlight
}

// endpoint is a request's counting key: its method and path without the
// last segment when that is an ID ("POST /authZ/", "GET /dir").
func endpoint(r *http.Request) string {
	path := r.URL.Path
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		path = path[:i+1]
	}
	return r.Method + " " + path
}

type orderKey struct{}

func contextWithOrder(ctx context.Context, o *Order) context.Context {
	return context.WithValue(ctx, orderKey{}, o)
}

func orderFrom(ctx context.Context) *Order {
	o, _ := ctx.Value(orderKey{}).(*Order)
	return o
}

func (p *CountingProxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests[endpoint(r)]++
		p.mu.Unlock()
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/order-plz") {
			body, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if o, ok := newOrder(body); ok {
				r = r.WithContext(contextWithOrder(r.Context(), &o))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// observe records Pebble's answer to a new-order request, and the end of
// an order in flight when its certificate is downloaded.
func (p *CountingProxy) observe(resp *http.Response) error {
	r := resp.Request
	if o := orderFrom(r.Context()); o != nil {
		o.At, o.Status = time.Now(), resp.StatusCode
		if !o.Created() {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			var prob struct{ Type string }
			_ = json.Unmarshal(body, &prob)
			o.Problem = prob.Type
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
		p.mu.Lock()
		p.orders = append(p.orders, *o)
		if o.Created() && len(o.Identifiers) > 0 {
			p.inFlight[o.Identifiers[0]] = true
			p.maxInFlight = max(p.maxInFlight, len(p.inFlight))
		}
		p.mu.Unlock()
		return nil
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/certZ/") && resp.StatusCode == http.StatusOK {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if b, _ := pem.Decode(body); b != nil {
			if leaf, err := x509.ParseCertificate(b.Bytes); err == nil && len(leaf.DNSNames) > 0 {
				p.mu.Lock()
				delete(p.inFlight, leaf.DNSNames[0])
				p.mu.Unlock()
			}
		}
	}
	return nil
}

// newOrder reads a new-order request's JWS (flattened JSON serialization):
// its payload's identifiers and replaces.
func newOrder(body []byte) (Order, bool) {
	var jws struct{ Payload string }
	if err := json.Unmarshal(body, &jws); err != nil {
		return Order{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil {
		return Order{}, false
	}
	var payload struct {
		Identifiers []struct{ Value string }
		Replaces    string
	}
	if err := json.Unmarshal(raw, &payload); err != nil {
		return Order{}, false
	}
	o := Order{Replaces: payload.Replaces}
	for _, id := range payload.Identifiers {
		o.Identifiers = append(o.Identifiers, id.Value)
	}
	return o, true
}
