// Package s3test runs a real S3 server for tests: versitygw (posix backend)
// on a loopback port, plus a fault-injecting proxy in front of it.
//
// versitygw is found on PATH or in $(go env GOPATH)/bin; install it with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// (.ci/run does). Without it, tests that need it are skipped with a loud
// message, except under CI=true, where they fail.
package s3test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the versitygw release the tests are run against.
const Version = "v1.8.0"

// InstallCmd installs it.
const InstallCmd = "go install github.com/versity/versitygw/cmd/versitygw@" + Version

// Credentials of the server's root user.
const (
	AccessKey = "tapestream-test"
	SecretKey = "tapestream-test-secret"
	Region    = "us-east-1"
)

// Binary finds the versitygw binary.
func Binary() (string, bool) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, true
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}

// Require returns the versitygw binary, or skips the test loudly (fails it
// when CI=true).
func Require(t testing.TB) string {
	t.Helper()
	p, ok := Binary()
	if ok {
		return p
	}
	msg := "versitygw not found on PATH or in $(go env GOPATH)/bin: the S3 tests against a real server did NOT run. Install it with: " + InstallCmd
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	fmt.Fprintf(os.Stderr, "\n*** SKIPPING S3 INTEGRATION TEST %s: %s ***\n\n", t.Name(), msg)
	t.Skip(msg)
	return ""
}

// Server is a versitygw process serving DIR on 127.0.0.1:PORT.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // the posix backend's root (buckets are directories)
	Addr     string

	bin    string
	verDir string
	tls    []string // --cert/--key arguments
	caFile string
	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start starts a server for the test (stopped by t.Cleanup).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Require(t)
	s, err := StartBinary(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartTLS starts a server speaking HTTPS with a certificate for
// 127.0.0.1 signed by a fresh CA; it returns the CA's PEM file.
func StartTLS(t testing.TB) (*Server, string) {
	t.Helper()
	bin := Require(t)
	dir := t.TempDir()
	ca, cert, key, err := writeTestPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startBinary(bin, dir, []string{"--cert", cert, "--key", key})
	if err != nil {
		t.Fatal(err)
	}
	s.caFile = ca
	t.Cleanup(s.Stop)
	return s, ca
}

// StartBinary starts versitygw from bin with its data under dir (for
// TestMain, where there is no testing.TB).
func StartBinary(bin, dir string) (*Server, error) { return startBinary(bin, dir, nil) }

func startBinary(bin, dir string, tlsArgs []string) (*Server, error) {
	s := &Server{bin: bin, Dir: filepath.Join(dir, "data"), verDir: filepath.Join(dir, "versions"), tls: tlsArgs}
	for _, d := range []string{s.Dir, s.verDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Addr = l.Addr().String()
	l.Close()
	s.Endpoint = "http://" + s.Addr
	if tlsArgs != nil {
		s.Endpoint = "https://" + s.Addr
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// --versioning-dir enables versioning and with it Object Lock
	// buckets; --quiet drops the per-request log.
	args := append([]string{"--port", s.Addr, "--quiet"}, s.tls...)
	cmd := exec.Command(s.bin, append(args, "posix", "--versioning-dir", s.verDir, s.Dir)...)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey, "VGW_REGION="+Region)
	s.log = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("s3test: starting %s: %w", s.bin, err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	s.exited = exited
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("s3test: versitygw exited at start: %s", s.log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	return fmt.Errorf("s3test: versitygw did not listen on %s within 15 s: %s", s.Addr, s.log.String())
}

// Kill kills the server with SIGKILL and waits for it to be gone.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a killed server again on the same address and data.
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

// Stop stops the server.
func (s *Server) Stop() { s.Kill() }

// Client is a plain SDK client for the server (test setup and checks).
func (s *Server) Client() *s3.Client {
	o := s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	}
	if s.caFile != "" {
		pool := x509.NewCertPool()
		if pem, err := os.ReadFile(s.caFile); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		o.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	return s3.New(o)
}

// CreateBucket creates a bucket (with Object Lock enabled if lock).
func (s *Server) CreateBucket(name string, lock bool) error {
	in := &s3.CreateBucketInput{Bucket: &name}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	_, err := s.Client().CreateBucket(context.Background(), in)
	if err != nil {
		return fmt.Errorf("s3test: create bucket %s: %w", name, err)
	}
	return nil
}

// Env is the standard AWS environment that reaches the server.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=" + Region,
		"AWS_ENDPOINT_URL=" + s.Endpoint,
	}
}

// Log is what the server printed so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}
