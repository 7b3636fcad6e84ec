package audit

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// RequestParameters turns a decoded request (a struct or a pointer to one,
// with JSON tags, like the server's wire input types) into CloudTrail's
// requestParameters. It returns nil, written as null, when in is nil, not a
// struct, or has no member set.
//
// Member names are the JSON names (the tag's, else the field's) with the
// first letter lowered at every level (ShardId → shardId); anonymous
// embedded structs are flattened as encoding/json does. Values are copied,
// so the result shares no memory with in:
//   - nil pointers, nil interfaces, nil slices and nil maps are left out, as
//     are zero values of fields tagged omitempty, and fields tagged "-";
//   - a type implementing json.Marshaler or encoding.TextMarshaler (a
//     timestamp) is kept whole and encodes itself;
//   - map keys are kept as they are (tag keys are user data, not members).
//
// Record payloads are never kept: a []byte (or byte array) member is left
// out wherever it is, so is any member named Data, PartitionKey or
// ExplicitHashKey, and a slice of records (whose element struct has such a
// member) becomes "<name>Count": its length, e.g. PutRecords gives
// {"recordsCount":500,"streamName":"orders"}.
//
// The plan for each type is built once and cached; it is safe for
// concurrent use.
func RequestParameters(in any) map[string]any {
	v := reflect.ValueOf(in)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	m := map[string]any{}
	planOf(v.Type()).fill(v, m)
	if len(m) == 0 {
		return nil
	}
	return m
}

// conv converts a value to its requestParameters form; ok false leaves it out.
type conv func(v reflect.Value) (out any, ok bool)

// field is how one struct field is carried over.
type field struct {
	index     int
	name      string // lowered JSON name; for counts, with "Count"
	omitEmpty bool
	count     bool         // a slice of records: write its length
	embedded  reflect.Type // non-nil: flatten this struct (the field may be a pointer to it)
	conv      conv
}

// plan lists a struct's fields, embedded ones first so that outer fields
// with the same name win, as in encoding/json.
type plan struct{ fields []field }

var (
	plans sync.Map // reflect.Type → *plan
	convs sync.Map // reflect.Type → conv

	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func planOf(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p, _ := plans.LoadOrStore(t, buildPlan(t))
	return p.(*plan)
}

func buildPlan(t reflect.Type) *plan {
	var embedded, direct []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct && !marshals(et) {
				embedded = append(embedded, field{index: i, embedded: et})
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if payloadName(sf.Name) || payloadName(name) || isBytes(ft) {
			continue
		}
		f := field{index: i, name: lowerFirst(name), omitEmpty: hasOpt(opts, "omitempty")}
		if isRecordSlice(ft) {
			f.count, f.name = true, f.name+"Count"
		} else {
			f.conv = convOf(ft)
		}
		direct = append(direct, f)
	}
	return &plan{fields: append(embedded, direct...)}
}

func (p *plan) fill(v reflect.Value, m map[string]any) {
	for i := range p.fields {
		f := &p.fields[i]
		fv := v.Field(f.index)
		if f.embedded != nil {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			planOf(f.embedded).fill(fv, m)
			continue
		}
		if f.omitEmpty && isEmpty(fv) {
			continue
		}
		if f.count {
			for fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					break
				}
				fv = fv.Elem()
			}
			if (fv.Kind() == reflect.Slice && !fv.IsNil()) || fv.Kind() == reflect.Array {
				m[f.name] = fv.Len()
			}
			continue
		}
		if out, ok := f.conv(fv); ok {
			m[f.name] = out
		}
	}
}

// convOf returns the cached converter of t. Struct converters look their
// plan up when called, so building never recurses through a cyclic type.
func convOf(t reflect.Type) conv {
	if c, ok := convs.Load(t); ok {
		return c.(conv)
	}
	c, _ := convs.LoadOrStore(t, buildConv(t))
	return c.(conv)
}

