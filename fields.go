package pleooauth

import (
	"strconv"
	"strings"
)

// field describes one registration field: its JSON name, what a partner
// must put there (for wrong_type messages) and what Pleo does with it (for
// required and recommended messages). fields is in the order of Pleo's form,
// which is the order findings are reported in.
type field struct {
	name    string
	want    string // what a value must be, e.g. "a string"
	purpose string // what Pleo does with it, as the end of a sentence
	target  func(r *Registration) any
}

var fields = []field{
	{"client_name", "a string", "it is your application's brand name, shown to users when they authorise it",
		func(r *Registration) any { return &r.ClientName }},
	{"client_uri", "a string holding a URL", "it links to your app's homepage or integration announcement page",
		func(r *Registration) any { return &r.ClientURI }},
	{"logo_uri", "a string holding a URL", "Pleo shows your square (1:1) logo to users when they authorise your app",
		func(r *Registration) any { return &r.LogoURI }},
	{"tos_uri", "a string holding a URL", "it links to the legal agreement governing use of your app",
		func(r *Registration) any { return &r.TOSURI }},
	{"policy_uri", "a string holding a URL", "it links to how your app collects and processes user data",
		func(r *Registration) any { return &r.PolicyURI }},
	{"contacts", "a list of email addresses", "Pleo needs the email addresses of the people responsible for the application",
		func(r *Registration) any { return &r.Contacts }},
	{"initiation_uri", "a string holding a URL", "it is where users start connecting your app to Pleo, and lets Pleo list your app in its catalogue",
		func(r *Registration) any { return &r.InitiationURI }},
	{"settings_uri", "a string holding a URL", "it is where users manage your app's settings from within Pleo",
		func(r *Registration) any { return &r.SettingsURI }},
	{"redirect_uris", "a list of URLs", "Pleo sends users back to one of these after they authorise your app",
		func(r *Registration) any { return &r.RedirectURIs }},
	{"scope", `one string of space-separated scopes, such as "users:read users:write"`, "it lists the API permissions your client needs",
		func(r *Registration) any { return &r.Scope }},
	{"pkce_supported", "true or false", "it says whether your client uses PKCE",
		func(r *Registration) any { return &r.PKCESupported }},
	{"token_endpoint_auth_method", "one of client_secret_basic, client_secret_post or none", "it says how your client authenticates at the token endpoint",
		func(r *Registration) any { return &r.TokenEndpointAuthMethod }},
	{"subject_type", "one of none, company or organisation", "it is the default kind of Pleo resource your client operates on",
		func(r *Registration) any { return &r.SubjectType }},
}

// fieldIndex maps a JSON field name to its position in fields.
var fieldIndex = func() map[string]int {
	m := make(map[string]int, len(fields))
	for i, f := range fields {
		m[f.name] = i
	}
	return m
}()

// fieldRank orders a finding's field path ("redirect_uris[2]") for
// reporting: by form order, then by list index. Paths that name no known
// field sort after every known one.
func fieldRank(path string) (int, int) {
	name, idx := path, -1
	if i := strings.IndexByte(path, '['); i > 0 && strings.HasSuffix(path, "]") {
		name = path[:i]
		if n, err := strconv.Atoi(path[i+1 : len(path)-1]); err == nil {
			idx = n
		}
	}
	if i, ok := fieldIndex[name]; ok {
		return i, idx
	}
	return len(fields), idx
}
