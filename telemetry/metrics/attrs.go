package metrics

import (
	"maps"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// maxCachedSets bounds each attrSets cache. Past it, sets are built per
// call: slower, but memory stays bounded if a caller leaks an unbounded
// value into an attribute (the SDK caps the series themselves).
const maxCachedSets = 4096

// measurementOpts holds one attribute set, ready to pass to an
// instrument's variadic options without allocating.
type measurementOpts struct {
	add     []metric.AddOption
	record  []metric.RecordOption
	observe []metric.ObserveOption
}

// attrSets caches the attribute sets of one shape (up to three keys), so
// the hot path neither sorts attributes nor allocates. Reads are lock-free
// on a copy-on-write map: new combinations are rare, lookups are not.
type attrSets struct {
	keys []attribute.Key
	sets atomic.Pointer[map[[3]string]measurementOpts]
	mu   sync.Mutex // serialises writers
}

func newAttrSets(keys ...attribute.Key) *attrSets {
	s := &attrSets{keys: keys}
	m := map[[3]string]measurementOpts{}
	s.sets.Store(&m)
	return s
}

// get returns the options for the values of s's keys, in order; values
// past the number of keys are ignored and must be "".
func (s *attrSets) get(a, b, c string) measurementOpts {
	k := [3]string{a, b, c}
	if o, ok := (*s.sets.Load())[k]; ok {
		return o
	}
	o := s.build(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.sets.Load()
	if existing, ok := old[k]; ok {
		return existing
	}
	if len(old) < maxCachedSets {
		m := make(map[[3]string]measurementOpts, len(old)+1)
		maps.Copy(m, old)
		m[k] = o
		s.sets.Store(&m)
	}
	return o
}

func (s *attrSets) build(k [3]string) measurementOpts {
	kvs := make([]attribute.KeyValue, len(s.keys))
	for i, key := range s.keys {
		kvs[i] = key.String(k[i])
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kvs...))
	return measurementOpts{
		add:     []metric.AddOption{opt},
		record:  []metric.RecordOption{opt},
		observe: []metric.ObserveOption{opt},
	}
}
