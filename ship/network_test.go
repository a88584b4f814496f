package ship

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writePEM writes DER blocks as PEM into dir/name and returns the path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsSink is a sink served over TLS with httptest's own certificate; it
// returns the CA file that trusts it.
func tlsSink(t *testing.T, configure func(*tls.Config)) (*sink, string) {
	t.Helper()
	sk := &sink{t: t, got: map[int]int{}, arrived: make(chan struct{}, 1024)}
	sk.srv = httptest.NewUnstartedServer(http.HandlerFunc(sk.serve))
	sk.srv.EnableHTTP2 = false
	sk.srv.StartTLS()
	if configure != nil {
		// Restart with the extra settings on the same certificate.
		cert := sk.srv.TLS.Certificates
		sk.srv.Close()
		sk.srv = httptest.NewUnstartedServer(http.HandlerFunc(sk.serve))
		sk.srv.TLS = &tls.Config{Certificates: cert}
		configure(sk.srv.TLS)
		sk.srv.StartTLS()
	}
	t.Cleanup(sk.srv.Close)
	ca := writePEM(t, t.TempDir(), "ca.pem", "CERTIFICATE", sk.srv.Certificate().Raw)
	return sk, ca
}

func TestTLSWithOwnCA(t *testing.T) {
	t.Parallel()
	sk, ca := tlsSink(t, nil)
	tests := []struct {
		name      string
		tls       TLSConfig
		delivered bool
		wantErr   string
	}{
		{"CA added to the system pool", TLSConfig{CAFile: ca}, true, ""},
		{"CA replacing the system pool", TLSConfig{CAFile: ca, ReplaceSystemCAs: true}, true, ""},
		{"server name from config", TLSConfig{CAFile: ca, ServerName: "example.com"}, true, ""},
		{"no CA: refused for good", TLSConfig{}, false, "certificate"},
		{"wrong server name", TLSConfig{CAFile: ca, ServerName: "wrong.test"}, false, "wrong.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustNew(t, Config{URL: sk.srv.URL, TLS: tt.tls, Retry: fastRetry})
			write(t, s, 0, 3)
			if err := closeWithin(t, s, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			checkBalanced(t, st)
			if got := st.Delivered == 3; got != tt.delivered {
				t.Errorf("got %s, delivered=%v want %v", st, got, tt.delivered)
			}
			if !tt.delivered {
				le := s.LastError()
				if le == nil || !strings.Contains(le.Error(), tt.wantErr) || st.Dropped[DropRejected] != 3 || st.Retries != 0 {
					t.Errorf("LastError = %v, %s; want a %q error, rejected without retries", le, st, tt.wantErr)
				}
			}
		})
	}
}

// newCA makes a certificate authority and a function issuing client
// certificates signed by it.
func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "skein test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca, caKey := newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	sk, serverCA := tlsSink(t, func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = pool
	})
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "shipper"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile := writePEM(t, dir, "client.pem", "CERTIFICATE", der)
	keyFile := writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)

	s := mustNew(t, Config{URL: sk.srv.URL, TLS: TLSConfig{CAFile: serverCA, CertFile: certFile, KeyFile: keyFile}})
	write(t, s, 0, 10)
	if err := closeWithin(t, s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Delivered != 10 {
		t.Errorf("with a client certificate: %s", st)
	}

	// Without the client certificate the server refuses the handshake.
	s2 := mustNew(t, Config{URL: sk.srv.URL, TLS: TLSConfig{CAFile: serverCA},
		Retry: RetryConfig{InitialWait: time.Millisecond, MaxWait: time.Millisecond, MaxAttempts: 2}})
	write(t, s2, 0, 1)
	_ = closeWithin(t, s2, 10*time.Second)
	if st := s2.Stats(); st.Delivered != 0 || st.DroppedTotal() != 1 {
		t.Errorf("without a client certificate: %s", st)
	}
}

// authProxy is a forward proxy on loopback that wants Basic credentials:
// plain HTTP requests are forwarded, CONNECT is tunnelled.
type authProxy struct {
	srv     *httptest.Server
	want    string
	seen    atomic.Int32
	refused atomic.Int32
	tunnels sync.WaitGroup
	connsMu sync.Mutex
	conns   []net.Conn
}

func newAuthProxy(t *testing.T, user, pass string) *authProxy {
	p := &authProxy{want: "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.srv.Close()
		p.connsMu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.connsMu.Unlock()
		p.tunnels.Wait()
	})
	return p
}

