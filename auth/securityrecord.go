package auth

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/nats-io/jwt/v2"

	"github.com/equilateral-agents/equilateral/auth/mfa"
	"github.com/equilateral-agents/equilateral/security"
)

// SecurityRecord is what the admin side says of a system's security: the
// data dir's settings and how many admins are enrolled for MFA. An
// orchestrator with the data dir reads it from there; one without reads
// the copy published with the identities, signed by the operator.
type SecurityRecord struct {
	Settings  security.Settings `json:"settings"`
	MFAAdmins int               `json:"mfa_admins"`
}

// identitySecurityKey is the security record's key in IdentitiesBucket.
const identitySecurityKey = "security"

// securityRecordType marks a generic JWT as a security record.
const securityRecordType = "equilateral-security"

// SecurityRecord reads the data dir's security settings and counts its
// enrolled admins.
func (d *Directory) SecurityRecord() (SecurityRecord, error) {
	s, err := security.ReadSettings(d.Dir())
	if err != nil {
		return SecurityRecord{}, err
	}
	admins, err := mfa.Enrolled(d.Dir())
	if err != nil {
		return SecurityRecord{}, err
	}
	return SecurityRecord{Settings: s, MFAAdmins: len(admins)}, nil
}

// signedSecurityRecord is the security record as a generic JWT signed by
// the operator, about the tenant's account.
func (s *Store) signedSecurityRecord(tenant string) ([]byte, error) {
	rec, err := s.SecurityRecord()
	if err != nil {
		return nil, err
	}
	t, err := s.Tenant(tenant)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, err
	}
	claims := jwt.NewGenericClaims(t.AccountKey)
	claims.Name = tenant + "/" + identitySecurityKey
	claims.Data = map[string]any{"equilateral": securityRecordType, "record": data}
	token, err := claims.Encode(s.operatorSigner)
	if err != nil {
		return nil, fmt.Errorf("auth: sign the security record of %s: %w", tenant, err)
	}
	return []byte(token), nil
}

// ReadSecurityRecord checks a security record from IdentitiesBucket: a
// generic JWT of the record type, signed by one of operatorKeys, about
// tenant.
func ReadSecurityRecord(token []byte, operatorKeys []string, tenant string) (SecurityRecord, error) {
	claims, err := jwt.DecodeGeneric(string(token))
	if err != nil {
		return SecurityRecord{}, fmt.Errorf("auth: security record: %w", err)
	}
	if kind, _ := claims.Data["equilateral"].(string); kind != securityRecordType {
		return SecurityRecord{}, fmt.Errorf("auth: not a security record (%q)", kind)
	}
	if !slices.Contains(operatorKeys, claims.Issuer) {
		return SecurityRecord{}, fmt.Errorf("auth: the security record of %s is not signed by the operator", tenant)
	}
	if claims.Name != tenant+"/"+identitySecurityKey {
		return SecurityRecord{}, fmt.Errorf("auth: the security record %s is not tenant %s's", claims.Name, tenant)
	}
	raw, err := json.Marshal(claims.Data["record"])
	if err != nil {
		return SecurityRecord{}, err
	}
	var rec SecurityRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return SecurityRecord{}, fmt.Errorf("auth: security record of %s: %w", tenant, err)
	}
	return rec, nil
}

// SecurityRecord is the security record published for tenant, as last
// read from its bucket; ok is false when none is (published before
// levels existed, or not signed by the operator).
func (r *Remote) SecurityRecord(tenant string) (SecurityRecord, bool) {
	t, err := r.tenant(tenant)
	if err != nil {
		return SecurityRecord{}, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.security == nil {
		return SecurityRecord{}, false
	}
	return *t.security, true
}
