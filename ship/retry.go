package ship

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 section 10.2.3). It reports false for anything else, and a date
// in the past is a zero wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

// permanentTransport tells transport errors that a retry cannot fix:
// certificates the shipper does not trust, or that do not match.
func permanentTransport(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}

// backoffWaits yields capped exponential waits with full jitter: the n-th
// wait is uniform in [0, min(MaxWait, InitialWait·2ⁿ)].
type backoffWaits struct {
	exp *backoff.ExponentialBackOff
}

func newBackoffWaits(r RetryConfig) backoffWaits {
	exp := &backoff.ExponentialBackOff{
		InitialInterval:     r.InitialWait,
		RandomizationFactor: 0, // we jitter fully ourselves
		Multiplier:          2,
		MaxInterval:         r.MaxWait,
	}
	exp.Reset()
	return backoffWaits{exp: exp}
}

func (w backoffWaits) next() time.Duration {
	limit := w.exp.NextBackOff()
	if limit <= 0 {
		return 0
	}
	return rand.N(limit + 1)
}
