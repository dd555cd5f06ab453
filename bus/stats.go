package bus

import "sync/atomic"

// Counts of the signature work this process has done, for benchmarks
// (`equilateral bench` reports signatures and verifications per task).
var (
	signatures    atomic.Uint64
	verifications atomic.Uint64
)

// CryptoCounts is how many signatures this process has made and verified
// since it started.
type CryptoCounts struct {
	Signed   uint64
	Verified uint64
}

// Counts returns the signatures made and verified so far.
func Counts() CryptoCounts {
	return CryptoCounts{Signed: signatures.Load(), Verified: verifications.Load()}
}
