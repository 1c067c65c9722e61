package policy

import (
	"fmt"

	"github.com/novaedge/novaedge/configs"
)

func init() { pluginConfigs[configs.PolicySecurityHeaders] = securityHeadersPluginConfig }

// securityHeadersPluginConfig: plugins/securityheaders reads the
// securityHeaders block's own JSON (hsts.maxAge is already in seconds).
func securityHeadersPluginConfig(p *configs.Policy) (any, error) {
	h := p.Spec.SecurityHeaders
	if h == nil {
		return nil, fmt.Errorf("spec.securityHeaders: required for type SecurityHeaders")
	}
	return h, nil
}
