package sdk_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/novaedge/novaedge/sdk"
	"github.com/novaedge/novaedge/sdk/sdktest"
)

type tagConfig struct {
	Header string `json:"header"`
	Deny   string `json:"deny"`
}

func (c *tagConfig) Validate() error {
	if c.Header == "" {
		return errors.New("header: required")
	}
	return nil
}

var tagPlugin = sdk.Plugin[tagConfig]{
	Name: "tag",
	Start: func(cfg *tagConfig) (sdk.NewFilter, error) {
		return func() sdk.Filter { return &tag{cfg: cfg} }, nil
	},
}

type tag struct {
	sdk.BaseFilter
	cfg  *tagConfig
	path string
}

func (t *tag) OnRequest(r *sdk.Request) sdk.Action {
	if t.cfg.Deny != "" && r.Header(t.cfg.Deny) != "" {
		return r.Deny(403, "denied by tag", [2]string{"x-denied", "1"})
	}
	t.path = r.Path()
	r.SetHeader(t.cfg.Header, r.Method()+" "+r.Query("q")+" "+r.Cookie("c")+" "+r.ClientIP())
	return sdk.Continue
}

func (t *tag) OnResponse(r *sdk.Response) sdk.Action {
	r.SetHeader("x-path", t.path)
	r.SetHeader("x-status", strings.Repeat("!", r.Status()/100))
	return sdk.Continue
}

func TestFilterThroughHarness(t *testing.T) {
	h, err := sdktest.Start(t, tagPlugin, `{"header": "x-tag", "deny": "x-no"}`)
	if err != nil {
		t.Fatal(err)
	}
	res := h.Do(sdktest.Request{
		Method: "POST", Path: "/a?q=hello%20there&z=1",
		Headers:    [][2]string{{"cookie", "a=1; c=\"cv\""}},
		ClientAddr: "10.1.2.3:4567",
	}, sdktest.Response{Status: 201})
	if res.Local != nil {
		t.Fatalf("answered: %+v", res.Local)
	}
	if got := res.Upstream.Get("x-tag"); got != "POST hello there cv 10.1.2.3" {
		t.Errorf("x-tag = %q", got)
	}
	if res.Downstream.Get("x-path") != "/a?q=hello%20there&z=1" || res.Downstream.Get("x-status") != "!!" {
		t.Errorf("response headers %v", res.Downstream)
	}

	res = h.Do(sdktest.Request{Headers: [][2]string{{"x-no", "1"}, {"x-request-id", "rid-1"}}}, sdktest.Response{})
	if res.Local == nil || res.Local.Status != 403 || res.Local.Headers.Get("x-denied") != "1" ||
		res.Local.Headers.Get("content-type") != "application/json" ||
		res.Local.Body != `{"error":"denied by tag","status":403,"request_id":"rid-1"}` {
		t.Fatalf("deny: %+v", res.Local)
	}
}

func TestBadConfigRefused(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{`{"header": ""}`, "header: required"},
		{`{"header": "x", "colour": "blue"}`, `unknown field "colour"`},
		{`{"header": 5}`, "cannot unmarshal number"},
		{``, "header: required"},
	} {
		_, err := sdktest.Start(t, tagPlugin, tc.config)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: err = %v, want %q", tc.config, err, tc.want)
		}
	}
}

func TestIPv6ClientIP(t *testing.T) {
	h, err := sdktest.Start(t, tagPlugin, `{"header": "x-tag"}`)
	if err != nil {
		t.Fatal(err)
	}
	res := h.Do(sdktest.Request{ClientAddr: "[2001:db8::1]:443"}, sdktest.Response{})
	if got := res.Upstream.Get("x-tag"); !strings.HasSuffix(got, " 2001:db8::1") {
		t.Errorf("x-tag = %q", got)
	}
}

func TestErrorBody(t *testing.T) {
	got := string(sdk.ErrorBody(429, `too "many"`, "id\n1"))
	if want := `{"error":"too \"many\"","status":429,"request_id":"id\n1"}`; got != want {
		t.Errorf("%s, want %s", got, want)
	}
}

var counterPlugin = sdk.Plugin[struct{}]{
	Name: "counter",
	Start: func(*struct{}) (sdk.NewFilter, error) {
		return func() sdk.Filter { return &counter{} }, nil
	},
}

type counter struct{ sdk.BaseFilter }

func (counter) OnRequest(r *sdk.Request) sdk.Action {
	n, err := sdk.AddShared("hits", 2)
	if err != nil {
		return r.Deny(500, err.Error())
	}
	r.SetHeader("x-hits", strconv.FormatInt(n, 10))
	return sdk.Continue
}

