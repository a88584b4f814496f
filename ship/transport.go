package ship

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
)

// newHTTPClient builds the client for cfg: proxy (from cfg or the
// environment), CA bundle, client certificate, server name.
func newHTTPClient(cfg Config) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = cfg.MaxInFlight + 1
	t.ResponseHeaderTimeout = cfg.RequestTimeout
	switch cfg.Proxy {
	case "":
		t.Proxy = http.ProxyFromEnvironment
	case "direct":
		t.Proxy = nil
	default:
		p, err := url.Parse(cfg.Proxy)
		if err != nil {
			return nil, fmt.Errorf("ship: proxy: %w", redactURLError(err))
		}
		t.Proxy = http.ProxyURL(p)
	}
	tc, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig = tc
	return &http.Client{
		Transport: t,
		// Redirects of a POST are not followed: the endpoint is misconfigured
		// and the status is reported.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       0, // per attempt, through the request context
	}, nil
}

func tlsConfig(c TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ship: tls.ca_file: %w", err)
		}
		var pool *x509.CertPool
		if !c.ReplaceSystemCAs {
			pool, err = x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
		} else {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ship: tls.ca_file: no PEM certificate in %s", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ship: tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// expandHeaders builds the request headers with ${ENV} expanded.
func expandHeaders(h map[string]string) (http.Header, error) {
	out := make(http.Header, len(h))
	for _, k := range sortedKeys(h) {
		v, err := expandEnv(h[k])
		if err != nil {
			return nil, &FieldError{Field: "headers." + k, Reason: err.Error()}
		}
		out.Set(k, v)
	}
	return out, nil
}
