// Command transform is a JSON-transform function: it reads a batch of orders
// and writes a summary — order count, distinct customers (sorted), totals per
// currency in cents, and the largest order.
//
// Input:
//
//	{"orders":[{"id":"a1","customer":"ada","amount_cents":1250,"currency":"EUR"}, ...]}
//
// Output (keys sorted, no insignificant whitespace):
//
//	{"count":1,"customers":["ada"],"largest":{"id":"a1","amount_cents":1250,"currency":"EUR"},"totals":{"EUR":1250}}
//
// Amounts are integers (cents), so the output involves no floating point.
// Invalid input is reported on stderr with exit status 1.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

type order struct {
	ID          string `json:"id"`
	Customer    string `json:"customer"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

type input struct {
	Orders []order `json:"orders"`
}

type largest struct {
	ID          string `json:"id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

type summary struct {
	Count     int              `json:"count"`
	Customers []string         `json:"customers"`
	Largest   *largest         `json:"largest"`
	Totals    map[string]int64 `json:"totals"`
}

func main() {
	out, err := run(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "transform:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

func run(r io.Reader) ([]byte, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var in input
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("bad input: %w", err)
	}
	s := summary{Count: len(in.Orders), Customers: []string{}, Totals: map[string]int64{}}
	seen := map[string]bool{}
	for i, o := range in.Orders {
		if o.ID == "" || o.Customer == "" || o.AmountCents < 0 || len(o.Currency) != 3 {
			return nil, fmt.Errorf("bad input: order %d is incomplete or negative", i)
		}
		cur := strings.ToUpper(o.Currency)
		if s.Totals[cur] > math.MaxInt64-o.AmountCents {
			return nil, errors.New("total overflows")
		}
		s.Totals[cur] += o.AmountCents
		if !seen[o.Customer] {
			seen[o.Customer] = true
			s.Customers = append(s.Customers, o.Customer)
		}
		if s.Largest == nil || o.AmountCents > s.Largest.AmountCents {
			s.Largest = &largest{ID: o.ID, AmountCents: o.AmountCents, Currency: cur}
		}
	}
	sort.Strings(s.Customers)
	return json.Marshal(s)
}
