package compress

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// apiJSON is about 100 KB of API-like JSON: a page of orders with
// customers, items, addresses and timestamps, from a fixed seed.
func apiJSON(tb testing.TB) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	first := []string{"Ada", "Grace", "Linus", "Ken", "Barbara", "Edsger", "Margaret", "Dennis", "Frances", "John"}
	last := []string{"Lovelace", "Hopper", "Torvalds", "Thompson", "Liskov", "Dijkstra", "Hamilton", "Ritchie", "Allen", "Backus"}
	cities := []string{"Berlin", "Lyon", "Austin", "Osaka", "Porto", "Leeds", "Gdansk", "Quito"}
	products := []string{"keyboard", "monitor", "cable", "laptop stand", "headset", "webcam", "dock", "mouse", "chair", "lamp"}
	statuses := []string{"pending", "paid", "shipped", "delivered", "refunded"}
	type item struct {
		SKU      string  `json:"sku"`
		Name     string  `json:"name"`
		Quantity int     `json:"quantity"`
		Price    float64 `json:"unit_price"`
	}
	type order struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Created  string `json:"created_at"`
		Updated  string `json:"updated_at"`
		Customer struct {
			ID    int    `json:"id"`
			Name  string `json:"name"`
			Email string `json:"email"`
		} `json:"customer"`
		Shipping struct {
			Street string `json:"street"`
			City   string `json:"city"`
			Zip    string `json:"postal_code"`
		} `json:"shipping_address"`
		Items []item  `json:"items"`
		Total float64 `json:"total"`
		Notes *string `json:"notes"`
	}
	var page struct {
		Data []order `json:"data"`
		Meta struct {
			Page, PerPage, Total int
		} `json:"meta"`
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; ; i++ {
		var o order
		o.ID = fmt.Sprintf("ord_%016x", rng.Uint64())
		o.Status = statuses[rng.IntN(len(statuses))]
		t := base.Add(time.Duration(rng.IntN(1e7)) * time.Second)
		o.Created = t.Format(time.RFC3339)
		o.Updated = t.Add(time.Duration(rng.IntN(1e5)) * time.Second).Format(time.RFC3339)
		f, l := first[rng.IntN(len(first))], last[rng.IntN(len(last))]
		o.Customer.ID = 10000 + rng.IntN(90000)
		o.Customer.Name = f + " " + l
		o.Customer.Email = fmt.Sprintf("%s.%s%d@example.com", f, l, rng.IntN(100))
		o.Shipping.Street = fmt.Sprintf("%d %s Street", 1+rng.IntN(300), last[rng.IntN(len(last))])
		o.Shipping.City = cities[rng.IntN(len(cities))]
		o.Shipping.Zip = fmt.Sprintf("%05d", rng.IntN(100000))
		for range 1 + rng.IntN(4) {
			it := item{SKU: fmt.Sprintf("SKU-%06d", rng.IntN(1e6)), Name: products[rng.IntN(len(products))],
				Quantity: 1 + rng.IntN(5), Price: float64(rng.IntN(50000)) / 100}
			o.Items = append(o.Items, it)
			o.Total += float64(it.Quantity) * it.Price
		}
		page.Data = append(page.Data, o)
		if b, _ := json.Marshal(page); len(b) >= 100_000 {
			page.Meta.Page, page.Meta.PerPage, page.Meta.Total = 1, len(page.Data), 4711
			b, _ = json.Marshal(page)
			return b
		}
	}
}

// countingWriter is a ResponseWriter that counts the body bytes.
type countingWriter struct {
	h http.Header
	n int64
}

func (c *countingWriter) Header() http.Header         { return c.h }
func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
func (c *countingWriter) WriteHeader(int)             {}

// BenchmarkCompress encodes ~100 KB of JSON per response as the proxy
// writes it (32 KiB reads), through a warm pool: MB/s of input and the
// ratio (input bytes / output bytes), per algorithm and configured level.
func BenchmarkCompress(b *testing.B) {
	body := apiJSON(b)
	for _, alg := range []string{"gzip", "br", "zstd"} {
		for _, level := range []int{1, 3, 6, 9, 11} {
			b.Run(fmt.Sprintf("%s/level=%d", alg, level), func(b *testing.B) {
				cfg := newConfig(b, 1024, level, alg)
				req := httptest.NewRequest("GET", "/", nil)
				req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
				cw := &countingWriter{h: http.Header{}}
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					clear(cw.h)
					cw.h["Content-Type"] = []string{"application/json"}
					cw.n = 0
					w := cfg.Wrap(cw, req)
					w.WriteHeader(200)
					for p := body; len(p) > 0; {
						n := min(len(p), 32<<10)
						w.Write(p[:n])
						p = p[n:]
					}
					w.Close()
				}
				b.ReportMetric(float64(len(body))/float64(cw.n), "ratio")
			})
		}
	}
}

// BenchmarkPassThrough is the cost of the Writer on a response it does
// not compress (the client asked for nothing).
func BenchmarkPassThrough(b *testing.B) {
	body := apiJSON(b)
	cfg := newConfig(b, 1024, 6, "gzip", "br")
	req := httptest.NewRequest("GET", "/", nil)
	cw := &countingWriter{h: http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		clear(cw.h)
		cw.h["Content-Type"] = []string{"application/json"}
		w := cfg.Wrap(cw, req)
		w.WriteHeader(200)
		w.Write(body)
		w.Close()
	}
}

func BenchmarkNegotiate(b *testing.B) {
	accept := []string{"gzip, deflate, br, zstd"}
	offered := []Algorithm{Brotli, Gzip, Zstd}
	b.ReportAllocs()
	for b.Loop() {
		Negotiate(accept, offered)
	}
}
