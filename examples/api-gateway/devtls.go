package apigateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"

	"github.com/novaedge/novaedge/host/tlsconf/devcert"
)

// DevHosts are the names the demo's certificate is valid for.
var DevHosts = []string{"api.example.com", "localhost", "127.0.0.1"}

// DevTLS is the demo's TLS material under a state directory.
type DevTLS struct {
	// SecretsDir holds api-system/api-tls-cert/tls.{crt,key}, the secret
	// the HTTPS listener names.
	SecretsDir string
	// CAFile is the development CA's certificate (curl --cacert).
	CAFile string
	// Created reports whether this call issued the certificate.
	Created bool
}

// EnsureDevTLS returns the demo's TLS material under dir, making it on
// first use: a development CA (dir/ca.crt, ca.key) and a certificate it
// signs for DevHosts, written as the secret api-system/api-tls-cert under
// dir/secrets. Later calls keep both; the certificate is issued again if
// it is missing, unreadable, not from this CA, or expires within 30 days.
func EnsureDevTLS(dir string) (DevTLS, error) {
	ca, err := devcert.LoadOrCreateCA(dir, "NovaEdge demo CA")
	if err != nil {
		return DevTLS{}, fmt.Errorf("demo CA: %w", err)
	}
	d := DevTLS{SecretsDir: filepath.Join(dir, "secrets"), CAFile: filepath.Join(dir, "ca.crt")}
	secret := filepath.Join(d.SecretsDir, "api-system", "api-tls-cert")
	if leafUsable(secret, ca.Cert) {
		return d, nil
	}
	certPEM, keyPEM, err := ca.Issue(devcert.Leaf{Hosts: DevHosts})
	if err != nil {
		return DevTLS{}, fmt.Errorf("demo certificate: %w", err)
	}
	if err := devcert.WriteSecret(secret, certPEM, keyPEM); err != nil {
		return DevTLS{}, fmt.Errorf("demo certificate: %w", err)
	}
	d.Created = true
	return d, nil
}

func leafUsable(secret string, ca *x509.Certificate) bool {
	pair, err := tls.LoadX509KeyPair(filepath.Join(secret, "tls.crt"), filepath.Join(secret, "tls.key"))
	if err != nil {
		return false
	}
	if pair.Leaf.CheckSignatureFrom(ca) != nil {
		return false
	}
	return time.Until(pair.Leaf.NotAfter) > 30*24*time.Hour
}
