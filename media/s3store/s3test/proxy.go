package s3test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Fault is what the proxy does to one request.
type Fault int

const (
	Pass     Fault = iota // forward to the server
	SlowDown              // answer 503 SlowDown without forwarding
	Reset                 // read part of the request body, then reset the connection (RST)
	Stall                 // never answer (until the client gives up)
)

func (f Fault) String() string { return [...]string{"pass", "503 SlowDown", "reset", "stall"}[f] }

// Proxy is an HTTP proxy on loopback in front of a server that injects
// faults into chosen requests.
type Proxy struct {
	URL string // http://127.0.0.1:PORT, the endpoint to give clients

	srv  *httptest.Server
	plan func(n int, r *http.Request) Fault

	stop chan struct{}

	mu     sync.Mutex
	n      int
	counts map[Fault]int
}

// NewProxy proxies to target (a server's Endpoint). plan decides the fate
// of the n-th request (0-based, in arrival order).
func NewProxy(t testing.TB, target string, plan func(n int, r *http.Request) Fault) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{plan: plan, counts: map[Fault]int{}, stop: make(chan struct{})}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host // the SigV4 signature covers Host
	}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		n := p.n
		p.n++
		p.mu.Unlock()
		f := plan(n, r)
		p.mu.Lock()
		p.counts[f]++
		p.mu.Unlock()
		switch f {
		case SlowDown:
			body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><Resource>%s</Resource><RequestId>fault%d</RequestId></Error>`, r.URL.Path, n)
			w.Header().Set("Content-Type", "application/xml")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, body)
		case Reset:
			io.CopyN(io.Discard, r.Body, 64<<10)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // close sends RST
			}
			conn.Close()
		case Stall:
			select {
			case <-r.Context().Done():
			case <-p.stop:
			}
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	p.URL = p.srv.URL
	t.Cleanup(func() {
		close(p.stop)
		p.srv.Close()
	})
	return p
}

// Counts reports how many requests met each fate.
func (p *Proxy) Counts() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[Fault]int{}
	for k, v := range p.counts {
		m[k] = v
	}
	return m
}
