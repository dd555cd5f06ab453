package mfa_test

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/equilateral-agents/equilateral/auth/mfa"
)

// An admin enrolls, then proves themselves with the code their app shows;
// the same code a second time is refused.
func ExampleVerify() {
	dir, _ := os.MkdirTemp("", "eq")
	defer os.RemoveAll(dir)

	e, _ := mfa.Enroll(dir, "alice")
	key, _ := otp.NewKeyFromURL(e.URI) // what the app scans
	now := time.Now()
	code, _ := totp.GenerateCode(key.Secret(), now)

	admin, err := mfa.Verify(dir, code, now)
	fmt.Println(admin, err)
	_, err = mfa.Verify(dir, code, now)
	fmt.Println(errors.Is(err, mfa.ErrReplayedCode))
	// Output:
	// alice <nil>
	// true
}
