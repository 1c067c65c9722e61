package admin

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// Access says how the admin API is reached and who may use it; Start
// takes it. The zero Access is plain HTTP without authentication, which
// Start allows on loopback addresses only.
type Access struct {
	// TokensFile is a file of bearer tokens (ParseTokens). It is read at
	// Start and again by ReloadTokens (SIGHUP, or a change to the file).
	TokensFile string
	// TLSCert and TLSKey (PEM files) serve the admin API over HTTPS.
	TLSCert, TLSKey string
	// ClientCA (a PEM file of CA certificates) turns on mutual TLS: a
	// client certificate verified against it authenticates its holder,
	// with the role its subject's organizational unit names ("write" or
	// "read"; neither: read). It needs TLSCert and TLSKey. A client
	// without a certificate may still connect (for /healthz, /readyz and
	// bearer tokens).
	ClientCA string
	// Hostnames are names, besides the bound address, localhost,
	// 127.0.0.1 and [::1], that the Host header may carry (the names
	// clients use to reach the admin API through DNS or a proxy).
	Hostnames []string
}

// ErrExposed is the error of Start when the admin API would listen on an
// address other hosts can reach without authentication (no tokens, no
// mutual TLS).
var ErrExposed = errors.New("the admin API would be reachable from other hosts without authentication")

// CheckExposure returns ErrExposed if an admin API without authentication
// would listen on host: "" and unspecified addresses (every interface) and
// IP addresses other than loopback ones. "localhost" is loopback; other
// names are judged by the address they bind (Start checks it again).
func CheckExposure(host string, authenticated bool) error {
	if authenticated || strings.EqualFold(host, "localhost") {
		return nil
	}
	if host == "" {
		return fmt.Errorf("%w: an empty host listens on every interface", ErrExposed)
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil {
		return nil // a name: decided by the address it binds
	}
	if !ip.IsLoopback() {
		if ip.IsUnspecified() {
			return fmt.Errorf("%w: %s listens on every interface", ErrExposed, host)
		}
		return fmt.Errorf("%w: %s is not a loopback address", ErrExposed, host)
	}
	return nil
}

// accessLevel is what an endpoint needs.
type accessLevel = Role

// open endpoints need nothing (liveness and readiness probes).
const open accessLevel = RoleNone

// principal is who made a request.
type principal struct {
	kind string // "token", "cert" or "local" (no authentication configured)
	name string // the token's name, the certificate's subject
	role Role
}

func (p principal) String() string {
	if p.kind == "" {
		return "-"
	}
	if p.name == "" {
		return p.kind
	}
	return p.kind + ":" + p.name
}

// statusWriter records the status of a response for the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// guard applies the access rules to an endpoint that needs lv: the Host
// check, the cross-origin rules, the non-simple-request rule for writes,
// authentication and the role. Every request to a write endpoint, and
// every request with a method other than GET or HEAD, gets an audit line.
func (s *Server) guard(lv accessLevel, h http.Handler) http.Handler {
	if lv == open {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		p, ok := s.admit(sw, r, lv)
		if ok {
			h.ServeHTTP(sw, r)
		}
		if lv == RoleWrite || !safeMethod(r.Method) {
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			attrs := []any{"method", r.Method, "path", r.URL.Path}
			if r.URL.RawQuery != "" {
				attrs = append(attrs, "query", r.URL.RawQuery)
			}
			attrs = append(attrs, "remote", r.RemoteAddr, "principal", p.String(), "role", p.role.String(),
				"status", status, "duration", time.Since(start).Round(time.Microsecond).String())
			s.log.Info("admin audit", attrs...)
		}
	})
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// admit decides whether r may use an endpoint that needs lv; if not, it
// answers r and returns ok false.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, lv accessLevel) (p principal, ok bool) {
	if !s.hostAllowed(r.Host) {
		writeJSON(w, http.StatusMisdirectedRequest, map[string]string{
			"error": fmt.Sprintf("Host %q is not a name of this admin API (add it with --admin-hostnames)", clipText(r.Host))})
		return p, false
	}
	if msg := crossOrigin(r); msg != "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": msg})
		return p, false
	}
	if !safeMethod(r.Method) && !nonSimple(r) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "a change needs a request a browser cannot send across origins unasked: " +
			"an Authorization: Bearer header, Content-Type: application/json or application/yaml, or X-NovaEdge-Admin: 1"})
		return p, false
	}
	p, err := s.authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="novaedge-admin"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return p, false
	}
	if p.role < lv {
		writeJSON(w, http.StatusForbidden, map[string]string{
			"error": fmt.Sprintf("%s has the %s role; %s %s needs %s", p, p.role, r.Method, r.URL.Path, lv)})
		return p, false
	}
	return p, true
}

