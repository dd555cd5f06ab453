package mfa

import (
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// Skew is how many steps either side of now a code may be from: one, so
// a code typed as it changes, or on a clock a little off, still works.
const Skew = 1

// Verify checks code against every enrolled admin at time now and returns
// whose it is. A code is accepted once: its step is recorded, and a code
// of that admin whose step is not after the recorded one is refused
// (ErrReplayedCode). ErrWrongCode when no admin has it; ErrNoAdmins when
// none is enrolled.
func Verify(dataDir, code string, now time.Time) (admin string, err error) {
	unlock, err := lock(dataDir)
	if err != nil {
		return "", err
	}
	defer unlock()
	return verifyLocked(dataDir, code, now)
}

// verifyLocked is Verify with DIR/admins/.lock held.
func verifyLocked(dataDir, code string, now time.Time) (string, error) {
	recs, err := readRecords(dataDir)
	if err != nil {
		return "", err
	}
	if len(recs) == 0 {
		return "", ErrNoAdmins
	}
	code = normalize(code)
	if len(code) != Digits {
		return "", fmt.Errorf("%w: a code is %d digits", ErrWrongCode, Digits)
	}
	replayed := ""
	for _, r := range recs {
		step, ok := matchStep(r.Secret, code, now)
		if !ok {
			continue
		}
		if step <= r.LastStep {
			replayed = r.Name
			continue // another admin's code might be the same digits
		}
		r.LastStep = step
		if err := writeRecord(dataDir, r); err != nil {
			return "", err
		}
		return r.Name, nil
	}
	if replayed != "" {
		return "", fmt.Errorf("%w: wait for the next code of %s", ErrReplayedCode, replayed)
	}
	return "", ErrWrongCode
}

// normalize drops the spaces and dashes apps show in the middle of a code.
func normalize(code string) string {
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
	for _, r := range code {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return code
}

// matchStep returns the step within Skew of now whose code is code,
// comparing in constant time. Of two matching steps the later wins (a
// 6-digit collision between neighbouring steps is possible): recording the
// later refuses both afterwards.
func matchStep(secret, code string, now time.Time) (uint64, bool) {
	cur := now.Unix() / Period
	var found uint64
	ok := false
	for d := int64(-Skew); d <= Skew; d++ {
		step := cur + d
		if step < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{
			Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found, ok = uint64(step), true
		}
	}
	return found, ok
}
