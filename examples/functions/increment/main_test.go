package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	cases := []struct{ in, out, err string }{
		{`{"value":100}`, `{"value":101}`, ""},
		{` {"value": -5} `, `{"value":-4}`, ""},
		{`{}`, "", "missing"},
		{`{"value":1,"x":2}`, "", "unknown field"},
		{`{"value":1} {"value":2}`, "", "trailing"},
		{`{"value":9223372036854775807}`, "", "overflows"},
		{`[]`, "", "bad input"},
	}
	for _, c := range cases {
		out, err := run(strings.NewReader(c.in))
		if string(out) != c.out || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("run(%s) = %s, %v; want %s, %q", c.in, out, err, c.out, c.err)
		}
	}
}
