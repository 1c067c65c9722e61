package policy

import (
	"fmt"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// The CORS policy (plugins/cors) runs first, so that preflights are
// answered before anything asks for credentials.
func init() {
	Register(Type{Name: configs.PolicyCORS, Module: "cors", Order: 10, HeadersOnly: true, Config: corsPluginConfig})
}

// corsPluginConfig converts spec.cors (maxAge in whole seconds).
func corsPluginConfig(p *configs.Policy) (any, error) {
	c := p.Spec.CORS
	if c == nil {
		return nil, fmt.Errorf("spec.cors: required for type CORS")
	}
	return firstparty.CORS{
		AllowOrigins:     c.AllowOrigins,
		AllowMethods:     c.AllowMethods,
		AllowHeaders:     c.AllowHeaders,
		ExposeHeaders:    c.ExposeHeaders,
		MaxAgeSeconds:    int(c.MaxAge.D(0).Seconds()),
		AllowCredentials: c.AllowCredentials,
	}, nil
}
