package tlsconf

import (
	"fmt"
	"strings"
	"time"
)

// Check reads the secret in dir as Load would and reports what would stop
// it from serving (unreadable files, no certificate, a key that does not
// match the certificate) as an error, and what a client would refuse but
// does not stop the gateway (expired, not yet valid, expiring within a
// week, a listener hostname the certificate does not cover) as warnings.
func Check(dir string, hostnames []string, now time.Time) (warnings []string, err error) {
	_, _, pair, err := readPair(dir)
	if err != nil {
		return nil, err
	}
	leaf := pair.Leaf
	switch {
	case now.After(leaf.NotAfter):
		warnings = append(warnings, fmt.Sprintf("certificate %q expired on %s", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339)))
	case now.Before(leaf.NotBefore):
		warnings = append(warnings, fmt.Sprintf("certificate %q is not valid before %s", leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339)))
	case leaf.NotAfter.Sub(now) < 7*24*time.Hour:
		warnings = append(warnings, fmt.Sprintf("certificate %q expires on %s", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	for _, h := range hostnames {
		name := h
		if strings.HasPrefix(h, "*.") {
			name = "novaedge-check" + h[1:] // a name the wildcard stands for
		}
		if leaf.VerifyHostname(name) != nil {
			warnings = append(warnings, fmt.Sprintf("certificate %q does not cover hostname %q", leaf.Subject.CommonName, h))
		}
	}
	return warnings, nil
}
