package wasm

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/api"
)

// MetricType is proxy_metric_type_t.
type MetricType uint32

// Metric types.
const (
	Counter   MetricType = 0
	Gauge     MetricType = 1
	Histogram MetricType = 2
)

func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Histogram:
		return "histogram"
	}
	return "unknown"
}

// Metric is a snapshot of one plugin-defined metric.
type Metric struct {
	Name string
	Type MetricType
	// Value: the counter or gauge value; for a histogram the sum of samples.
	Value int64
	// Count: histogram samples (0 for counters and gauges).
	Count uint64
}

// Metrics returns a snapshot of every metric plugins defined, sorted by name.
// Metrics live in the Runtime: they survive VM rebuilds and plugin reloads.
func (r *Runtime) Metrics() []Metric {
	r.metrics.mu.RLock()
	out := make([]Metric, 0, len(r.metrics.list))
	for _, m := range r.metrics.list {
		out = append(out, Metric{Name: m.name, Type: m.typ, Value: m.value.Load(), Count: m.count.Load()})
	}
	r.metrics.mu.RUnlock()
	slices.SortFunc(out, func(a, b Metric) int { return strings.Compare(a.Name, b.Name) })
	return out
}

type metricRegistry struct {
	mu     sync.RWMutex
	byName map[string]uint32
	list   []*metric // id = index + 1
}

type metric struct {
	name  string
	typ   MetricType
	value atomic.Int64
	count atomic.Uint64
}

func (r *metricRegistry) init() { r.byName = map[string]uint32{} }

func (r *metricRegistry) define(typ MetricType, name string) (uint32, status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.byName[name]; ok {
		if r.list[id-1].typ != typ {
			return 0, statusBadArgument
		}
		return id, statusOK
	}
	r.list = append(r.list, &metric{name: name, typ: typ})
	id := uint32(len(r.list))
	r.byName[name] = id
	return id, statusOK
}

func (r *metricRegistry) get(id uint32) *metric {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if id == 0 || int(id) > len(r.list) {
		return nil
	}
	return r.list[id-1]
}

// proxy_define_metric(i32 metric_type, i32 name_data, i32 name_size,
// i32 return_metric_id) -> i32 status
//
// Defines (or finds) the metric name and stores its id (u32 LE) at
// return_metric_id. Status: OK; BadArgument (unknown type, empty name, or a
// name already defined with another type); InvalidMemoryAccess.
func proxyDefineMetric(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	typ := MetricType(arg(st, 0))
	if typ > Histogram {
		return statusBadArgument
	}
	name, ok := readString(mem, arg(st, 1), arg(st, 2))
	if !ok || !writable(mem, arg(st, 3), 4) {
		return statusInvalidMemoryAccess
	}
	if name == "" {
		return statusBadArgument
	}
	id, s := v.p.rt.metrics.define(typ, name)
	if s != statusOK {
		return s
	}
	return putU32(mem, arg(st, 3), id)
}

// proxy_increment_metric(i32 metric_id, i64 delta) -> i32 status
//
// Adds delta to a counter (delta ≥ 0) or gauge.
// Status: OK; NotFound; BadArgument (histogram, or negative counter delta).
func proxyIncrementMetric(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	m := v.p.rt.metrics.get(arg(st, 0))
	if m == nil {
		return statusNotFound
	}
	delta := int64(st[1])
	if m.typ == Histogram || (m.typ == Counter && delta < 0) {
		return statusBadArgument
	}
	m.value.Add(delta)
	return statusOK
}

// proxy_record_metric(i32 metric_id, i64 value) -> i32 status
//
// Sets a counter or gauge to value, or records a histogram sample.
// Status: OK; NotFound.
func proxyRecordMetric(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	m := v.p.rt.metrics.get(arg(st, 0))
	if m == nil {
		return statusNotFound
	}
	if m.typ == Histogram {
		m.value.Add(int64(st[1]))
		m.count.Add(1)
		return statusOK
	}
	m.value.Store(int64(st[1]))
	return statusOK
}

// proxy_get_metric(i32 metric_id, i32 return_value) -> i32 status
//
// Stores a counter's or gauge's value (u64 LE) at return_value.
// Status: OK; NotFound; BadArgument (histogram); InvalidMemoryAccess.
func proxyGetMetric(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	m := v.p.rt.metrics.get(arg(st, 0))
	if m == nil {
		return statusNotFound
	}
	if m.typ == Histogram {
		return statusBadArgument
	}
	return putU64(mem, arg(st, 1), uint64(m.value.Load()))
}
