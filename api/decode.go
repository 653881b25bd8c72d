package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"sync"
)

// decodeStrict reads body as exactly one JSON value into v. Unknown
// fields, field names that match only ignoring case (encoding/json would
// take "PAYLOAD" for "payload"; the OpenAPI contract names fields exactly),
// an empty body, malformed JSON and anything but white space after the
// value are a bad request (errBadRequest, answered 400); a body over
// the route's size limit keeps its *http.MaxBytesError (answered 413). It
// is the one decoder of JSON request bodies, clear or sealed.
func decodeStrict(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if tooLarge(err) {
			return err
		}
		return badRequest("malformed JSON body: %v", err)
	}
	switch _, err := dec.Token(); {
	case errors.Is(err, io.EOF):
	case tooLarge(err):
		return err
	default:
		return badRequest("trailing data after the JSON body")
	}
	if err := exactFields(raw, reflect.TypeOf(v)); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	inner := json.NewDecoder(bytes.NewReader(raw))
	inner.DisallowUnknownFields()
	if err := inner.Decode(v); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	return nil
}

// exactFields checks that every key of each JSON object in raw that
// decodes into a struct names one of the struct's fields exactly (its
// json tag, or its Go name without one). Types with their own
// UnmarshalJSON are left to it.
func exactFields(raw json.RawMessage, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil // not an object: the decoder reports it
		}
		fields := jsonFields(t)
		for k, v := range obj {
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("json: unknown field %q", k)
			}
			if err := exactFields(v, ft); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if t.Elem().Kind() == reflect.Uint8 || json.Unmarshal(raw, &items) != nil {
			return nil
		}
		for _, it := range items {
			if err := exactFields(it, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of struct t's fields (embedded structs'
// included) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f := structFields(t)
	fieldCache.Store(t, f)
	return f
}

// fieldCache holds jsonFields' answer per struct type, computed once:
// request bodies decode into a few fixed types, and reflecting over one
// on every request was a measurable share of a write's cost. Its maps
// are never modified once stored.
var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				maps.Copy(out, jsonFields(ft))
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
