package subprocess

import "testing"

func TestUnescapeMountinfo(t *testing.T) {
	if got := unescapeMountinfo(`/mnt/with\040space\134x`); got != `/mnt/with space\x` {
		t.Errorf("unescapeMountinfo = %q", got)
	}
	if !beneathAny("/tmp/a/b", []string{"/tmp/a"}) || beneathAny("/tmp/ab", []string{"/tmp/a"}) || !beneathAny("/x", []string{"/x"}) {
		t.Error("beneathAny")
	}
}
