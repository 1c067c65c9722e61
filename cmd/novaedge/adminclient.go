package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/novaedge/novaedge/host/admin"
)

// adminClient is how the CLI's commands (status, reload, plugin reload)
// reach a running gateway's admin API: its address, and the credentials
// the admin API asks for when it has some.
type adminClient struct {
	cmd       *cobra.Command
	addr      string // host:port, or http:// or https:// and host:port
	token     string
	tokenFile string
	caFile    string // verifies an HTTPS admin API's certificate
	certFile  string // a client certificate for mutual TLS
	keyFile   string
}

// addAdminClientFlags declares the flags of a command that calls the
// admin API. Each flag falls back on an environment variable when not
// given: NOVAEDGE_ADMIN, NOVAEDGE_ADMIN_TOKEN, NOVAEDGE_ADMIN_TOKEN_FILE,
// NOVAEDGE_ADMIN_CACERT, NOVAEDGE_ADMIN_CERT, NOVAEDGE_ADMIN_KEY.
func addAdminClientFlags(cmd *cobra.Command) *adminClient {
	a := &adminClient{cmd: cmd}
	f := cmd.Flags()
	f.StringVar(&a.addr, "admin", defaultAdmin, "admin API address (host:port; https://host:port for an admin API with TLS) [NOVAEDGE_ADMIN]")
	f.StringVar(&a.token, "admin-token", "", "admin API bearer token (a flag shows in ps: prefer the variable or --admin-token-file) [NOVAEDGE_ADMIN_TOKEN]")
	f.StringVar(&a.tokenFile, "admin-token-file", "", "file holding the admin API bearer token [NOVAEDGE_ADMIN_TOKEN_FILE]")
	f.StringVar(&a.caFile, "admin-cacert", "", "CA (PEM) of an HTTPS admin API's certificate [NOVAEDGE_ADMIN_CACERT]")
	f.StringVar(&a.certFile, "admin-cert", "", "client certificate (PEM) for an admin API with mutual TLS [NOVAEDGE_ADMIN_CERT]")
	f.StringVar(&a.keyFile, "admin-key", "", "client key (PEM) for --admin-cert [NOVAEDGE_ADMIN_KEY]")
	return a
}

// fromEnv fills the flags not given from the environment.
func (a *adminClient) fromEnv() {
	for _, e := range []struct {
		flag, env string
		v         *string
	}{
		{"admin", "NOVAEDGE_ADMIN", &a.addr},
		{"admin-token", "NOVAEDGE_ADMIN_TOKEN", &a.token},
		{"admin-token-file", "NOVAEDGE_ADMIN_TOKEN_FILE", &a.tokenFile},
		{"admin-cacert", "NOVAEDGE_ADMIN_CACERT", &a.caFile},
		{"admin-cert", "NOVAEDGE_ADMIN_CERT", &a.certFile},
		{"admin-key", "NOVAEDGE_ADMIN_KEY", &a.keyFile},
	} {
		if v, ok := os.LookupEnv(e.env); ok && !a.cmd.Flags().Changed(e.flag) {
			*e.v = v
		}
	}
}

// do sends a request to the admin API, with the token if there is one
// and X-NovaEdge-Admin (a change must not look like a browser's simple
// cross-origin request).
func (a *adminClient) do(method, path string, timeout time.Duration) (*http.Response, error) {
	a.fromEnv()
	base := a.addr
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	token := a.token
	if token == "" && a.tokenFile != "" {
		b, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if strings.HasPrefix(base, "https://") {
		conf := &tls.Config{MinVersion: tls.VersionTLS12}
		if a.caFile != "" {
			pem, err := os.ReadFile(a.caFile)
			if err != nil {
				return nil, fmt.Errorf("admin CA: %w", err)
			}
			conf.RootCAs = x509.NewCertPool()
			if !conf.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("admin CA %s: no PEM certificate", a.caFile)
			}
		}
		if a.certFile != "" || a.keyFile != "" {
			cert, err := tls.LoadX509KeyPair(a.certFile, a.keyFile)
			if err != nil {
				return nil, fmt.Errorf("admin client certificate: %w", err)
			}
			conf.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = conf
	}
	req, err := http.NewRequestWithContext(a.cmd.Context(), method, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-NovaEdge-Admin", "1")
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: timeout, Transport: tr}
	defer tr.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the admin API at %s (is novaedge running? --admin sets the address): %w", a.addr, err)
	}
	return resp, nil
}

// refused explains a response that refused the CLI's credentials.
func refused(resp *http.Response, body []byte) error {
	msg := strings.TrimSpace(string(body))
	var hint string
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		hint = " (give a token: --admin-token, NOVAEDGE_ADMIN_TOKEN or --admin-token-file)"
	case http.StatusForbidden:
		hint = " (this needs a token with the write role)"
	default:
		return nil
	}
	return fmt.Errorf("admin API: %s: %s%s", resp.Status, msg, hint)
}

func newAdminCmd() *cobra.Command {
	var role, name string
	tokenCmd := &cobra.Command{
		Use:   "token",
		Short: "Make an admin API bearer token and its line for the tokens file",
		Long: `Make a random admin API bearer token (256 bits) and print it, then the line
that grants it --role under --name in the tokens file (--admin-tokens of
novaedge run): only the token's SHA-256 is stored there. Give the token to
the clients (novaedge status/reload/plugin take --admin-token,
NOVAEDGE_ADMIN_TOKEN or --admin-token-file; others send
"Authorization: Bearer TOKEN"). A running gateway reads the tokens file
again on SIGHUP and when it changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := admin.ParseRole(role)
			if err != nil {
				return err
			}
			if name == "" {
				return errors.New("--name is required: it names the token in the audit log")
			}
			token, line, err := admin.NewToken(r, name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "# the token (shown once; give it to the client):\n%s\n", token)
			fmt.Fprintf(out, "# the line for the tokens file (--admin-tokens):\n%s\n", line)
			return nil
		},
	}
	tokenCmd.Flags().StringVar(&role, "role", "read", "the token's role: read or write")
	tokenCmd.Flags().StringVar(&name, "name", "", "the token's name, as the audit log shows it (letters, digits, . _ - @)")
	cmd := &cobra.Command{Use: "admin", Short: "Manage access to the admin API"}
	cmd.AddCommand(tokenCmd)
	return cmd
}

// readBody reads a response's body, at most limit bytes.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}
