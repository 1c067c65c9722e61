package apigateway

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/novaedge/novaedge/configs"
)

func TestFiles(t *testing.T) {
	// The strict loader accepts them together: known fields, valid
	// values, every reference resolved.
	if _, err := configs.LoadFiles(Files()); err != nil {
		t.Fatal(err)
	}

	files := Files()
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	want := []string{"backends.yaml", "gateway.yaml", "policies.yaml", "routes.yaml"}
	if !slices.Equal(names, want) {
		t.Fatalf("Files() = %q, want %q", names, want)
	}

	kinds := map[string][]string{}
	endpoints := map[string]string{}
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader(f.Data))
		for i := 0; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f.Name, i, err)
			}
			kind, _ := doc["kind"].(string)
			meta, _ := doc["metadata"].(map[string]any)
			name, _ := meta["name"].(string)
			where := f.Name + ": " + kind + " " + name
			if doc["apiVersion"] != configs.APIVersion || meta["namespace"] != "api-system" {
				t.Errorf("%s: apiVersion %v, namespace %v", where, doc["apiVersion"], meta["namespace"])
			}
			kinds[kind] = append(kinds[kind], name)
			if kind == configs.KindBackend {
				eps, _ := doc["spec"].(map[string]any)["endpoints"].([]any)
				if len(eps) == 1 {
					endpoints[strings.TrimSuffix(name, "-backend")], _ = eps[0].(map[string]any)["address"].(string)
				}
			}
		}
	}

	wantKinds := map[string][]string{
		configs.KindGateway: {"api-gateway"},
		configs.KindBackend: {"users-backend", "orders-backend", "products-backend"},
		configs.KindRoute:   {"users-route", "orders-route", "products-route"},
		configs.KindPolicy:  {"api-rate-limit", "api-jwt-auth", "api-cors", "api-security-headers"},
	}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("resources = %v, want %v", kinds, wantKinds)
	}
	// The backends point at the demo services.
	for _, s := range Services() {
		if endpoints[s.Name] != s.Addr {
			t.Errorf("%s-backend endpoint = %q, want %q", s.Name, endpoints[s.Name], s.Addr)
		}
	}
}
