package mfa

import "errors"

// Errors returned (wrapped; match with errors.Is).
var (
	// ErrNoAdmins: no admin is enrolled in the data dir, so there is no
	// code to check.
	ErrNoAdmins = errors.New("mfa: no admin is enrolled")
	// ErrWrongCode: the code is not the current code of any enrolled admin.
	ErrWrongCode = errors.New("mfa: wrong code")
	// ErrReplayedCode: the code was right, but its step is not after the
	// step of that admin's last accepted code: it was used already.
	ErrReplayedCode = errors.New("mfa: code already used")
	// ErrAdminExists: Enroll was given the name of an enrolled admin.
	ErrAdminExists = errors.New("mfa: admin already enrolled")
	// ErrUnknownAdmin: no admin of that name is enrolled.
	ErrUnknownAdmin = errors.New("mfa: no such admin")
	// ErrReservedName: the name is used by the package itself.
	ErrReservedName = errors.New("mfa: name is reserved")
	// ErrNoSession: no session is open.
	ErrNoSession = errors.New("mfa: no session")
	// ErrSessionExpired: the session was good and has run out.
	ErrSessionExpired = errors.New("mfa: session expired")
	// ErrSessionInvalid: the session file is not one OpenSession wrote for
	// an enrolled admin (written or edited by hand, or its admin removed).
	ErrSessionInvalid = errors.New("mfa: session invalid")
	// ErrSessionTTL: a session's length is not within (0, MaxSessionTTL].
	ErrSessionTTL = errors.New("mfa: session length out of range")
	// ErrLocked: another command held the lock for too long.
	ErrLocked = errors.New("mfa: admins are busy")
)
