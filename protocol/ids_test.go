package protocol

import "testing"

// TestNewIDIsUnguessable: ids carry 128 random bits, share no prefix from
// one to the next (a NUID shares 12 of 22 characters) and never repeat.
func TestNewIDIsUnguessable(t *testing.T) {
	seen := map[string]bool{}
	prev := NewID()
	samePrefix := 0
	for range 10000 {
		id := NewID()
		if !IsID(id) {
			t.Fatalf("id %q has the wrong shape", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
		if id[:4] == prev[:4] {
			samePrefix++
		}
		prev = id
	}
	// 4 base32 characters are 20 bits: by chance about 0.01 of 10,000.
	if samePrefix > 5 {
		t.Fatalf("%d consecutive ids share a 4-character prefix: ids are sequential", samePrefix)
	}
}