func buildConv(t reflect.Type) conv {
	switch {
	case isBytes(t):
		return func(reflect.Value) (any, bool) { return nil, false }
	case t.Implements(jsonMarshaler) || t.Implements(textMarshaler):
		if t.Kind() == reflect.Pointer {
			return func(v reflect.Value) (any, bool) {
				if v.IsNil() {
					return nil, false
				}
				return copyMarshaler(v), true
			}
		}
		return func(v reflect.Value) (any, bool) { return v.Interface(), true }
	case reflect.PointerTo(t).Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(textMarshaler):
		return func(v reflect.Value) (any, bool) {
			p := reflect.New(t)
			p.Elem().Set(v)
			return p.Interface(), true
		}
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := convOf(t.Elem())
		return func(v reflect.Value) (any, bool) {
			if v.IsNil() {
				return nil, false
			}
			return elem(v.Elem())
		}
	case reflect.Interface:
		return func(v reflect.Value) (any, bool) {
			if v.IsNil() {
				return nil, false
			}
			return convOf(v.Elem().Type())(v.Elem())
		}
	case reflect.Struct:
		return structMap
	case reflect.Slice, reflect.Array:
		elem := convOf(t.Elem())
		return func(v reflect.Value) (any, bool) {
			if v.Kind() == reflect.Slice && v.IsNil() {
				return nil, false
			}
			out := make([]any, v.Len())
			for i := range out {
				out[i], _ = elem(v.Index(i)) // a left-out element stays in place as null
			}
			return out, true
		}
	case reflect.Map:
		elem := convOf(t.Elem())
		return func(v reflect.Value) (any, bool) {
			if v.IsNil() {
				return nil, false
			}
			out := make(map[string]any, v.Len())
			for it := v.MapRange(); it.Next(); {
				if e, ok := elem(it.Value()); ok {
					out[mapKey(it.Key())] = e
				}
			}
			return out, true
		}
	case reflect.Bool, reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return func(v reflect.Value) (any, bool) { return v.Interface(), true }
	}
	return func(reflect.Value) (any, bool) { return nil, false } // chan, func, complex: not JSON
}

// structMap converts a struct to a member map; an empty one is kept ({}).
func structMap(v reflect.Value) (any, bool) {
	m := map[string]any{}
	planOf(v.Type()).fill(v, m)
	return m, true
}

// copyMarshaler copies the value behind pointer v, so the result does not
// alias the request.
func copyMarshaler(v reflect.Value) any {
	p := reflect.New(v.Type().Elem())
	p.Elem().Set(v.Elem())
	return p.Interface()
}

func mapKey(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return k.String()
	}
	if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
		if b, err := tm.MarshalText(); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(k.Interface())
}

// payloadName reports whether a member carries record content.
func payloadName(name string) bool {
	return strings.EqualFold(name, "Data") || strings.EqualFold(name, "PartitionKey") ||
		strings.EqualFold(name, "ExplicitHashKey")
}

// isBytes reports whether t is (a pointer to) a byte slice or byte array.
func isBytes(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() == reflect.Uint8
}

// isRecordSlice reports whether t is (a pointer to) a slice or array of
// (pointers to) structs that carry record content.
func isRecordSlice(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
		return false
	}
	e := t.Elem()
	for e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	return e.Kind() == reflect.Struct && carriesPayload(e, 0)
}

func carriesPayload(t reflect.Type, depth int) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		if isBytes(sf.Type) || payloadName(sf.Name) {
			return true
		}
		ft := sf.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sf.Anonymous && ft.Kind() == reflect.Struct && depth < 8 && carriesPayload(ft, depth+1) {
			return true
		}
	}
	return false
}

func marshals(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		pt.Implements(jsonMarshaler) || pt.Implements(textMarshaler)
}

func hasOpt(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map, reflect.String, reflect.Array:
		return v.Len() == 0
	}
	return v.IsZero()
}

// lowerFirst lowers the first rune: StreamName → streamName, ShardId → shardId.
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError || unicode.IsLower(r) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
