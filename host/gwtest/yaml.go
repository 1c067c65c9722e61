package gwtest

import (
	"fmt"
	"strings"
)

// GatewayYAML is ProxyGateway t/gw with one HTTP listener "http" on
// 127.0.0.1:port; spec is appended after the listener as is, so it may
// hold more list items of listeners (indented 4) or more spec fields
// (indented 2).
func GatewayYAML(port int, spec string) string {
	return fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: t}
spec:
  listeners:
    - name: http
      address: 127.0.0.1
      port: %d
      protocol: HTTP
%s
`, port, spec)
}

// BackendYAML is a document "---" of ProxyBackend t/name with the given
// endpoint addresses; more spec fields (indented 2) may follow it.
func BackendYAML(name string, addrs ...string) string {
	var eps strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&eps, "    - address: %q\n", a)
	}
	return fmt.Sprintf(`---
apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata: {name: %s, namespace: t}
spec:
  endpoints:
%s`, name, eps.String())
}

// RouteYAML is a document "---" of ProxyRoute t/name whose rules are the
// given list items (indented 4).
func RouteYAML(name, rules string) string {
	return `---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: ` + name + `, namespace: t}
spec:
  rules:
` + rules
}
