package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/observe"
)

// portHandler serves one bound address. It reads the current generation
// once per request; the request sees that generation from start to end.
type portHandler struct {
	g   *Gateway
	key string // bind address
}

func (p *portHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := p.g.acquire()
	if st == nil {
		writeError(w, http.StatusServiceUnavailable, "gateway is shutting down", requestID(r)[0])
		return
	}
	defer st.release()
	pr := st.ports[p.key]
	if pr == nil {
		writeError(w, http.StatusNotFound, "no listener", requestID(r)[0])
		return
	}
	if st.observed {
		rec, ow := observe.Start(p.g.opts.Metrics, pr.obs, w, r)
		defer rec.Finish()
		w = ow
	}
	st.serve(w, r, pr)
}

// requestID returns the client's X-Request-ID if it is acceptable, or a
// new one, and records it on the request headers. The returned slice is
// the header value, shared read-only with the response headers.
func requestID(r *http.Request) []string {
	if vs := r.Header["X-Request-Id"]; len(vs) == 1 && validRequestID(vs[0]) {
		return vs
	}
	vs := []string{newRequestID()}
	r.Header["X-Request-Id"] = vs
	return vs
}

// headersOverLimits reports whether a request has more header fields
// than the listener's maxHeaderCount, or a header block (request line
// and field lines) larger than its maxHeaderBytes: net/http enforces the
// latter only approximately (an HTTP/1 block may run 4 KiB over; HTTP/2
// counts HPACK's sizes), and counts no fields. It also reports whether a
// field name has an underscore (one pass over the fields, for
// headersWithUnderscores).
func headersOverLimits(r *http.Request, l configs.ClientLimits) (over, underscore bool) {
	maxCount := l.MaxHeaderCount
	if maxCount <= 0 {
		maxCount = 100
	}
	maxBytes := l.MaxHeaderBytes.B(60 << 10)
	n := 1 // Host (net/http keeps it out of r.Header)
	size := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len(r.Host) + len("Host: \r\n")
	for k, vv := range r.Header {
		n += len(vv)
		for _, v := range vv {
			size += len(k) + len(v) + 4 // "k: v\r\n"
		}
		if !underscore && strings.IndexByte(k, '_') >= 0 {
			underscore = true
		}
	}
	return n > maxCount || int64(size) > maxBytes, underscore
}

