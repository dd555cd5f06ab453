package security

// Control is one security control, switched on from its level up.
type Control string

// The controls, by the level that switches them on (docs/security.md,
// "Levels", says what each does and which test proves it).
const (
	// Foundation: always on.
	PrincipalCreds  Control = "principal-creds"  // one nkey and creds file per principal
	SubjectACLs     Control = "subject-acls"     // the server enforces each role's subjects
	TenantAccounts  Control = "tenant-accounts"  // one NATS account per tenant
	InputValidation Control = "input-validation" // strict decoding, schemas, bounded sizes
	SanitizedErrors Control = "sanitized-errors" // refusals say why, with a request id, and leak nothing
	NoPayloadLogs   Control = "no-payload-logs"  // logs carry ids, never task data

	// Enhanced.
	SignedEvents     Control = "signed-events"      // the orchestrator verifies every event's signature
	Audit            Control = "audit"              // every decision in the signed audit stream
	AgentLimits      Control = "agent-limits"       // resource limits, timeouts, concurrency caps
	AdminMFA         Control = "admin-mfa"          // TOTP on commands that mint creds or change tenants
	EncryptionAtRest Control = "encryption-at-rest" // JetStream stores encrypted on disk

	// Advanced.
	TLSEverywhere    Control = "tls"              // every client and route connection over TLS
	VerifyEveryHop   Control = "verify-every-hop" // agents verify dispatches, clients replies and events
	DurableReplay    Control = "durable-replay-protection"
	Monitoring       Control = "monitoring"         // real-time security monitoring and alerts
	OutputGate       Control = "output-gate"        // a review gate on every code-generating capability
	CredentialMaxAge Control = "credential-max-age" // creds expire; rotate renews them

	// Enterprise.
	PayloadEncryption Control = "payload-encryption" // end-to-end, the orchestrator routes ciphertext
	SignedSharing     Control = "signed-sharing"     // cross-tenant only through signed exports/imports
	SSO               Control = "sso"                // people sign in with OIDC
)

// controlInfo is what the catalogue knows of a control.
type controlInfo struct {
	level Level
	what  string
	fix   string // how to turn it on where it can be off
	// planned: not built yet; listed so the catalogue is whole, never
	// required by a gate until it exists.
	planned bool
}

var catalogue = map[Control]controlInfo{
	PrincipalCreds:  {level: Foundation, what: "per-principal nkey creds"},
	SubjectACLs:     {level: Foundation, what: "subject ACLs enforced by the server"},
	TenantAccounts:  {level: Foundation, what: "one NATS account per tenant"},
	InputValidation: {level: Foundation, what: "input validation (strict decoding, schemas, size limits)"},
	SanitizedErrors: {level: Foundation, what: "sanitized errors with a request id"},
	NoPayloadLogs:   {level: Foundation, what: "logs without payloads"},

	SignedEvents: {level: Enhanced, what: "signed events verified by the orchestrator"},
	Audit:        {level: Enhanced, what: "signed audit stream of every decision"},
	AgentLimits:  {level: Enhanced, what: "per-agent resource limits, timeouts and concurrency caps"},
	AdminMFA: {level: Enhanced, what: "MFA (TOTP) on commands that mint creds or change tenants",
		fix: "enroll an admin: equilateral admin enroll NAME --data-dir DIR"},
	EncryptionAtRest: {level: Enhanced, what: "JetStream encryption at rest",
		fix: "run the servers with the configs equilateral init writes (jetstream { cipher, key }, server_tags [eq-encrypted]), or add them to yours (docs/cluster.md, \"Encryption at rest\")"},

	TLSEverywhere: {level: Advanced, what: "TLS on every connection",
		fix: "equilateral init --cluster N --tls (or your certificates with --tls-cert/--tls-key/--tls-ca), then tls:// server URLs and --tls-ca (tls_ca: in the config)"},
	VerifyEveryHop: {level: Advanced, what: "verification at every hop (agents verify dispatches, clients verify replies and events)"},
	DurableReplay:  {level: Advanced, what: "durable replay protection shared by every replica"},
	Monitoring:     {level: Advanced, what: "real-time security monitoring and alerts", planned: true},
	OutputGate: {level: Advanced, what: "an output validation gate on every code-generating capability",
		fix: "in the policy, give every capability with generates_code: true a gate: (a reviewing capability)"},
	CredentialMaxAge: {level: Advanced, what: "credential maximum age",
		fix: "issue creds at advanced or above (max_credential_age in the data dir's security.json, 720h by default) and renew every principal named with `equilateral agent rotate NAME` (client rotate for clients)"},

	PayloadEncryption: {level: Enterprise, what: "end-to-end payload encryption", planned: true},
	SignedSharing:     {level: Enterprise, what: "cross-tenant sharing only through signed exports/imports", planned: true},
	SSO:               {level: Enterprise, what: "SSO for humans (OIDC through NATS auth callout)", planned: true},
}

// order is the catalogue's order: by level, then as listed above.
var order = []Control{
	PrincipalCreds, SubjectACLs, TenantAccounts, InputValidation, SanitizedErrors, NoPayloadLogs,
	SignedEvents, Audit, AgentLimits, AdminMFA, EncryptionAtRest,
	TLSEverywhere, VerifyEveryHop, DurableReplay, Monitoring, OutputGate, CredentialMaxAge,
	PayloadEncryption, SignedSharing, SSO,
}

// Controls lists every control, lowest level first.
func Controls() []Control { return append([]Control(nil), order...) }

// Level is the level that switches c on (0 for an unknown control).
func (c Control) Level() Level { return catalogue[c].level }

// What says in a few words what c is.
func (c Control) What() string { return catalogue[c].what }

// Fix says how to turn c on, where that is up to the operator ("" when
// the level alone switches it on).
func (c Control) Fix() string { return catalogue[c].fix }

// Planned reports whether c is not built yet: it is listed, and its level
// promises it, but no gate requires it.
func (c Control) Planned() bool { return catalogue[c].planned }

// On lists the controls level l switches on (planned ones included).
func (l Level) On() []Control {
	var on []Control
	for _, c := range order {
		if l.Has(c) {
			on = append(on, c)
		}
	}
	return on
}
