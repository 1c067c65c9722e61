package policy

import (
	"encoding/json"
	"fmt"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/policy/bundled"
)

// The first-party policy types run bundled plugins (plugins/<name>). Each
// gets its ProxyPolicy block as the plugin's configuration, converted by
// its Type.Config into the JSON of its sdk/firstparty type (the plugin's
// Config): the same as the YAML block, with durations in whole seconds.

// ActiveTypes lists the first-party policy types whose plugin this build
// bundles (besides Wasm, always active).
func ActiveTypes() []string {
	mods := bundled.Modules()
	var out []string
	for _, t := range Types() {
		if _, ok := mods[t.Module]; ok && t.Module != "" {
			out = append(out, t.Name)
		}
	}
	return out
}

// firstPartyConfig returns the bundled module and plugin configuration of
// a first-party policy.
func firstPartyConfig(p *configs.Policy) (module string, config []byte, err error) {
	t, ok := Lookup(p.Spec.Type)
	if !ok || t.Config == nil {
		return "", nil, fmt.Errorf("policy type %s has no bundled plugin", p.Spec.Type)
	}
	v, err := t.Config(p)
	if err != nil {
		return "", nil, err
	}
	config, err = json.Marshal(v)
	return t.Module, config, err
}
