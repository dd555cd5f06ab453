package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go/jetstream"
)

// Identities over NATS: what an orchestrator must know of a tenant (its
// account JWT, each principal's role, capabilities, current and retired
// keys, revocation) published into the tenant's own JetStream, in the
// bucket IdentitiesBucket, so that an orchestrator on another host learns
// it without a copy of the data dir. Each principal's record is signed by
// the operator (a generic JWT whose data is the record): a reader trusts
// it by the operator's public keys alone, whoever wrote the bucket.

// IdentitiesBucket is the key-value bucket, in each tenant's JetStream,
// of the tenant's published identities.
const IdentitiesBucket = "EQ_IDENTITIES"

// Keys in IdentitiesBucket.
const (
	identityAccountKey = "account"
	identityPrefix     = "principal."
)

// identityRecordType marks a generic JWT as a principal record (in its
// data's "equilateral" member: the library takes "type" for its own).
const identityRecordType = "equilateral-principal"

// IdentityRecords returns the tenant's records as IdentitiesBucket holds
// them: "account" is the account JWT, "principal.<name>" each principal's
// record signed by the operator, "security" the security record
// (SecurityRecord) signed by the operator.
func (s *Store) IdentityRecords(tenant string) (map[string][]byte, error) {
	account, err := s.AccountJWT(tenant)
	if err != nil {
		return nil, err
	}
	principals, err := s.Principals(tenant)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{identityAccountKey: []byte(account)}
	for _, p := range principals {
		claims := jwt.NewGenericClaims(p.PublicKey)
		claims.Name = p.Tenant + "/" + p.Name
		record, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		var data map[string]any
		if err := json.Unmarshal(record, &data); err != nil {
			return nil, err
		}
		claims.Data = map[string]any{"equilateral": identityRecordType, "record": data}
		token, err := claims.Encode(s.operatorSigner)
		if err != nil {
			return nil, fmt.Errorf("auth: sign the record of %s: %w", p.Name, err)
		}
		out[identityPrefix+p.Name] = []byte(token)
	}
	sec, err := s.signedSecurityRecord(tenant)
	if err != nil {
		return nil, err
	}
	out[identitySecurityKey] = sec
	return out, nil
}

// PublishIdentities writes the tenant's records into its IdentitiesBucket
// through js (a connection inside the tenant's account, such as its
// orchestrator user's), making the bucket with replicas copies if it is
// missing (0: 3 on a cluster of three servers or more, else 1), and
// deletes the records of principals that are gone.
func (s *Store) PublishIdentities(ctx context.Context, js jetstream.JetStream, tenant string, replicas int) error {
	records, err := s.IdentityRecords(tenant)
	if err != nil {
		return err
	}
	if replicas == 0 {
		replicas = 1
		if nc := js.Conn(); nc.ConnectedClusterName() != "" && len(nc.Servers()) >= 3 {
			replicas = 3
		}
	}
	// A cluster that has just started may not place the bucket yet (no
	// leader, not every peer current): ask again for a while.
	var kv jetstream.KeyValue
	settled := time.Now().Add(jsSettle)
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err = js.CreateOrUpdateKeyValue(actx, jetstream.KeyValueConfig{
			Bucket:      IdentitiesBucket,
			Description: "Equilateral identities of this tenant, signed by the operator",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    max(replicas, 1),
		})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().After(settled) {
			return fmt.Errorf("auth: identities bucket of %s: %w", tenant, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	for key, value := range records {
		if entry, err := kv.Get(ctx, key); err == nil && string(entry.Value()) == string(value) {
			continue
		}
		if _, err := kv.Put(ctx, key, value); err != nil {
			return fmt.Errorf("auth: publish %s of %s: %w", key, tenant, err)
		}
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return err
	}
	if lister != nil {
		var stale []string
		for key := range lister.Keys() {
			if _, ok := records[key]; !ok {
				stale = append(stale, key)
			}
		}
		for _, key := range stale {
			if err := kv.Purge(ctx, key); err != nil {
				return fmt.Errorf("auth: withdraw %s of %s: %w", key, tenant, err)
			}
		}
	}
	return nil
}

// ReadIdentityRecord checks a principal record from IdentitiesBucket: a
// generic JWT of the record type, signed by one of operatorKeys (the
// operator's identity and signing keys), about a principal of tenant. It
// returns the principal as recorded.
func ReadIdentityRecord(token []byte, operatorKeys []string, tenant string) (Principal, error) {
	claims, err := jwt.DecodeGeneric(string(token))
	if err != nil {
		return Principal{}, fmt.Errorf("auth: identity record: %w", err)
	}
	if kind, _ := claims.Data["equilateral"].(string); kind != identityRecordType {
		return Principal{}, fmt.Errorf("auth: not an identity record (%q)", kind)
	}
	if !slices.Contains(operatorKeys, claims.Issuer) {
		return Principal{}, fmt.Errorf("auth: identity record %s is not signed by the operator", claims.Name)
	}
	raw, err := json.Marshal(claims.Data["record"])
	if err != nil {
		return Principal{}, err
	}
	var p Principal
	if err := json.Unmarshal(raw, &p); err != nil {
		return Principal{}, fmt.Errorf("auth: identity record %s: %w", claims.Name, err)
	}
	if p.Tenant != tenant || p.PublicKey != claims.Subject || claims.Name != p.Tenant+"/"+p.Name {
		return Principal{}, fmt.Errorf("auth: identity record %s does not match its principal", claims.Name)
	}
	return p, nil
}

// OperatorKeys reads an operator JWT (public: `DIR/operator/operator.jwt`)
// and returns the keys that may sign for the operator: its identity and
// its signing keys. They are what ReadIdentityRecord trusts.
func OperatorKeys(operatorJWT []byte) ([]string, error) {
	claims, err := jwt.DecodeOperatorClaims(strings.TrimSpace(string(operatorJWT)))
	if err != nil {
		return nil, fmt.Errorf("auth: operator JWT: %w", err)
	}
	return append([]string{claims.Subject}, claims.SigningKeys...), nil
}

// IdentityRecordName is the principal a key of IdentitiesBucket names, or
// "" for a key that is not a principal's.
func IdentityRecordName(key string) string {
	name, _ := strings.CutPrefix(key, identityPrefix)
	if name == key {
		return ""
	}
	return name
}
