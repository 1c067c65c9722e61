package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
)

// upgrade completes a protocol switch (WebSocket and the like): the 101
// goes back to the client, then bytes are copied both ways until either
// side closes. The gateway tracks the hijacked connection so a shutdown
// can close it once its grace period is over.
func (st *state) upgrade(w http.ResponseWriter, r *http.Request, resp *http.Response, asked string, fr *forwardReq) {
	back, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		writeError(w, http.StatusBadGateway, "upstream switched protocols without a usable connection", fr.id)
		return
	}
	got := resp.Header.Get("Upgrade")
	if !offered(asked, got) {
		back.Close()
		writeError(w, http.StatusBadGateway, "upstream switched to a protocol the client did not ask for", fr.id)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		back.Close()
		writeError(w, http.StatusInternalServerError, "cannot switch protocols on this connection", fr.id)
		return
	}
	untrack := st.g.trackConn(conn)
	defer untrack()
	defer conn.Close()
	defer back.Close()

	removeHopHeaders(resp.Header)
	resp.Header["Connection"] = []string{"Upgrade"}
	resp.Header["Upgrade"] = []string{got}
	resp.Header["X-Request-Id"] = []string{fr.id}
	fr.rule.respHeaders.apply(resp.Header)
	if _, err := io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return
	}
	if err := resp.Header.Write(brw); err != nil {
		return
	}
	if _, err := io.WriteString(brw, "\r\n"); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	// Bytes the client sent after its request, already buffered.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := back.Write(b); err != nil {
			return
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(back, conn)
		// The client finished sending: tell the backend, if it can hear it.
		if cw, ok := back.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			back.Close()
		}
	}()
	io.Copy(conn, back)
	conn.Close()
	back.Close()
	wg.Wait()
}

// offered reports whether got, the protocol a backend switched to, is one
// of asked, the protocols the request asked for ("websocket, foo/2").
func offered(asked, got string) bool {
	if got == "" {
		return false
	}
	for _, p := range strings.Split(asked, ",") {
		if strings.EqualFold(strings.TrimSpace(p), got) {
			return true
		}
	}
	return false
}