// authenticate finds who made r: the bearer token's holder, else the
// verified client certificate's subject. Without any authentication
// configured (loopback only), everyone is local with the write role.
func (s *Server) authenticate(r *http.Request) (principal, error) {
	if !s.authenticated {
		return principal{kind: "local", role: RoleWrite}, nil
	}
	if authz := r.Header.Get("Authorization"); authz != "" {
		scheme, token, _ := strings.Cut(authz, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return principal{}, errors.New("Authorization: want Bearer TOKEN")
		}
		name, role, ok := s.tokens.Load().Lookup(strings.TrimSpace(token))
		if !ok {
			return principal{}, errors.New("invalid token")
		}
		return principal{kind: "token", name: name, role: role}, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		cert := r.TLS.PeerCertificates[0]
		return principal{kind: "cert", name: cert.Subject.String(), role: certRole(cert)}, nil
	}
	return principal{}, errors.New("authentication required: Authorization: Bearer TOKEN, or a client certificate")
}

// certRole is the role of a verified client certificate: its subject's
// organizational unit "write" or "read"; neither: read.
func certRole(c *x509.Certificate) Role {
	if slices.Contains(c.Subject.OrganizationalUnit, "write") {
		return RoleWrite
	}
	return RoleRead
}

// crossOrigin returns why r comes from another origin than the admin
// API's own, or "": an Origin header that is not this server's own
// scheme://host, or a Sec-Fetch-Site other than same-origin or none.
func crossOrigin(r *http.Request) string {
	if o, ok := r.Header["Origin"]; ok {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		if len(o) != 1 || !strings.EqualFold(o[0], scheme+"://"+r.Host) {
			return "cross-origin requests are refused (Origin is not this admin API)"
		}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return "cross-origin requests are refused (Sec-Fetch-Site: " + clipText(site) + ")"
	}
	return ""
}

// nonSimple reports whether r is a request a browser sends to another
// origin only after a CORS preflight (which the admin API never answers):
// it carries an Authorization: Bearer header, X-NovaEdge-Admin, or a JSON
// or YAML Content-Type.
func nonSimple(r *http.Request) bool {
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		return true
	}
	if r.Header.Get("X-NovaEdge-Admin") != "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return false
	}
	switch mt {
	case "application/json", "application/yaml", "application/x-yaml":
		return true
	}
	return false
}

// hostAllowed checks the Host header against the admin API's names: this
// defeats DNS rebinding, where a page of another name reaches a loopback
// address.
func (s *Server) hostAllowed(hostport string) bool {
	return s.hostnames[normalizeHost(hostport)]
}

// normalizeHost is the host of a Host header, without port, brackets or a
// final dot, in lower case.
func normalizeHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String()
	}
	return h
}

// hostnames lists the names the Host header may carry for an admin API
// bound to bound: localhost, the loopback addresses, the bound address
// (every local interface's address if it is unspecified) and extra.
func hostnames(bound net.Addr, extra []string) map[string]bool {
	names := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	if ta, ok := bound.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		ip = ip.Unmap()
		if ip.IsUnspecified() {
			if addrs, err := net.InterfaceAddrs(); err == nil {
				for _, a := range addrs {
					if pfx, err := netip.ParsePrefix(a.String()); err == nil {
						names[pfx.Addr().Unmap().String()] = true
					}
				}
			}
		} else if ip.IsValid() {
			names[ip.String()] = true
		}
	}
	for _, n := range extra {
		if n = normalizeHost(strings.TrimSpace(n)); n != "" {
			names[n] = true
		}
	}
	return names
}

// serverTLS is the admin API's TLS configuration from a's files, or nil
// for plain HTTP.
func serverTLS(a Access) (*tls.Config, error) {
	if a.TLSCert == "" && a.TLSKey == "" {
		if a.ClientCA != "" {
			return nil, errors.New("a client CA (mutual TLS) needs a certificate and key for the admin API (TLS cert and key)")
		}
		return nil, nil
	}
	if a.TLSCert == "" || a.TLSKey == "" {
		return nil, errors.New("TLS needs both a certificate and a key")
	}
	cert, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s, key %s: %w", a.TLSCert, a.TLSKey, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if a.ClientCA != "" {
		pem, err := os.ReadFile(a.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate", a.ClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// ReloadTokens reads the tokens file again (SIGHUP, or a change in its
// directory). A file that cannot be read or parsed leaves the tokens in
// force and is logged; so is the number of tokens loaded. A file whose
// content did not change is a no-op, and logs nothing: the watcher calls
// this for any change in the directory, which may hold the gateway's own
// log file.
func (s *Server) ReloadTokens() error {
	if s.tokensFile == "" {
		return nil
	}
	if data, err := os.ReadFile(s.tokensFile); err == nil {
		if cur := s.tokens.Load(); cur != nil && cur.file == sha256.Sum256(data) {
			return nil
		}
	}
	t, err := ReadTokens(s.tokensFile)
	if err != nil {
		s.log.Error("admin tokens not reloaded; the previous tokens stay in force", "error", err)
		return err
	}
	s.tokens.Store(t)
	s.log.Info("admin tokens loaded", "file", s.tokensFile, "tokens", t.Len())
	return nil
}
