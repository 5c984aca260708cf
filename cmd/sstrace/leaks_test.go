package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Births that came without their stack are counted and shown; a report
// without any says nothing about them (the same text and JSON as before
// the count existed).
func TestLeakReportStacklessBirths(t *testing.T) {
	for _, n := range []uint64{0, 3} {
		r := leakReport{Groups: []reportGroup{}, StacklessBirths: n}
		var text bytes.Buffer
		printLeakReport(&text, &r)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Contains(text.String(), "3 socket births came without their user stack")
		field := strings.Contains(string(b), `"births_without_stack":3`)
		named := strings.Contains(text.String()+string(b), "without")
		if n == 0 && named {
			t.Errorf("no stackless birth, yet the report names them:\n%s\n%s", text.String(), b)
		}
		if n == 3 && (!line || !field) {
			t.Errorf("3 stackless births: text line %v, JSON field %v:\n%s\n%s", line, field, text.String(), b)
		}
	}
}
