package policy

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
)

// Collector exports to Prometheus, at scrape time, the state of every
// plugin of the running configuration (VMs, memory, calls, failures, VM
// rebuilds, by policy) and the metrics plugins define through
// proxy_define_metric (as wasmcustom_<name>; they live in the runtime
// and survive VM rebuilds and reloads).
type Collector struct {
	Runtime *wasm.Runtime
	Gateway *proxy.Gateway
}

var (
	descVMs      = prometheus.NewDesc("novaedge_wasm_vms", "Live VMs of a policy's plugin.", []string{"policy", "module"}, nil)
	descMemory   = prometheus.NewDesc("novaedge_wasm_memory_bytes", "Memory of a policy's plugin VMs.", []string{"policy", "module"}, nil)
	descCalls    = prometheus.NewDesc("novaedge_wasm_calls_total", "Callbacks into a policy's plugin.", []string{"policy", "module"}, nil)
	descFailures = prometheus.NewDesc("novaedge_wasm_failures_total", "Callbacks that trapped or timed out.", []string{"policy", "module"}, nil)
	descRebuilds = prometheus.NewDesc("novaedge_wasm_vm_rebuilds_total", "VMs discarded (trap, timeout, memory) and replaced.", []string{"policy", "module"}, nil)
)

// Describe sends nothing: the plugin-defined metrics are not known in
// advance, which makes this an unchecked collector.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.Gateway != nil && c.Gateway.Snapshot() != nil {
		for _, p := range c.Gateway.Status().Policies {
			s := p.Plugin
			if s == nil {
				continue
			}
			labels := []string{p.Namespace + "/" + p.Name, s.Module}
			ch <- prometheus.MustNewConstMetric(descVMs, prometheus.GaugeValue, float64(s.VMs), labels...)
			ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(s.MemoryBytes), labels...)
			ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(s.Calls), labels...)
			ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(s.Failures), labels...)
			ch <- prometheus.MustNewConstMetric(descRebuilds, prometheus.CounterValue, float64(s.VMRebuilds), labels...)
		}
	}
	if c.Runtime == nil {
		return
	}
	for _, m := range c.Runtime.Metrics() {
		name := "wasmcustom_" + promName(m.Name)
		switch m.Type {
		case wasm.Counter:
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "Plugin-defined counter "+m.Name+".", nil, nil), prometheus.CounterValue, float64(m.Value))
		case wasm.Gauge:
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "Plugin-defined gauge "+m.Name+".", nil, nil), prometheus.GaugeValue, float64(m.Value))
		default:
			ch <- prometheus.MustNewConstSummary(prometheus.NewDesc(name, "Plugin-defined histogram "+m.Name+" (sum and count).", nil, nil), m.Count, float64(m.Value), nil)
		}
	}
}

// promName maps a plugin's metric name onto Prometheus's alphabet.
func promName(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r >= '0' && r <= '9' && i > 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
