package protocol

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// idEncoding is lowercase base32 without padding: ids stay one subject
// token, one KV key and one URL path segment, and never contain '=',
// which derived ids use as their separator.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// IDBits is the number of random bits in an id from NewID.
const IDBits = 128

// NewID returns an unguessable id (128 bits from crypto/rand, 26
// characters of [a-z2-7]) for tasks, requests, events and instances.
// Ids are shared across tenants' logs and are not secrets, but nobody can
// learn the next one from the last: a sequential id (a NUID) lets a
// principal predict another's task ids.
func NewID() string {
	var b [IDBits / 8]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return idEncoding.EncodeToString(b[:])
}

// IsID reports whether s has the shape of an id from NewID.
func IsID(s string) bool {
	if len(s) != 26 {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz234567") == ""
}
