package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	apigateway "github.com/novaedge/novaedge/examples/api-gateway"
	"github.com/novaedge/novaedge/host/reload"
)

func newDemoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the reference API gateway on localhost with three demo services",
		Long: `Run the reference use case (examples/api-gateway) on localhost: three demo
services (users, orders, products on 127.0.0.1:18081-18083), a development
token issuer (JWKS on 127.0.0.1:18090, standing in for auth.example.com) and
the gateway on 127.0.0.1:8080 (HTTP) and 127.0.0.1:8443 (HTTPS, TLS 1.3, for
api.example.com), from the resources embedded in the binary. It prints a
valid token and commands to try. Ctrl-C stops all.

On first start it makes a development CA and a certificate it signs for
api.example.com, localhost and 127.0.0.1, under <state-dir>/demo-tls (or,
if the state directory cannot be written, the user's cache directory), and
keeps them for later starts; the HTTPS listener serves that certificate
(the demo's --secrets-dir is <that>/secrets).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			logger, err := newLogger(cmd.ErrOrStderr(), s.LogLevel, s.LogFormat)
			if err != nil {
				return err
			}
			stop, err := apigateway.StartServices(cmd.Context(), apigateway.Services(), logger)
			if err != nil {
				return err
			}
			defer stop()
			// A local token issuer stands in for auth.example.com: the
			// JWT policy fetches its JWKS, and its tokens pass.
			issuer, err := apigateway.StartIssuer(apigateway.DevIssuerAddr)
			if err != nil {
				return err
			}
			defer issuer.Close()
			token, err := issuer.Token("user-42", 24*time.Hour)
			if err != nil {
				return err
			}
			dev, err := demoTLS(s, logger)
			if err != nil {
				return err
			}
			s.SecretsDir = dev.SecretsDir
			printDemoHelp(cmd.OutOrStdout(), demoAdminCurl(s), token, dev.CAFile)
			load := reload.Documents(apigateway.DemoFiles(issuer.URL), isBundled)
			return serve(cmd.Context(), s, logger, load, nil) // embedded files: nothing to watch
		},
	}
	addSettingsFlags(cmd)
	return cmd
}

// demoTLS makes or finds the demo's CA and certificate under the state
// directory, or the user's cache directory if that cannot be written (the
// default state directory needs root).
func demoTLS(s *settings, logger *slog.Logger) (apigateway.DevTLS, error) {
	dir := filepath.Join(s.StateDir, "demo-tls")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		cache, cerr := os.UserCacheDir()
		if cerr != nil {
			return apigateway.DevTLS{}, fmt.Errorf("demo TLS: %w", err)
		}
		logger.Info("state directory not writable: the demo keeps its TLS files in the user's cache directory", "state_dir", s.StateDir, "error", err)
		s.StateDir = filepath.Join(cache, "novaedge")
		dir = filepath.Join(s.StateDir, "demo-tls")
	}
	dev, err := apigateway.EnsureDevTLS(dir)
	if err != nil {
		return dev, err
	}
	if dev.Created {
		logger.Info("demo certificate issued by the development CA", "ca", dev.CAFile, "hosts", apigateway.DevHosts)
	}
	return dev, nil
}

// demoAdminCurl is the curl command line that reads the demo's admin API
// (with a token from NOVAEDGE_ADMIN_TOKEN when it needs one), up to the
// path.
func demoAdminCurl(s *settings) string {
	c := "curl -s "
	if s.AdminTokens != "" {
		c += `-H "Authorization: Bearer $NOVAEDGE_ADMIN_TOKEN" `
	}
	if s.AdminTLSCert != "" {
		return c + "-k https://" + s.Admin
	}
	return c + s.Admin
}

func printDemoHelp(w io.Writer, adminCurl, token, caFile string) {
	fmt.Fprintf(w, `
NovaEdge demo: the reference API gateway on http://localhost:8080 and https://api.example.com:8443
  (users, orders and products demo services on 127.0.0.1:18081-18083;
   a development token issuer for https://auth.example.com on 127.0.0.1:18090)

A valid token (RS256, sub user-42, 24h):
  export TOKEN=%[2]s

Try, in another terminal:
  curl -si localhost:8080/api/v1/users/42                     # → 401 + WWW-Authenticate: no token
  curl -si -H "Authorization: Bearer $TOKEN" -H 'X-API-Key: demo' localhost:8080/api/v1/users/42
                                                              # → 200 from users, X-RateLimit-*, security headers
  curl -sZ --parallel-max 20 -o /dev/null -w '%%{http_code}\n' -H "Authorization: Bearer $TOKEN" -H 'X-API-Key: burst' \
    'localhost:8080/api/v1/products?[1-300]' 2>/dev/null | sort | uniq -c   # → ~200 × 200, then 429s (burst 200, 100/s)
  curl -si -H "Authorization: Bearer $TOKEN" -H 'X-API-Key: burst' localhost:8080/api/v1/products   # → 429, Retry-After, JSON
  curl -si -X OPTIONS -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: POST' \
    localhost:8080/api/v1/orders                              # → 204 CORS preflight, answered by the gateway
  curl -s --cacert %[3]s --resolve api.example.com:8443:127.0.0.1 \
    -H "Authorization: Bearer $TOKEN" https://api.example.com:8443/api/v1/orders   # → orders over HTTPS (TLS 1.3, h2; LeastConn)
  curl -si -H 'Host: api.example.com' localhost:8080/api/v1/orders   # → 301 to https://api.example.com:8443/… (sslRedirect)
  curl -si -H "Authorization: Bearer $TOKEN" localhost:8080/api/v1/usersX   # → 404: prefixes match whole segments
  go run ./cmd/novaedge status                                # the running gateway and its plugins, as tables
  %[1]s/status                                  # the admin API (also /config, /metrics, /healthz, /readyz)

Walk-through: examples/api-gateway/README.md. Ctrl-C stops everything.

`, adminCurl, token, caFile)
}