func TestAddShared(t *testing.T) {
	h, err := sdktest.Start(t, counterPlugin, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2", "4", "6"} {
		if got := h.Do(sdktest.Request{}, sdktest.Response{}).Upstream.Get("x-hits"); got != want {
			t.Fatalf("x-hits = %q, want %q", got, want)
		}
	}
}

// recorder notes what its filter saw, for TestContextReuse.
type recorder struct {
	sdk.BaseFilter
	started int // filters made
	done    int // OnDone calls
}

var recorded recorder

var recorderPlugin = sdk.Plugin[struct{}]{
	Name: "recorder",
	Start: func(*struct{}) (sdk.NewFilter, error) {
		return func() sdk.Filter { recorded.started++; return &recorder{} }, nil
	},
}

func (*recorder) OnRequest(r *sdk.Request) sdk.Action {
	if r.Header("x-deny") != "" {
		return r.Deny(403, "denied")
	}
	r.SetHeader("x-context-id", strconv.FormatUint(uint64(r.ContextID()), 10))
	if r.Header("x-cache-id") != "" {
		r.SetHeader("x-seen-id", r.ID()) // ID is cached in the Request
	}
	return sdk.Continue
}

func (*recorder) OnResponse(r *sdk.Response) sdk.Action {
	r.SetHeader("x-decorated", "1")
	return sdk.Continue
}

func (*recorder) OnDone() { recorded.done++ }

// TestContextReuse: the SDK reuses the HTTP context of an ended stream for
// a later one; nothing of the earlier request shows in the later: not its
// own answer (a denied request's context must still decorate the next
// response), not its cached request id. Every request gets a fresh filter
// and one OnDone.
func TestContextReuse(t *testing.T) {
	recorded = recorder{}
	h, err := sdktest.Start(t, recorderPlugin, "")
	if err != nil {
		t.Fatal(err)
	}
	seenCtx := map[string]bool{}
	for i, tc := range []struct {
		name      string
		hdr       [][2]string
		denied    bool
		decorated bool
		seenID    string
	}{
		{"denied", [][2]string{{"x-deny", "1"}, {"x-request-id", "a"}}, true, false, ""},
		{"after a denial, decorated", nil, false, true, ""},
		{"caches its id", [][2]string{{"x-cache-id", "1"}, {"x-request-id", "b"}}, false, true, "b"},
		{"does not see the earlier id", [][2]string{{"x-cache-id", "1"}, {"x-request-id", "c"}}, false, true, "c"},
		{"denied again", [][2]string{{"x-deny", "1"}}, true, false, ""},
		{"decorated again", nil, false, true, ""},
	} {
		res := h.Do(sdktest.Request{Headers: tc.hdr}, sdktest.Response{})
		if denied := res.Local != nil && res.Local.Status == 403; denied != tc.denied {
			t.Fatalf("%s: denied %v, want %v (%+v)", tc.name, denied, tc.denied, res.Local)
		}
		if got := res.Downstream.Get("x-decorated") == "1"; got != tc.decorated {
			t.Errorf("%s: decorated %v, want %v: %v", tc.name, got, tc.decorated, res.Downstream)
		}
		if got := res.Upstream.Get("x-seen-id"); got != tc.seenID {
			t.Errorf("%s: x-seen-id %q, want %q", tc.name, got, tc.seenID)
		}
		// A reused context carries its new stream's id, not the old one's.
		if id := res.Upstream.Get("x-context-id"); !tc.denied && (id == "" || seenCtx[id]) {
			t.Errorf("%s: context id %q (seen: %v)", tc.name, id, seenCtx)
		} else {
			seenCtx[id] = true
		}
		if recorded.started != i+1 || recorded.done != i+1 {
			t.Errorf("%s: %d filters, %d OnDone; want %d each", tc.name, recorded.started, recorded.done, i+1)
		}
	}
}

// TestFilters: Get gives back the filters Put kept, the last first, and
// nil when none is left.
func TestFilters(t *testing.T) {
	var fs sdk.Filters[recorder]
	if fs.Get() != nil {
		t.Fatal("a filter from an empty list")
	}
	a, b := &recorder{}, &recorder{}
	fs.Put(a)
	fs.Put(b)
	if got := fs.Get(); got != b {
		t.Fatal("not the last one put")
	}
	if got := fs.Get(); got != a {
		t.Fatal("not the first one put")
	}
	if fs.Get() != nil {
		t.Fatal("a filter after the list emptied")
	}
}
