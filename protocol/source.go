package protocol

import (
	"fmt"
	"strings"
)

// sourceScheme prefixes every event source Equilateral writes.
const sourceScheme = "eq://"

// Source is the CloudEvents source of a principal: it names the tenant and
// the principal, and is what a signing key is registered to.
// eq://<tenant>/<name>
func Source(tenant, name string) string { return sourceScheme + tenant + "/" + name }

// ParseSource splits a source made by Source and validates both names.
func ParseSource(source string) (tenant, name string, err error) {
	rest, ok := strings.CutPrefix(source, sourceScheme)
	if !ok {
		return "", "", fmt.Errorf("source %q: want eq://<tenant>/<name>", printable(source))
	}
	tenant, name, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("source %q: want eq://<tenant>/<name>", printable(source))
	}
	if err := ValidateName("tenant", tenant); err != nil {
		return "", "", err
	}
	if err := ValidateName("principal", name); err != nil {
		return "", "", err
	}
	return tenant, name, nil
}
