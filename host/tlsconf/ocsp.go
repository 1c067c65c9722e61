package tlsconf

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxOCSPResponse bounds the body read from a responder.
const maxOCSPResponse = 1 << 20

// fetchOCSP asks the leaf's first OCSP responder for its status (an
// HTTP POST of the DER request, RFC 6960 appendix A) and returns the
// response to staple when the certificate is good. The response's
// signature is checked against the issuer.
func fetchOCSP(ctx context.Context, client *http.Client, leaf, issuer *x509.Certificate) ([]byte, *ocsp.Response, error) {
	reqDER, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("OCSP request: %w", err)
	}
	url := leaf.OCSPServer[0]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return nil, nil, fmt.Errorf("OCSP responder %q: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("OCSP responder: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("OCSP responder %q: status %d", url, resp.StatusCode)
	}
	der, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponse+1))
	if err != nil {
		return nil, nil, fmt.Errorf("OCSP responder %q: %w", url, err)
	}
	if len(der) > maxOCSPResponse {
		return nil, nil, fmt.Errorf("OCSP responder %q: response over %d bytes", url, maxOCSPResponse)
	}
	parsed, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("OCSP response from %q: %w", url, err)
	}
	switch parsed.Status {
	case ocsp.Good:
	case ocsp.Revoked:
		return nil, nil, fmt.Errorf("OCSP responder %q says the certificate is revoked (at %s): not stapled", url, parsed.RevokedAt.Format(time.RFC3339))
	default:
		return nil, nil, fmt.Errorf("OCSP responder %q does not know the certificate: not stapled", url)
	}
	if !parsed.NextUpdate.IsZero() && !time.Now().Before(parsed.NextUpdate) {
		return nil, nil, errors.New("OCSP response is already past its nextUpdate: not stapled")
	}
	return der, parsed, nil
}

// refreshAt is when a stapled response is fetched again: halfway through
// its validity, or in an hour if it names no nextUpdate.
func refreshAt(r *ocsp.Response) time.Time {
	if r.NextUpdate.IsZero() {
		return time.Now().Add(time.Hour)
	}
	return r.ThisUpdate.Add(r.NextUpdate.Sub(r.ThisUpdate) / 2)
}
