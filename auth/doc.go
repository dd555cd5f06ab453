// Package auth is Equilateral's identity model on NATS operator mode:
// one operator, one NATS account per tenant, one NATS user per agent,
// client and orchestrator, each with its own nkey.
//
// # Trust chain
//
// The operator's identity key signs only the operator JWT; its signing key
// signs accounts (StrictSigningKeyUsage). Each tenant account carries one
// scoped signing key per Role. A scoped key's template is that role's ACL
// (the subject table of PRODUCT.md, built from package protocol), so a user
// JWT signed by it carries no permissions of its own: the server fills in
// {{name()}} and the agent's capability tags (cap:<capability>) at connect.
// A leaked user JWT cannot widen its rights, and changing a role's ACL is
// one account update.
//
// # Data dir
//
//	DIR/server.conf                  nats-server config (operator mode, full resolver, JetStream)
//	DIR/operator/operator.nk         operator identity seed          0600
//	DIR/operator/signing.nk          operator signing seed           0600
//	DIR/operator/operator.jwt        operator JWT
//	DIR/system/account.jwt           system account JWT
//	DIR/system/signing.nk            system account signing seed     0600
//	DIR/system/admin.creds           system user; publishes account changes
//	DIR/tenants/<t>/tenant.json      name, account key, limits
//	DIR/tenants/<t>/account.jwt      current account JWT (limits, scoped keys, revocations)
//	DIR/tenants/<t>/keys/<role>.nk   scoped signing seeds            0600
//	DIR/tenants/<t>/principals/<n>.json  role, capabilities, public key, revocation
//	DIR/creds/<t>/<name>.creds       creds handed to principals      0600
//	DIR/resolver/                    the local server's account store
//	DIR/jetstream/                   the local server's JetStream store
//	DIR/keys.journal                 revocations, rotations, tenant deletes (append-only)
//	DIR/jetstream-reservations.json  each tenant's JetStream limits, for capacity checks
//
// Every file is written through a temporary file and a rename; directories
// are 0700. User seeds are never kept in the data dir beyond the creds
// file given to their owner, and no function logs or prints a seed.
//
// # Reading without keys
//
// OpenReadOnly gives a Directory: tenants, principals, creds paths and the
// key journal, read from operator/operator.jwt, tenants/<t>/tenant.json,
// tenants/<t>/principals/ and keys.journal. It never opens a .nk seed, so
// a process that only verifies and serves (the orchestrator) can run where
// the seeds are absent. Open gives a Store, the Directory with the
// operator signing key, for every change.
//
// # Changes go live
//
// CreateTenant, DeleteTenant, Revoke and Rotate publish the new account JWT
// through a Publisher before recording it: NATSPublisher sends it to running
// servers over $SYS.REQ.CLAIMS.UPDATE (DELETE), ResolverDirPublisher writes
// it for a stopped local server. A refused change leaves the data dir as it
// was. Revocation closes the user's live connections at once.
//
// # Keys bite at once
//
// Revoke, Rotate and DeleteTenant append the change to DIR/keys.journal
// before they return. A process that caches keys follows it with a
// KeyJournal: one fstat per lookup tells whether anything changed (see
// bus.StoreKeys).
//
// # JetStream limits
//
// Every tenant has finite JetStream limits (DefaultLimits). A server on its
// own reserves the sum of its accounts' limits against its capacity and
// gives an account that does not fit no JetStream at all, so CreateTenant,
// with a JetStreamChecker publisher, refuses limits that do not fit
// (CapacityError) and confirms JetStream works for the new tenant
// (ErrJetStreamUnavailable otherwise).
//
// # Concurrency
//
// A Store may be shared by goroutines and by separate processes: every
// change holds an exclusive lock on DIR/.lock.
package auth
