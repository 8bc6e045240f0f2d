package testca

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is one kind of failure the proxy injects.
type Fault int

const (
	FaultNone  Fault = iota
	Fault500         // 500 Internal Server Error
	Fault503         // 503 Service Unavailable with Retry-After
	Fault429         // 429 rateLimited problem with Retry-After
	FaultReset       // the connection is closed without an answer
	FaultSlow        // the answer comes after Slow
	FaultCount       // number of kinds; not a fault
)

func (f Fault) String() string {
	return [...]string{"none", "500", "503", "429", "reset", "slow"}[f]
}

// FaultProxy is a TLS reverse proxy in front of Pebble's ACME API that
// injects faults. Pebble builds every URL from the request's Host, so with
// the Host kept the whole ACME conversation goes through the proxy.
type FaultProxy struct {
	Directory string // the proxied directory URL: give this to the client

	mu       sync.Mutex
	rnd      *rand.Rand
	rate     float64 // probability that a request gets a fault
	down     bool    // refuse everything (the CA is down)
	slow     time.Duration
	requests atomic.Int64
	faults   [FaultCount]atomic.Int64
	badNonce atomic.Int64 // Pebble's own badNonce rejections passed through
	srv      *http.Server
}

// StartFaultProxy proxies ca on a free loopback port, with the CA's own TLS
// certificate (so the same CABundle is trusted). rate is the share of
// requests that get a fault, drawn from seed.
func StartFaultProxy(ca *CA, rate float64, seed uint64) (*FaultProxy, error) {
	target, err := url.Parse(ca.Directory)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(ca.CABundle, filepath.Join(filepath.Dir(ca.CABundle), "ca-tls.key"))
	if err != nil {
		return nil, fmt.Errorf("testca: proxy certificate: %w", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return nil, err
	}
	p := &FaultProxy{
		Directory: fmt.Sprintf("https://%s%s", ln.Addr(), target.Path),
		rnd:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		rate:      rate,
		slow:      2 * time.Second,
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "https", Host: target.Host})
	rp.Transport = ca.client.Transport
	rp.ModifyResponse = p.countBadNonce
	p.srv = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// SetRate changes the share of requests that get a fault.
func (p *FaultProxy) SetRate(rate float64) { p.mu.Lock(); p.rate = rate; p.mu.Unlock() }

// SetDown makes the CA unreachable (every connection reset) or brings it back.
func (p *FaultProxy) SetDown(down bool) { p.mu.Lock(); p.down = down; p.mu.Unlock() }

// Requests is how many requests reached the proxy.
func (p *FaultProxy) Requests() int64 { return p.requests.Load() }

// Faults is how many requests got each kind of fault.
func (p *FaultProxy) Faults() map[string]int64 {
	m := map[string]int64{}
	for f := Fault500; f < FaultCount; f++ {
		m[f.String()] = p.faults[f].Load()
	}
	return m
}

// BadNonces is how many of Pebble's answers that passed through were
// badNonce rejections (PEBBLE_WFE_NONCEREJECT), which the client retries.
func (p *FaultProxy) BadNonces() int64 { return p.badNonce.Load() }

// countBadNonce counts Pebble's badNonce problems, leaving the answer as it was.
func (p *FaultProxy) countBadNonce(resp *http.Response) error {
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if bytes.Contains(body, []byte("urn:ietf:params:acme:error:badNonce")) {
		p.badNonce.Add(1)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// Close stops the proxy.
func (p *FaultProxy) Close() { p.srv.Close() }

func (p *FaultProxy) pick() Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return FaultReset
	}
	if p.rnd.Float64() >= p.rate {
		return FaultNone
	}
	return Fault(1 + p.rnd.IntN(int(FaultCount)-1))
}

func (p *FaultProxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		f := p.pick()
		p.faults[f].Add(1)
		switch f {
		case Fault500:
			http.Error(w, "injected fault", http.StatusInternalServerError)
		case Fault503:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "injected fault", http.StatusServiceUnavailable)
		case Fault429:
			w.Header().Set("Retry-After", "120")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"type":"urn:ietf:params:acme:error:rateLimited","detail":"injected rate limit","status":429}`)
		case FaultReset:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					if tc, ok := conn.(*tls.Conn); ok {
						if nc, ok := tc.NetConn().(*net.TCPConn); ok {
							nc.SetLinger(0) // RST, not FIN
						}
					}
					conn.Close()
					return
				}
			}
			http.Error(w, "injected fault", http.StatusBadGateway)
		case FaultSlow:
			time.Sleep(p.slow)
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
