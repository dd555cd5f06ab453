package auth

import "errors"

// Errors returned (wrapped, match with errors.Is) by the Store.
var (
	ErrNoDataDir       = errors.New("auth: no data dir")
	ErrDataDirExists   = errors.New("auth: data dir already initialised")
	ErrTenantExists    = errors.New("auth: tenant already exists")
	ErrUnknownTenant   = errors.New("auth: unknown tenant")
	ErrPrincipalExists = errors.New("auth: principal already exists")
	ErrUnknownAgent    = errors.New("auth: unknown principal")
	ErrWrongRole       = errors.New("auth: principal has another role")
	ErrNoCapability    = errors.New("auth: an agent needs at least one capability")
	ErrReservedName    = errors.New("auth: name is reserved")
	ErrInvalidLimits   = errors.New("auth: invalid limits")
	ErrPushRefused     = errors.New("auth: server refused the update")
	ErrLocked          = errors.New("auth: data dir is busy")
	// ErrNoSigningKey: Open could not load the operator signing key (missing,
	// unreadable or not a seed). OpenReadOnly does not need it.
	ErrNoSigningKey = errors.New("auth: no usable operator signing key")
	// ErrJetStreamCapacity: a tenant's JetStream limits do not fit in
	// what the server has left (see CapacityError).
	ErrJetStreamCapacity = errors.New("auth: JetStream limits do not fit on the server")
	// ErrJetStreamUnavailable: the server did not enable JetStream for a
	// new tenant; the tenant was not created.
	ErrJetStreamUnavailable = errors.New("auth: the server did not enable JetStream for the tenant")
)
