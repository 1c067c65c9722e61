package main

import (
	"fmt"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/tlsconf"
)

// checkSecrets reads the TLS secret of every HTTPS listener of snap under
// secretsDir, as the gateway would: a secret that would stop the
// configuration from loading (missing, unreadable, a key that does not
// match its certificate) is a problem; one that would load but that
// clients would refuse (expired, not yet valid, not covering a listener
// hostname) or that expires within a week is a warning.
func checkSecrets(snap *configs.Snapshot, secretsDir string, now time.Time) (ps configs.Problems, warnings []string) {
	for _, gw := range snap.Gateways {
		for i, l := range gw.Spec.Listeners {
			if l.Protocol != "HTTPS" || l.TLS == nil || l.TLS.SecretRef == nil {
				continue
			}
			ref := l.TLS.SecretRef
			ns := ref.Namespace
			if ns == "" {
				ns = gw.Metadata.Namespace
			}
			field := fmt.Sprintf("spec.listeners[%d].tls.secretRef", i)
			ws, err := tlsconf.Check(tlsconf.SecretDir(secretsDir, ns, ref.Name), l.Hostnames, now)
			if err != nil {
				ps = append(ps, configs.Problem{File: gw.Source.File, Line: gw.Source.Line, Kind: configs.KindGateway,
					Namespace: gw.Metadata.Namespace, Name: gw.Metadata.Name, Field: field,
					Message: fmt.Sprintf("secret %s/%s: %v", ns, ref.Name, err)})
				continue
			}
			for _, w := range ws {
				warnings = append(warnings, fmt.Sprintf("%s:%d: %s %s/%s: %s: secret %s/%s: %s",
					gw.Source.File, gw.Source.Line, configs.KindGateway, gw.Metadata.Namespace, gw.Metadata.Name, field, ns, ref.Name, w))
			}
		}
	}
	return ps, warnings
}
