package subprocess

// OverrideProbe makes Probe (and so New) answer s until restore is
// called, for tests of what a machine without some feature gets.
func OverrideProbe(s Support) (restore func()) {
	probed.Lock()
	defer probed.Unlock()
	done, old := probed.done, probed.support
	probed.done, probed.support = true, s
	return func() {
		probed.Lock()
		defer probed.Unlock()
		probed.done, probed.support = done, old
	}
}