func (p *authProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Proxy-Authorization") != p.want {
		p.refused.Add(1)
		w.Header().Set("Proxy-Authenticate", `Basic realm="corp"`)
		http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	p.seen.Add(1)
	if r.Method == http.MethodConnect {
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		client, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		p.connsMu.Lock()
		p.conns = append(p.conns, client, upstream)
		p.connsMu.Unlock()
		p.tunnels.Add(2)
		go func() {
			defer p.tunnels.Done()
			_, _ = io.Copy(upstream, rw)
			upstream.Close()
		}()
		go func() {
			defer p.tunnels.Done()
			_, _ = io.Copy(client, upstream)
			client.Close()
		}()
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Authorization")
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func TestProxyWithAuth(t *testing.T) {
	t.Parallel()
	plain := newSink(t, nil)
	secure, ca := tlsSink(t, nil)
	proxy := newAuthProxy(t, "alice", "s3cr/t")
	proxyURL := strings.Replace(proxy.srv.URL, "http://", "http://alice:s3cr%2Ft@", 1)
	for _, tc := range []struct {
		name string
		sk   *sink
		tls  TLSConfig
	}{
		{"http through the proxy", plain, TLSConfig{}},
		{"https tunnelled with CONNECT", secure, TLSConfig{CAFile: ca}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := proxy.seen.Load()
			s := mustNew(t, Config{URL: tc.sk.srv.URL, Proxy: proxyURL, TLS: tc.tls})
			write(t, s, 0, 20)
			if err := closeWithin(t, s, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			checkBalanced(t, st)
			if st.Delivered != 20 || proxy.seen.Load() == before {
				t.Errorf("got %s, proxy saw %d requests", st, proxy.seen.Load()-before)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		bad := strings.Replace(proxy.srv.URL, "http://", "http://alice:nope@", 1)
		logger, logs := testLogger()
		s := mustNew(t, Config{URL: plain.srv.URL, Proxy: bad, Logger: logger})
		write(t, s, 0, 2)
		_ = closeWithin(t, s, 10*time.Second)
		st := s.Stats()
		checkBalanced(t, st)
		if le := s.LastError(); le == nil || le.Status != http.StatusProxyAuthRequired || st.Dropped[DropRejected] != 2 {
			t.Errorf("LastError %v, %s: want 407 rejected", le, st)
		}
		if strings.Contains(logs.String(), "nope") {
			t.Errorf("the proxy password leaked into the logs:\n%s", logs)
		}
	})
}

// TestCorporateEndpoint is the structlog story's endpoint: it answers 404
// when the payload has a key it does not expect, wants the records
// double-JSON-encoded under "payload", a bearer token and a bucket. The
// configuration below is the one docs/ship.md documents.
func TestCorporateEndpoint(t *testing.T) {
	t.Setenv("CORP_LOG_TOKEN", "tok-123")
	var got sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			http.Error(w, "missing or bad token", http.StatusUnauthorized)
			return
		}
		var body map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		for k := range body {
			if k != "bucket" && k != "payload" {
				http.Error(w, "not found: unexpected key "+k, http.StatusNotFound)
				return
			}
		}
		var bucket, payload string
		if json.Unmarshal(body["bucket"], &bucket) != nil || bucket != "team-a" {
			http.Error(w, "not found: no such bucket", http.StatusNotFound)
			return
		}
		if json.Unmarshal(body["payload"], &payload) != nil {
			http.Error(w, "not found: payload must be a string", http.StatusNotFound)
			return
		}
		var recs []struct{ N int }
		if err := json.Unmarshal([]byte(payload), &recs); err != nil {
			http.Error(w, "not found: payload is not JSON", http.StatusNotFound)
			return
		}
		for _, rec := range recs {
			got.Store(rec.N, true)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	good := Config{
		URL:      srv.URL + "/ingest",
		Headers:  map[string]string{"Authorization": "Bearer ${CORP_LOG_TOKEN}"},
		Envelope: Envelope{Format: Template, Template: `{"bucket": "team-a", "payload": {{records_string}}}`},
	}
	s := mustNew(t, good)
	write(t, s, 0, 100)
	if err := closeWithin(t, s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Delivered != 100 {
		t.Fatalf("documented config: %s, last error %v", st, s.LastError())
	}
	for i := range 100 {
		if _, ok := got.Load(i); !ok {
			t.Fatalf("record %d missing", i)
		}
	}

	// A template with one key too many is refused, and the user sees why.
	bad := good
	bad.Envelope.Template = `{"bucket": "team-a", "payload": {{records_string}}, "count": {{count}}}`
	s2 := mustNew(t, bad)
	write(t, s2, 0, 1)
	_ = closeWithin(t, s2, 10*time.Second)
	if le := s2.LastError(); le == nil || le.Status != 404 || !strings.Contains(le.Body, "unexpected key count") {
		t.Errorf("LastError = %v, want the 404's reason", le)
	}

	// The token never appears in what the shipper reports.
	if strings.Contains(s2.LastError().Error(), "tok-123") {
		t.Error("the token leaked into the error")
	}
}

func TestHeadersExpandEnv(t *testing.T) {
	t.Setenv("SKEIN_TEST_KEY", "k-42")
	sk := newSink(t, nil)
	s := mustNew(t, Config{URL: sk.srv.URL, Headers: map[string]string{"X-Api-Key": "${SKEIN_TEST_KEY}", "X-Team": "core"}})
	write(t, s, 0, 1)
	if err := closeWithin(t, s, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	sk.mu.Lock()
	h := sk.headers[0]
	sk.mu.Unlock()
	if h.Get("X-Api-Key") != "k-42" || h.Get("X-Team") != "core" {
		t.Errorf("headers %v", h)
	}
	_, err := New(Config{URL: sk.srv.URL, Headers: map[string]string{"Authorization": "Bearer ${SKEIN_TEST_UNSET_VAR}"}})
	if err == nil || !strings.Contains(err.Error(), "headers.Authorization") || !strings.Contains(err.Error(), "SKEIN_TEST_UNSET_VAR") {
		t.Errorf("New with an unset variable: %v", err)
	}
}
