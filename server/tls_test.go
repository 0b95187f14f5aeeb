package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/ese"
	"github.com/tapestream/tapestream/server"
	"github.com/tapestream/tapestream/storeapi"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

var serial int64 = 10

func (ca *testCA) issue(t *testing.T, cn string, server bool) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSClientCertificates: HTTP/2 over TLS with required client
// certificates; a session belongs to the certificate that opened it.
func TestTLSClientCertificates(t *testing.T) {
	dir := initStore(t, "SG1")
	eng, err := engine.OpenServer(dir, engine.Options{CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ca := newCA(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "server", true)}, ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(eng, server.Config{Token: testToken})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, srvCfg) }()
	defer func() {
		srv.Shutdown(context.Background())
		<-done
		eng.Close()
	}()
	url := "https://" + ln.Addr().String()
	clientCfg := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: ca.pool, Certificates: certs}
	}
	a, err := storeapi.OpenRemote(url, storeapi.RemoteOptions{Token: testToken, TLS: clientCfg(ca.issue(t, "alice", false))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if _, err := runBackup(t, ctx, a, "SG1", ese.Full, filepath.Join(t.TempDir(), "full.tar")); err != nil {
		t.Fatalf("full backup over TLS: %v", err)
	}

	// No client certificate: the handshake fails.
	nc, _ := storeapi.OpenRemote(url, storeapi.RemoteOptions{Token: testToken, TLS: clientCfg()})
	if _, err := nc.Prepare(ctx); err == nil {
		t.Fatal("a client without a certificate was served")
	}

	// Raw clients: alice opens a session, bob may not use it.
	raw := func(cfg *tls.Config) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
	}
	alice, bob := raw(clientCfg(ca.issue(t, "alice2", false))), raw(clientCfg(ca.issue(t, "bob", false)))
	do := func(c *http.Client, method, path, body string) *http.Response {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := do(alice, "POST", "/v1/groups/SG1/backup", `{"type":"copy"}`)
	var br storeapi.BeginResponse
	json.NewDecoder(resp.Body).Decode(&br)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Fatalf("begin over TLS: %s %s", resp.Status, resp.Proto)
	}
	resp = do(bob, "GET", "/v1/sessions/"+br.Session+"/files", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob used alice's session: %s", resp.Status)
	}
	resp = do(bob, "POST", "/v1/sessions/"+br.Session+"/abort", `{}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob aborted alice's session: %s", resp.Status)
	}
	resp = do(alice, "GET", "/v1/sessions/"+br.Session+"/files", "")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("alice's own session: %s", resp.Status)
	}
	resp = do(alice, "POST", "/v1/sessions/"+br.Session+"/abort", `{"reason":"test"}`)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("alice's abort: %s", resp.Status)
	}
}