// cleanPath resolves dot segments and repeated slashes so that routing,
// policies and the backend all see one spelling of a path (no
// "/api/v1/users/../admin" around a route's policies). It allocates only
// when the path needs cleaning.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func (st *state) serve(w http.ResponseWriter, r *http.Request, pr *portRouter) {
	overLimits, underscore := headersOverLimits(r, pr.limits)
	// Hop-by-hop headers go first, before anything reads the headers: a
	// Connection token cannot remove what the gateway or a policy sets
	// later (the request ID, X-Consumer).
	hop := removeHopHeaders(r.Header)
	if hop.upgrade != "" {
		// What the client asked for stays visible to the policies and the
		// cache (an upgrade is never served from it), as in Envoy;
		// forward decides what of it the rule lets through.
		r.Header["Connection"] = []string{"Upgrade"}
		r.Header["Upgrade"] = []string{hop.upgrade}
	}
	ids := requestID(r)
	w.Header()["X-Request-Id"] = ids
	id := ids[0]

	if overLimits {
		observe.RecordOf(w).SetClientError("header_limits")
		closeAfter(w, r)
		writeError(w, http.StatusRequestHeaderFieldsTooLarge, "too many or too large request headers", id)
		return
	}
	if underscore && underscoreHeaders(r.Header, pr.limits.HeadersWithUnderscores) {
		observe.RecordOf(w).SetClientError("underscore_header")
		writeError(w, http.StatusBadRequest, "request header names with underscores are refused", id)
		return
	}
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// RFC 9112 §6.1: a request with both Transfer-Encoding and
		// Content-Length must have its connection closed after the
		// response. net/http removes Content-Length from a chunked
		// request before the handler runs, so the two cannot be told
		// apart here: every chunked HTTP/1.1 request closes its
		// connection (HAProxy closes on the pair too). Chunked uploads
		// lose keep-alive, nothing else.
		closeAfter(w, r)
	}
	var body *clientBody
	if r.Body != nil && r.Body != http.NoBody {
		minRate := pr.limits.MinBodyRate.B(0)
		if r.ProtoMajor == 2 && isGRPC(r.Header) {
			// A gRPC client stream sends messages when it has them: its
			// pauses are the protocol's, not a slow client's. (gRPC is
			// HTTP/2 only: on HTTP/1 the content type would be a way
			// around the limit.)
			minRate = 0
		}
		body = newClientBody(w, r, pr.limits.BodyReadTimeout.D(0), minRate)
		defer body.finish()
		r.Body = body
	}

	if r.URL.Path != "" && r.URL.Path[0] != '/' || r.Method == http.MethodConnect {
		writeError(w, http.StatusBadRequest, "bad request target", id)
		return
	}
	if p := cleanPath(r.URL.Path); p != r.URL.Path {
		r.URL.Path = p
		r.URL.RawPath = ""
	}

	host := normalizeHost(r.Host)
	// A request must be for a host of the listener its TLS handshake
	// chose (by SNI): one of another HTTPS listener on the port would get
	// that one's certificate and TLS settings (a TLS1.3-only listener
	// reached over TLS 1.2). 421 lets the client retry on a connection of
	// its own, as it does after HTTP/2 connection coalescing.
	if r.TLS != nil && pr.tls != nil && pr.tls.Config(r.TLS.ServerName) != pr.tls.Config(host) {
		writeError(w, http.StatusMisdirectedRequest, "the request's host is not the TLS server name's", id)
		return
	}
	table := pr.hosts.lookup(host)
	if table == nil {
		writeError(w, http.StatusNotFound, "no listener for host", id)
		return
	}
	// Identities are a policy's to assert: a client's copies go before
	// routing and the policies, on every route.
	table.identity.strip(r.Header)
	peer := peerAddr(r.RemoteAddr)
	trusted := table.trusted.contains(peer)
	client := peer
	if trusted {
		client = table.trusted.clientAddr(peer, r.Header["X-Forwarded-For"])
	}
	rec := observe.RecordOf(w)
	rec.Begin(st.obs[table.gateway], id, client)

	if table.redirect != nil && r.TLS == nil && serveSchemeRedirect(w, r, table.redirect, id) {
		return
	}
	if table.compress != nil {
		// Outermost: what goes to the client, after the policies.
		cw := table.compress.Wrap(w, r)
		defer cw.Close()
		w = cw
	}
	m := table.best(r, r.URL.Path)
	if m == nil {
		writeError(w, http.StatusNotFound, "no route", id)
		return
	}
	rl := m.rule
	// The backend is chosen once, before the policies, so that they see
	// the one the request goes to (cluster_name) even on a canary split.
	var wb *weightedBackend
	if len(rl.backends) > 0 {
		wb = rl.pickBackend()
		rec.SetRoute(rl.routeKey, wb.name)
	} else {
		rec.SetRoute(rl.routeKey, "")
	}

	var cr *chainRun
	if len(m.policies) > 0 {
		cr = &chainRun{}
		defer cr.done()
		// The client, as far as the listener trusts its proxies, is what
		// policies see as source.address (as Envoy's remote address with
		// trusted hops); its port only when it is the peer.
		src := addrPort(r.RemoteAddr)
		if client != src.Addr() {
			src = netip.AddrPortFrom(client, 0)
		}
		info := StreamInfo{RequestID: id, Route: rl.routeKey, Rule: rl.name, Client: src, State: &RequestState{}}
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			info.Local = addrPort(la.String())
		}
		if wb != nil {
			info.Backend = wb.name
		}
		if !st.runRequest(r.Context(), w, r, m.policies, info, cr) {
			return
		}
	}

	if rd := rl.redirect; rd != nil {
		st.redirect(w, r, rd, m, pr)
		return
	}

	// Body limits: the listener's and the rule's, whichever is smaller.
	limit := table.maxBody
	if rl.maxBody > 0 && (limit == 0 || rl.maxBody < limit) {
		limit = rl.maxBody
	}
	if limit > 0 {
		if r.ContentLength > limit {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large", id)
			return
		}
		if r.ContentLength < 0 {
			// The server's own writer: past the limit it closes the
			// connection instead of reading the rest.
			r.Body = http.MaxBytesReader(observe.Unwrap(w), r.Body, limit)
		}
	}

	if wb == nil {
		writeError(w, http.StatusInternalServerError, "route has no backend", id)
		return
	}
	if cr != nil && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 && cr.hasBody() {
		if !st.prepareRequestBody(r.Context(), w, r, cr, id) {
			return
		}
	}

	ctx := r.Context()
	if rl.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rl.timeout)
		defer cancel()
	}
	fr := &forwardReq{
		id:      id,
		rule:    rl,
		match:   m,
		peer:    peer,
		client:  client,
		trusted: trusted,
		chain:   cr,
		backend: wb,
		rec:     rec,
		hop:     hop,
		body:    body,
	}
	if table.cache != nil {
		st.serveCached(ctx, w, r, fr, table.cache)
		return
	}
	st.forward(ctx, w, r, fr)
}

// redirect answers a rule whose action is a redirect.
func (st *state) redirect(w http.ResponseWriter, r *http.Request, rd *configs.Redirect, m *matchEntry, pr *portRouter) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if rd.Scheme != "" {
		scheme = rd.Scheme
	}
	host := r.Host
	port := ""
	if h, p, ok := splitHostPort(host); ok {
		host, port = h, p
	}
	if rd.Hostname != "" {
		host = rd.Hostname
	}
	switch {
	case rd.Port != 0:
		port = strconv.Itoa(rd.Port)
	case rd.Scheme != "":
		port = "" // a new scheme implies its default port
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	p := r.URL.Path
	if rp := rd.Path; rp != nil {
		p = rewritePath(p, rp.Type, rp.Value, m)
	}
	u := scheme + "://" + host
	if port != "" {
		u += ":" + port
	}
	u += p
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	code := rd.StatusCode
	if code == 0 {
		code = http.StatusFound
	}
	w.Header()["Location"] = []string{u}
	w.Header()["Content-Length"] = []string{"0"}
	w.WriteHeader(code)
}

// rewritePath applies a ReplacePrefixMatch or ReplaceFullPath rewrite.
func rewritePath(p, typ, value string, m *matchEntry) string {
	if typ == "ReplaceFullPath" {
		return value
	}
	// ReplacePrefixMatch: only PathPrefix matches are allowed with it.
	rest := p[len(m.value):]
	if m.value == "" {
		rest = strings.TrimPrefix(p, "/")
		if rest != "" {
			rest = "/" + rest
		}
	}
	v := strings.TrimSuffix(value, "/")
	switch {
	case v == "" && rest == "":
		return "/"
	case v == "":
		return rest
	default:
		return v + rest
	}
}

// addrPort parses "ip:port", or returns the zero AddrPort.
func addrPort(s string) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(s)
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// splitHostPort splits "host:port", tolerating IPv6 brackets.
func splitHostPort(hp string) (host, port string, ok bool) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 || strings.Contains(hp[i:], "]") {
		return hp, "", false
	}
	return hp[:i], hp[i+1:], true
}
