package proxy

import (
	"net/http"
	"strconv"
)

// writeError answers with a gateway-made error: a small JSON body
// {"error":…,"status":…,"request_id":…}. Every response the gateway makes
// itself (rather than a backend) goes through here.
func writeError(w http.ResponseWriter, status int, msg, requestID string) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	b := make([]byte, 0, 96+len(msg)+len(requestID))
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, msg)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"request_id":`...)
	b = strconv.AppendQuote(b, requestID)
	b = append(b, "}\n"...)
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}
