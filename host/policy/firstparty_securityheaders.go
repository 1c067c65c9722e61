package policy

import (
	"fmt"

	"github.com/novaedge/novaedge/configs"
)

func init() { pluginConfigs[configs.PolicySecurityHeaders] = securityHeadersPluginConfig }

func securityHeadersPluginConfig(p *configs.Policy) (any, error) {
	h := p.Spec.SecurityHeaders
	if h == nil {
		return nil, fmt.Errorf("spec.securityHeaders: required for type SecurityHeaders")
	}
	c := securityHeadersConfig{
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
		c.HSTS = &hstsConfig{Enabled: s.Enabled, MaxAge: s.MaxAge, IncludeSubDomains: s.IncludeSubDomains, Preload: s.Preload}
	}
	return c, nil
}

// securityHeadersConfig is plugins/securityheaders's Config.
type securityHeadersConfig struct {
	HSTS                      *hstsConfig `json:"hsts,omitempty"`
	XFrameOptions             string      `json:"xFrameOptions,omitempty"`
	XContentTypeOptions       bool        `json:"xContentTypeOptions,omitempty"`
	ReferrerPolicy            string      `json:"referrerPolicy,omitempty"`
	ContentSecurityPolicy     string      `json:"contentSecurityPolicy,omitempty"`
	PermissionsPolicy         string      `json:"permissionsPolicy,omitempty"`
	CrossOriginOpenerPolicy   string      `json:"crossOriginOpenerPolicy,omitempty"`
	CrossOriginEmbedderPolicy string      `json:"crossOriginEmbedderPolicy,omitempty"`
	CrossOriginResourcePolicy string      `json:"crossOriginResourcePolicy,omitempty"`
	RemoveHeaders             []string    `json:"removeHeaders,omitempty"`
	Override                  bool        `json:"override,omitempty"`
}

type hstsConfig struct {
	Enabled           bool  `json:"enabled"`
	MaxAge            int64 `json:"maxAge,omitempty"` // seconds
	IncludeSubDomains bool  `json:"includeSubDomains,omitempty"`
	Preload           bool  `json:"preload,omitempty"`
}
