package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tapestream/tapestream/engine"
	"github.com/tapestream/tapestream/server"
	"github.com/tapestream/tapestream/storeapi"
	"github.com/tapestream/tapestream/workload"
)

func init() { extraStoreCommands = append(extraStoreCommands, newStoreServeCmd) }

type storeServeOpts struct {
	Dir             string
	Listen          string
	TokenFile       string
	InsecureNoAuth  bool
	TLSCert         string
	TLSKey          string
	ClientCA        string
	SessionTimeout  time.Duration
	ShutdownTimeout time.Duration
	CacheSize       string
	RestoreDir      string
	Out, Err        io.Writer
	// ready, if set, is called with the base URL once the server listens.
	ready func(url string)
}

func newStoreServeCmd() *cobra.Command {
	var o storeServeOpts
	c := &cobra.Command{
		Use:   "serve --dir DIR [--listen 127.0.0.1:7420] --token-file F [--tls-cert F --tls-key F [--client-ca F]]",
		Short: "Serve a store over HTTP: backup API, data API, health and metrics",
		Long: `Opens every storage group under DIR (recovering them if needed) and serves them
until SIGTERM/SIGINT, when every backup session is aborted (checkpoint unfrozen,
nothing truncated) and the engine is shut down cleanly.

Every request but /healthz must carry "Authorization: Bearer TOKEN" with the token
of --token-file; without a token file the server refuses to start unless
--insecure-no-auth is given (loopback tests only).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out, o.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runStoreServe(cmd.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.Dir, "dir", "", "store root directory")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:7420", "address to listen on (loopback by default)")
	f.StringVar(&o.TokenFile, "token-file", "", "file holding the bearer token clients must present")
	f.BoolVar(&o.InsecureNoAuth, "insecure-no-auth", false, "serve without a token (loopback tests only)")
	f.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate (PEM); serves HTTPS and HTTP/2")
	f.StringVar(&o.TLSKey, "tls-key", "", "TLS private key (PEM)")
	f.StringVar(&o.ClientCA, "client-ca", "", "require client certificates signed by this CA (PEM)")
	f.DurationVar(&o.SessionTimeout, "session-timeout", 60*time.Second, "abort a backup session whose client is silent this long")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to wait for requests in flight on shutdown")
	f.StringVar(&o.CacheSize, "cache-size", "", "buffer cache per storage group (default 64MiB)")
	f.StringVar(&o.RestoreDir, "restore-dir", "", "allow POST /v1/restore of the backup sets in this directory into new recovery groups")
	return c
}

func runStoreServe(ctx context.Context, o storeServeOpts) error {
	if o.Dir == "" {
		return usagef("--dir is required")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Err == nil {
		o.Err = io.Discard
	}
	cfg := server.Config{SessionIdleTimeout: o.SessionTimeout, NoAuth: o.InsecureNoAuth, RestoreDir: o.RestoreDir}
	switch {
	case o.TokenFile != "":
		tok, err := storeapi.ReadTokenFile(o.TokenFile)
		if err != nil {
			return usagef(err.Error())
		}
		cfg.Token = tok
	case !o.InsecureNoAuth:
		return usagef("--token-file is required (or --insecure-no-auth for loopback tests)")
	}
	var tlsCfg *tls.Config
	if o.TLSCert != "" || o.TLSKey != "" {
		if o.TLSCert == "" || o.TLSKey == "" {
			return usagef("--tls-cert and --tls-key go together")
		}
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return usagef(fmt.Sprintf("TLS certificate: %v", err))
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if o.ClientCA != "" {
			pem, err := os.ReadFile(o.ClientCA)
			if err != nil {
				return usagef(fmt.Sprintf("--client-ca: %v", err))
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return usagef(fmt.Sprintf("--client-ca %s holds no PEM certificate", o.ClientCA))
			}
			tlsCfg.ClientCAs, tlsCfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	} else if o.ClientCA != "" {
		return usagef("--client-ca needs --tls-cert and --tls-key")
	}
	eopts := engine.Options{}
	if o.CacheSize != "" {
		n, err := parseSize("cache-size", o.CacheSize)
		if err != nil {
			return err
		}
		eopts.CacheSize = int(n)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && tlsCfg == nil {
		fmt.Fprintf(o.Err, "warning: serving on %s without TLS: the token and the data travel in clear\n", ln.Addr())
	}
	eng, err := engine.OpenServer(o.Dir, eopts)
	if err != nil {
		ln.Close()
		return err
	}
	var logMu sync.Mutex
	cfg.Logf = func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(o.Err, "%s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
	for _, n := range eng.Notes() {
		cfg.Logf("%s", n)
	}
	srv := server.New(eng, cfg)
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String()
	var names []string
	for _, g := range eng.Groups() {
		names = append(names, g.Name())
	}
	fmt.Fprintf(o.Out, "serving store %s (groups %v) on %s\n", o.Dir, names, url)
	if o.ready != nil {
		o.ready(url)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln, tlsCfg) }()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("shutdown: %w", err)
	}
	if runErr == nil {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}
	if err := eng.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr == nil {
		fmt.Fprintf(o.Out, "store %s shut down cleanly\n", o.Dir)
	}
	return runErr
}

// runStoreLoadRemote runs the workload through a store server's data API.
func runStoreLoadRemote(ctx context.Context, o storeLoadOpts, target int64) error {
	if o.Dir != "" {
		return usagef("give --dir or --server, not both")
	}
	r, err := o.Remote.open()
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Status(ctx, o.Group)
	if err != nil {
		return err
	}
	var dbs []string
	for _, d := range st.Info.Databases {
		dbs = append(dbs, d.Name)
	}
	store := r.Store(o.Group)
	ws, runErr := workload.Run(ctx, store, workload.RunOptions{
		Workload:   workload.Workload{Seed: o.Seed, Streams: o.Streams, Databases: dbs},
		SizeFunc:   store.DatabaseSize,
		TargetSize: target,
		Duration:   o.Duration,
	})
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	secs := max(ws.Elapsed.Seconds(), 1e-9)
	fmt.Fprintf(o.Out, "loaded %s through %s: %d transactions, %s of mail in %s (%s/s, %.0f tx/s); databases now %s\n",
		o.Group, r.URL(), ws.Txns, humanize.IBytes(uint64(ws.Bytes)), ws.Elapsed.Round(time.Millisecond),
		humanize.IBytes(uint64(float64(ws.Bytes)/secs)), float64(ws.Txns)/secs, humanize.IBytes(uint64(store.DatabaseSize())))
	return runErr
}
