package policy

import (
	"fmt"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// The SecurityHeaders policy (plugins/securityheaders) decorates
// responses: it runs after every other type on the request path, so its
// response side is the first to see the upstream's response.
func init() {
	Register(Type{Name: configs.PolicySecurityHeaders, Module: "securityheaders", Order: 60, HeadersOnly: true, Config: securityHeadersPluginConfig})
}

// securityHeadersPluginConfig converts spec.securityHeaders, as is
// (hsts.maxAge is already in seconds).
func securityHeadersPluginConfig(p *configs.Policy) (any, error) {
	h := p.Spec.SecurityHeaders
	if h == nil {
		return nil, fmt.Errorf("spec.securityHeaders: required for type SecurityHeaders")
	}
	c := firstparty.SecurityHeaders{
		XFrameOptions:             h.XFrameOptions,
		XContentTypeOptions:       h.XContentTypeOptions,
		ReferrerPolicy:            h.ReferrerPolicy,
		ContentSecurityPolicy:     h.ContentSecurityPolicy,
		PermissionsPolicy:         h.PermissionsPolicy,
		CrossOriginOpenerPolicy:   h.CrossOriginOpenerPolicy,
		CrossOriginEmbedderPolicy: h.CrossOriginEmbedderPolicy,
		CrossOriginResourcePolicy: h.CrossOriginResourcePolicy,
		RemoveHeaders:             h.RemoveHeaders,
		Override:                  h.Override,
	}
	if s := h.HSTS; s != nil {
		c.HSTS = &firstparty.HSTS{Enabled: s.Enabled, MaxAge: s.MaxAge, IncludeSubDomains: s.IncludeSubDomains, Preload: s.Preload}
	}
	return c, nil
}
