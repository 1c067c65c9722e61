package upstream

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/novaedge/novaedge/configs"
)

func hashBackend(t *testing.T, policy string, ch *configs.ConsistentHash) *Backend {
	spec := explicitSpec(policy, 1, 1)
	spec.ConsistentHash = ch
	return newTestBackend(t, spec, Options{})
}

func request(headers ...string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://api.example.com/x", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestHashKey(t *testing.T) {
	ip4 := netip.MustParseAddr("192.0.2.7")
	tests := []struct {
		name   string
		policy string
		ch     *configs.ConsistentHash
		req    *http.Request
		ip     netip.Addr
		want   uint64 // 0 with random set: any value, but not stable
		random bool
	}{
		{"other policy", "RoundRobin", &configs.ConsistentHash{Header: "X-User"}, request("X-User", "u1"), ip4, 0, false},
		{"header", "RingHash", &configs.ConsistentHash{Header: "x-user"}, request("X-User", "u1", "X-User", "u2"), ip4, xxhash.Sum64String("u1"), false},
		{"header missing", "Maglev", &configs.ConsistentHash{Header: "X-User"}, request(), ip4, 0, true},
		{"host header", "RingHash", &configs.ConsistentHash{Header: "Host"}, request(), ip4, xxhash.Sum64String("api.example.com"), false},
		{"cookie", "RingHash", &configs.ConsistentHash{Cookie: "session"}, request("Cookie", "a=1; session=abc; b=2"), ip4, xxhash.Sum64String("abc"), false},
		{"quoted cookie on a second line", "Maglev", &configs.ConsistentHash{Cookie: "session"}, request("Cookie", "a=1", "Cookie", `session="abc"`), ip4, xxhash.Sum64String("abc"), false},
		{"cookie prefix is not the cookie", "Maglev", &configs.ConsistentHash{Cookie: "session"}, request("Cookie", "sessionid=zzz"), ip4, 0, true},
		{"cookie missing", "RingHash", &configs.ConsistentHash{Cookie: "session"}, request(), ip4, 0, true},
		{"source IP", "RingHash", &configs.ConsistentHash{SourceIP: true}, request(), ip4, hashIP(ip4), false},
		{"source IP, IPv4-mapped", "RingHash", &configs.ConsistentHash{SourceIP: true}, request(), netip.MustParseAddr("::ffff:192.0.2.7"), hashIP(ip4), false},
		{"source IP unknown", "RingHash", &configs.ConsistentHash{SourceIP: true}, request(), netip.Addr{}, 0, true},
		{"hash policy without consistentHash", "RingHash", nil, request(), ip4, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hashBackend(t, tt.policy, tt.ch)
			k1, k2 := b.HashKey(tt.req, tt.ip), b.HashKey(tt.req, tt.ip)
			if tt.random {
				if k1 == k2 {
					t.Errorf("keys %x, %x: want random keys", k1, k2)
				}
				return
			}
			if k1 != tt.want || k2 != tt.want {
				t.Errorf("keys %x, %x; want %x", k1, k2, tt.want)
			}
			if n := testing.AllocsPerRun(100, func() { b.HashKey(tt.req, tt.ip) }); n != 0 {
				t.Errorf("HashKey allocates %.0f times", n)
			}
		})
	}
}

func hashIP(a netip.Addr) uint64 {
	b := a.As16()
	return xxhash.Sum64(b[:])
}

// The same user sticks to the same endpoint.
func TestHashKeyStickiness(t *testing.T) {
	b := hashBackend(t, "RingHash", &configs.ConsistentHash{Header: "X-User"})
	first := map[string]*Endpoint{}
	for round := range 3 {
		for _, user := range []string{"alice", "bob", "carol", "dave", "erin"} {
			ep, err := b.Pick(b.HashKey(request("X-User", user), netip.Addr{}), nil)
			if err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				first[user] = ep
			} else if first[user] != ep {
				t.Errorf("%s: %s, then %s", user, first[user].addr, ep.addr)
			}
		}
	}
}
