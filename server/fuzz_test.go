package server_test

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tapestream/tapestream/server"
	"github.com/tapestream/tapestream/storeapi"
)

// checkResponse is what every handler must honour for any input: no
// panic, a known status, and a JSON error body on failure.
func checkResponse(t *testing.T, method, path string, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	switch rec.Code {
	case 200, 301, 307, 308, 400, 401, 403, 404, 405, 409, 413, 422, 500, 503:
	default:
		t.Fatalf("%s %q: status %d", method, path, rec.Code)
	}
	if rec.Code >= 400 && rec.Code != 405 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		var eb storeapi.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Message == "" {
			t.Fatalf("%s %q: error body %q: %v", method, path, rec.Body.String(), err)
		}
	}
	if rec.Code == 500 && strings.Contains(rec.Body.String(), "panic") {
		t.Fatalf("%s %q: %s", method, path, rec.Body.String())
	}
}

func newFuzzServer(t testing.TB) *server.Server {
	dir := initStore(t, "SG1")
	ts := startServer(t, dir, server.Config{Token: testToken, MaxBodyBytes: 4 << 10, MaxCommitBytes: 64 << 10, MaxScanEntries: 50})
	return ts.srv
}

func serve(h http.Handler, method, path string, body []byte, token string) *httptest.ResponseRecorder {
	u, err := url.Parse(path)
	if err != nil {
		u = &url.URL{Path: path}
	}
	req := &http.Request{Method: method, URL: u, RequestURI: path, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(string(body))), ContentLength: int64(len(body)),
		Host: "127.0.0.1", RemoteAddr: "127.0.0.1:9"}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var fuzzSeeds = []struct{ method, path, body string }{
	{"GET", "/v1/groups", ""},
	{"GET", "/v1/groups/SG1", ""},
	{"GET", "/v1/groups/..%2f..%2fetc", ""},
	{"POST", "/v1/groups/SG1/backup", `{"type":"full"}`},
	{"POST", "/v1/groups/SG1/backup", `{"type":"copy","databases":["../../x"]}`},
	{"POST", "/v1/groups/SG1/backup", `{"type":"full"} {"type":"full"}`},
	{"POST", "/v1/groups/SG1/backup", `{"type":"full","extra":1}`},
	{"POST", "/v1/groups/SG1/get", `{"db":"Mailbox1","table":"t","key":"a2V5"}`},
	{"POST", "/v1/groups/SG1/get", `{"db":"../Mailbox1","table":"t","key":"a2V5"}`},
	{"POST", "/v1/groups/SG1/scan", `{"db":"Mailbox1","table":"t","limit":-5}`},
	{"POST", "/v1/groups/SG1/commit", `{"writes":[{"db":"Mailbox1","table":"t","key":"a2V5","value":"dmFs"}]}`},
	{"POST", "/v1/groups/SG1/commit", `{"writes":[{"db":"Mailbox1","table":"t","key":""}]}`},
	{"POST", "/v1/groups/SG1/commit", `{"writes":[{"db":"Nope","table":"t","key":"a2V5"}]}`},
	{"GET", "/v1/sessions/00000000000000000000000000000000/files", ""},
	{"GET", "/v1/sessions/00000000000000000000000000000000/files/..%2f..%2fgroup.json", ""},
	{"GET", "/v1/sessions/zz/files/Mailbox1.edb", ""},
	{"POST", "/v1/sessions/00000000000000000000000000000000/end", `{"success":true}`},
	{"POST", "/v1/sessions/00000000000000000000000000000000/abort", `{}`},
	{"DELETE", "/v1/groups/SG1", ""},
	{"GET", "/metrics", ""},
	{"GET", "/healthz", ""},
	{"GET", "//../../etc/passwd", ""},
}

func FuzzHandlers(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.method, s.path, []byte(s.body))
	}
	srv := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if len(body) > 1<<20 || len(path) > 4096 || method == "" || strings.ContainsAny(method, " \r\n\t") {
			return
		}
		if path == "" || path[0] != '/' {
			path = "/" + path
		}
		rec := serve(srv, method, path, body, testToken)
		checkResponse(t, method, path, body, rec)
		// Without the token nothing but health answers.
		if rec := serve(srv, method, path, body, ""); rec.Code == 200 && !strings.HasPrefix(path, "/healthz") {
			t.Fatalf("%s %q answered 200 without a token", method, path)
		}
	})
}

// TestRandomRequests drives the handlers with bounded random requests
// built from the API's own shapes (a cheap, deterministic fuzz run).
func TestRandomRequests(t *testing.T) {
	srv := newFuzzServer(t)
	rng := rand.New(rand.NewPCG(42, 42))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	names := []string{"SG1", "SG2", "..", ".", "%2e%2e", "a/b", "Mailbox1.edb", "E0000000001.log", "group.json", strings.Repeat("x", 300), "\x00", "%00", ""}
	bodies := []string{"", "{}", "null", "[]", `{"type":"full"}`, `{"type":"incremental"}`, `{"type":"bogus"}`, `{"success":true,"set_id":"x"}`,
		`{"writes":null}`, `{"db":"Mailbox1","table":"t"}`, `{"db":"Mailbox1","table":"t","start":"AA==","limit":100000}`,
		`{"writes":[{"db":"Public","table":"t","key":"AA==","delete":true}]}`, strings.Repeat("[", 10000), `{"reason":"` + strings.Repeat("r", 5000) + `"}`}
	var sessions []string
	for i := range 400 {
		var path string
		switch rng.IntN(4) {
		case 0:
			path = "/v1/groups/" + pick(names...) + pick("", "/backup", "/get", "/scan", "/commit", "/x")
		case 1:
			id := pick(append(sessions, "00000000000000000000000000000000", "short", strings.Repeat("f", 32))...)
			path = "/v1/sessions/" + id + pick("/files", "/files/"+pick(names...), "/logs", "/truncate", "/end", "/abort", "/keepalive", "")
		case 2:
			path = pick("/metrics", "/healthz", "/", "/v1", "/v1/groups", "/v2/groups")
		default:
			b := make([]byte, rng.IntN(40))
			for j := range b {
				b[j] = byte(rng.IntN(128))
			}
			path = "/" + url.PathEscape(string(b))
		}
		method := pick("GET", "POST", "PUT", "DELETE", "HEAD")
		body := []byte(pick(bodies...))
		rec := serve(srv, method, path, body, testToken)
		checkResponse(t, method, path, body, rec)
		if strings.HasSuffix(path, "/backup") && rec.Code == 200 {
			var br storeapi.BeginResponse
			json.Unmarshal(rec.Body.Bytes(), &br)
			sessions = append(sessions, br.Session)
		}
		_ = i
	}
}
