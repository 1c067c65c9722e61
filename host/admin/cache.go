package admin

import (
	"errors"
	"net/http"

	"github.com/novaedge/novaedge/host/proxy"
)

// purgeCache serves POST /cache/purge: it removes the cached responses
// whose key ("host/path?query", e.g. "api.example.com/api/v1/users")
// starts with the prefix query parameter (none: every response), from
// the cache of the gateway named by the gateway parameter
// ("namespace/name"; none: every gateway's), and answers
// {"purged": n}.
func (s *Server) purgeCache(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	n, err := s.gw.PurgeCache(q.Get("gateway"), q.Get("prefix"))
	if errors.Is(err, proxy.ErrNoSuchCache) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	s.log.Info("cache purged", "gateway", q.Get("gateway"), "prefix", q.Get("prefix"), "purged", n)
	writeJSON(w, http.StatusOK, map[string]int{"purged": n})
}
