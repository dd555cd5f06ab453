//go:build !unix

package bench

import "time"

// cpuTime is unknown here (0): CPU per task is left out.
func cpuTime() time.Duration { return 0 }
