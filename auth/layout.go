package auth

import "path/filepath"

// layout names every file in a data dir. It is the single place that knows
// where things live; doc.go shows the same tree to humans.
type layout struct{ root string }

func (l layout) lockFile() string        { return filepath.Join(l.root, ".lock") }
func (l layout) serverConfig() string    { return filepath.Join(l.root, "server.conf") }
func (l layout) resolverDir() string     { return filepath.Join(l.root, "resolver") }
func (l layout) jetStreamDir() string    { return filepath.Join(l.root, "jetstream") }
func (l layout) operatorDir() string     { return filepath.Join(l.root, "operator") }
func (l layout) operatorSeed() string    { return filepath.Join(l.operatorDir(), "operator.nk") }
func (l layout) operatorSigning() string { return filepath.Join(l.operatorDir(), "signing.nk") }
func (l layout) operatorJWT() string     { return filepath.Join(l.operatorDir(), "operator.jwt") }
func (l layout) systemDir() string       { return filepath.Join(l.root, "system") }
func (l layout) systemJWT() string       { return filepath.Join(l.systemDir(), "account.jwt") }
func (l layout) systemSigning() string   { return filepath.Join(l.systemDir(), "signing.nk") }
func (l layout) systemCreds() string     { return filepath.Join(l.systemDir(), "admin.creds") }
func (l layout) tenantsDir() string      { return filepath.Join(l.root, "tenants") }
func (l layout) credsDir() string        { return filepath.Join(l.root, "creds") }
func (l layout) keyJournal() string      { return filepath.Join(l.root, "keys.journal") }
func (l layout) reservations() string    { return filepath.Join(l.root, "jetstream-reservations.json") }

func (l layout) tenantDir(tenant string) string { return filepath.Join(l.tenantsDir(), tenant) }
func (l layout) tenantCredsDir(tenant string) string {
	return filepath.Join(l.credsDir(), tenant)
}

// Paths inside one tenant directory (relative, so a tenant can be assembled
// in a temporary directory and renamed into place).
const (
	tenantMetaFile   = "tenant.json"
	tenantJWTFile    = "account.jwt"
	tenantKeysDir    = "keys"
	principalsSubdir = "principals"
)

func roleKeyFile(r Role) string { return filepath.Join(tenantKeysDir, string(r)+".nk") }
func principalFile(name string) string {
	return filepath.Join(principalsSubdir, name+".json")
}
