package protocol

import (
	"encoding/json"
	"testing"
)

// TestScanMembersAgreesWithEncodingJSON: where the quick member scan
// reads an object, it reads the members encoding/json does, value for
// value; where it may not (escaped or repeated names, not an object),
// it gives up and encoding/json is asked instead.
func TestScanMembersAgreesWithEncodingJSON(t *testing.T) {
	agree := []string{
		`{}`, ` { } `, `{"a":1}`, `{"a" : "x,}]" , "b":[1,{"c":"]"}], "n": null}`,
		`{"s":"quote \" and backslash \\ and } ]","t":true,"f":false}`,
		"{\n\t\"input\": {\"deep\": [[[]]], \"e\": \"\\u00e9\"},\r\n\"x\": -1.5e3\n}",
		`{"a":{"b":{"c":{}}},"d":[]}`, `{"ü":"non-ASCII name"}`,
	}
	for _, in := range agree {
		got, ok := scanMembers([]byte(in))
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !ok || len(got) != len(want) {
			t.Errorf("%s: scanned %v (ok %v), encoding/json %v", in, got, ok, want)
			continue
		}
		for k, v := range want {
			if string(got[k]) != string(v) {
				t.Errorf("%s: member %q is %s, encoding/json says %s", in, k, got[k], v)
			}
		}
	}
	giveUp := []string{
		`null`, `[]`, `"x"`, `{"a\u0062":1}`, `{"a":1,"a":2}`, `{"a":1} x`, `{"a":1`, `{"a" 1}`,
		`{"a":}`, `{"a":"unterminated}`, `{a:1}`, ``, `{"a":1,}`,
	}
	for _, in := range giveUp {
		if m, ok := scanMembers([]byte(in)); ok {
			t.Errorf("%q: scanned %v, want a give-up", in, m)
		}
	}
}
