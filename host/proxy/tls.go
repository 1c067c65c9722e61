package proxy

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/tlsconf"
)

// loadListenerTLS takes a reference to the certificate of an HTTPS
// listener (kept across generations by secret directory: its watch and
// OCSP staple survive a reload) and adds it to the port's SNI table.
func (g *Gateway) loadListenerTLS(st *state, gw *configs.Gateway, l *configs.Listener, sni *tlsconf.SNI) error {
	ref := l.TLS.SecretRef
	ns := ref.Namespace
	if ns == "" {
		ns = gw.Metadata.Namespace
	}
	where := fmt.Sprintf("gateway %s/%s: listener %q: tls.secretRef %s/%s", gw.Metadata.Namespace, gw.Metadata.Name, l.Name, ns, ref.Name)
	minVersion, err := tlsconf.MinVersion(l.TLS.MinVersion)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	suites, err := tlsconf.CipherSuites(l.TLS.CipherSuites)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if g.opts.SecretsDir == "" {
		return fmt.Errorf("%s: no secrets directory is set (--secrets-dir)", where)
	}
	dir := tlsconf.SecretDir(g.opts.SecretsDir, ns, ref.Name)
	cert, _, err := g.keptCerts.get(dir, func() (*tlsconf.Cert, error) {
		return tlsconf.Load(dir, g.opts.TLS.withLogger(g.log))
	}, (*tlsconf.Cert).Close)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	st.heldCerts = append(st.heldCerts, dir)
	sni.Add(l.Hostnames, cert, minVersion, suites)
	return nil
}

// TLSOptions tune how certificates are watched and stapled (tests
// shorten them).
type TLSOptions tlsconf.Options

func (o TLSOptions) withLogger(l *slog.Logger) tlsconf.Options {
	if o.Logger == nil {
		o.Logger = l
	}
	return tlsconf.Options(o)
}

// wrapConn returns c as a TLS server connection if the current
// generation serves HTTPS on the address; the handshake (run by the
// http.Server) picks its settings from the generation current then, so a
// certificate or listener change applies to new handshakes without
// rebinding the socket.
func (g *Gateway) wrapConn(key string, c net.Conn) net.Conn {
	st := g.cur.Load()
	if st == nil {
		return c
	}
	if pr := st.ports[key]; pr == nil || pr.tls.Empty() {
		return c
	}
	return tls.Server(c, &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		st := g.cur.Load()
		if st == nil {
			return nil, fmt.Errorf("gateway is shutting down")
		}
		pr := st.ports[key]
		if pr == nil || pr.tls.Empty() {
			return nil, fmt.Errorf("no HTTPS listener on %s any more", key)
		}
		return pr.tls.GetConfigForClient(hello)
	}})
}
