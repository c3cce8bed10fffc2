// Package pleoapi holds the paths of Pleo's endpoints that the SDK calls
// and its fake serves, written once for both.
package pleoapi

// The paths of Pleo's authorization server and API.
const (
	// AuthorizePath is the authorization endpoint (RFC 6749 §3.1).
	AuthorizePath = "/oauth/authorize"
	// TokenPath is the token endpoint (RFC 6749 §3.2).
	TokenPath = "/oauth/token"
	// IntrospectPath is the token introspection endpoint (RFC 7662).
	IntrospectPath = "/oauth/token/introspect"
	// InstallationsPath is the company's installation of the partner's
	// app: DELETE revokes every token of the authorisation.
	InstallationsPath = "/v1/installations/me"
	// EmployeesPath lists the company's employees.
	EmployeesPath = "/v2/employees"
)
