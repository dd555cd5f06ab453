package orchestrator

import (
	"testing"
	"time"
)

// TestRefusalCounterRecordsFirstAndSummarizesTheRest: per sender and
// reason, the first refusal of a window is recorded, the rest counted
// into one summary when the window closes; senders are kept apart, and
// their number is bounded.
func TestRefusalCounterRecordsFirstAndSummarizesTheRest(t *testing.T) {
	var c refusalCounter
	now := time.Now()
	if !c.note("mallory", "malformed", now, RefusalRecord{Sender: "mallory"}) {
		t.Fatal("the first refusal was not recorded")
	}
	for i := range 99 {
		if c.note("mallory", "malformed", now.Add(time.Duration(i)*time.Millisecond), RefusalRecord{}) {
			t.Fatal("a repeated refusal was recorded on its own")
		}
	}
	if !c.note("victim", "malformed", now, RefusalRecord{Sender: "victim"}) || !c.note("mallory", "replay", now, RefusalRecord{}) {
		t.Fatal("another sender or reason shares a window")
	}
	if got := c.closeWindows(now.Add(refusalWindow / 2)); len(got) != 0 {
		t.Fatalf("windows closed early: %+v", got)
	}
	got := c.closeWindows(now.Add(refusalWindow))
	if len(got) != 1 || got[0].record.Count != 99 || got[0].record.Sender != "mallory" || got[0].reason != "malformed" {
		t.Fatalf("summaries %+v, want one for mallory's 99 repeats", got)
	}
	for i := range 2 * maxRefusalKeys {
		c.note(string(rune('a'+i%26))+time.Duration(i).String(), "malformed", now, RefusalRecord{})
	}
	if len(c.open) > maxRefusalKeys+1 {
		t.Fatalf("%d windows open, bound %d", len(c.open), maxRefusalKeys)
	}
}
