package policy

import (
	"encoding/json"
	"fmt"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/policy/bundled"
)

// The first-party policy types run bundled plugins (plugins/<name>). Each
// gets its ProxyPolicy block as the plugin's configuration, in the JSON
// its Config type reads (plugins/<name>/README.md): the same as the YAML
// block, with durations in whole seconds.
var firstParty = map[string]string{
	configs.PolicyCORS:            "cors",
	configs.PolicySecurityHeaders: "securityheaders",
	configs.PolicyRateLimit:       "ratelimit",
	configs.PolicyJWT:             "jwt",
	configs.PolicyKeyAuth:         "keyauth",
}

// ActiveTypes lists the first-party policy types whose plugin this build
// bundles (besides Wasm, always active).
func ActiveTypes() []string {
	mods := bundled.Modules()
	var out []string
	for typ, name := range firstParty {
		if _, ok := mods[name]; ok {
			out = append(out, typ)
		}
	}
	return out
}

// pluginConfigs turn a first-party policy's block into its plugin's
// configuration (a value marshalled to JSON). Each type registers its own,
// in its file.
var pluginConfigs = map[string]func(*configs.Policy) (any, error){
	configs.PolicyCORS: corsPluginConfig,
}

// firstPartyConfig returns the bundled module and plugin configuration of
// a first-party policy.
func firstPartyConfig(p *configs.Policy) (module string, config []byte, err error) {
	conv := pluginConfigs[p.Spec.Type]
	if conv == nil {
		return "", nil, fmt.Errorf("policy type %s has no bundled plugin", p.Spec.Type)
	}
	v, err := conv(p)
	if err != nil {
		return "", nil, err
	}
	config, err = json.Marshal(v)
	return firstParty[p.Spec.Type], config, err
}

func corsPluginConfig(p *configs.Policy) (any, error) {
	c := p.Spec.CORS
	if c == nil {
		return nil, fmt.Errorf("spec.cors: required for type CORS")
	}
	return corsConfig{
		AllowOrigins:     c.AllowOrigins,
		AllowMethods:     c.AllowMethods,
		AllowHeaders:     c.AllowHeaders,
		ExposeHeaders:    c.ExposeHeaders,
		MaxAgeSeconds:    int64(c.MaxAge.D(0).Seconds()),
		AllowCredentials: c.AllowCredentials,
	}, nil
}

// corsConfig is plugins/cors's Config.
type corsConfig struct {
	AllowOrigins     []string `json:"allowOrigins"`
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	MaxAgeSeconds    int64    `json:"maxAgeSeconds,omitempty"`
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
}
