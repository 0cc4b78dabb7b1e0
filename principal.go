package custos

import (
	"context"
	"time"
)

// Principal kinds.
const (
	KindEmployee = "employee"
	KindService  = "service"
)

// Principal is an authenticated caller: an employee (everything an employee
// does) or a service (ingest, log readers).
type Principal struct {
	Kind    string    `json:"kind"`
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

type ctxKey int

const (
	principalKey ctxKey = iota
	requestIDKey
	clientKey
	employeeKey
)

// WithPrincipal returns ctx carrying the authenticated caller.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the caller carried by ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// WithRequest returns ctx carrying the request id and client address that
// audit entries record.
func WithRequest(ctx context.Context, requestID, client string) context.Context {
	ctx = context.WithValue(ctx, requestIDKey, requestID)
	return context.WithValue(ctx, clientKey, client)
}

// RequestFrom returns the request id and client address carried by ctx.
func RequestFrom(ctx context.Context) (requestID, client string) {
	requestID, _ = ctx.Value(requestIDKey).(string)
	client, _ = ctx.Value(clientKey).(string)
	return requestID, client
}

// WithEmployee returns ctx carrying the caller's employee record as the
// authentication layer loaded it for this request, so the decision path
// need not load it again.
func WithEmployee(ctx context.Context, e *Employee) context.Context {
	return context.WithValue(ctx, employeeKey, e)
}

// EmployeeFrom returns the employee record carried by ctx, if any.
func EmployeeFrom(ctx context.Context) (*Employee, bool) {
	e, ok := ctx.Value(employeeKey).(*Employee)
	return e, ok && e != nil
}
