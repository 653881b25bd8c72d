package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	cases := []struct{ in, out, err string }{
		{`{"orders":[]}`, `{"count":0,"customers":[],"largest":null,"totals":{}}`, ""},
		{`{"orders":[{"id":"a","customer":"z","amount_cents":5,"currency":"usd"},{"id":"b","customer":"y","amount_cents":7,"currency":"USD"}]}`,
			`{"count":2,"customers":["y","z"],"largest":{"id":"b","amount_cents":7,"currency":"USD"},"totals":{"USD":12}}`, ""},
		{`{"orders":[{"id":"a","customer":"z","amount_cents":-1,"currency":"usd"}]}`, "", "negative"},
		{`{"orders":[{"id":"a","customer":"z","amount_cents":9223372036854775807,"currency":"usd"},{"id":"b","customer":"z","amount_cents":1,"currency":"usd"}]}`, "", "overflows"},
		{`{"orders":[{"id":"a","customer":"z","amount_cents":1,"currency":"usd","x":1}]}`, "", "unknown field"},
	}
	for _, c := range cases {
		out, err := run(strings.NewReader(c.in))
		if string(out) != c.out || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("run(%s) = %s, %v; want %s, %q", c.in, out, err, c.out, c.err)
		}
	}
}
