package pleooauth

import (
	"strconv"
	"strings"
)

// field describes one registration field. fields is the one place that
// says, for each: its JSON name, its label on Pleo's Developer Partner
// Registration form, what a partner must put there (for wrong_type
// messages) and what Pleo does with it (for required and recommended
// messages). Its order is the order of Pleo's form, which is the order
// findings are reported in and [Registration.Form] lists.
type field struct {
	name    string                    // JSON name, as the Registration's json tag spells it
	label   string                    // label on Pleo's form; "" for a field the form does not ask
	want    string                    // what a value must be, e.g. "a string"
	purpose string                    // what Pleo does with it, as the end of a sentence
	target  func(r *Registration) any // the Go field, to decode into and to read
}

var fields = []field{
	{"client_name", "Client Name", "a string", "it is your application's brand name, shown to users when they authorise it",
		func(r *Registration) any { return &r.ClientName }},
	{"client_uri", "Client URI", "a string holding a URL", "it links to your app's homepage or integration announcement page",
		func(r *Registration) any { return &r.ClientURI }},
	{"logo_uri", "Logo", "a string holding a URL", "Pleo shows your square (1:1) logo to users when they authorise your app",
		func(r *Registration) any { return &r.LogoURI }},
	{"tos_uri", "Terms of Service", "a string holding a URL", "it links to the legal agreement governing use of your app",
		func(r *Registration) any { return &r.TOSURI }},
	{"policy_uri", "Privacy Policy", "a string holding a URL", "it links to how your app collects and processes user data",
		func(r *Registration) any { return &r.PolicyURI }},
	{"contacts", "Contacts", "a list of email addresses", "Pleo needs the email addresses of the people responsible for the application",
		func(r *Registration) any { return &r.Contacts }},
	{"initiation_uri", "Initiation URI", "a string holding a URL", "it is where users start connecting your app to Pleo, and lets Pleo list your app in its catalogue",
		func(r *Registration) any { return &r.InitiationURI }},
	{"settings_uri", "Settings URI", "a string holding a URL", "it is where users manage your app's settings from within Pleo",
		func(r *Registration) any { return &r.SettingsURI }},
	{"redirect_uris", "Redirect URIs", "a list of URLs", "Pleo sends users back to one of these after they authorise your app",
		func(r *Registration) any { return &r.RedirectURIs }},
	{"scope", "Scopes", `one string of space-separated scopes, such as "users:read users:write"`, "it lists the API permissions your client needs",
		func(r *Registration) any { return &r.Scope }},
	{"pkce_supported", "PKCE Support", "true or false", "it says whether your client uses PKCE",
		func(r *Registration) any { return &r.PKCESupported }},
	// Pleo's form does not ask how the client authenticates: Pleo documents
	// client_secret_basic.
	{"token_endpoint_auth_method", "", "one of client_secret_basic, client_secret_post or none", "it says how your client authenticates at the token endpoint",
		func(r *Registration) any { return &r.TokenEndpointAuthMethod }},
	{"subject_type", "Subject Type Preference", "one of none, company or organisation", "it is the default kind of Pleo resource your client operates on",
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

// FormEntry is one parameter of Pleo's Developer Partner Registration form
// with the value to type into it.
type FormEntry struct {
	Field string `json:"field"` // the JSON name, "client_name"
	Label string `json:"label"` // the form's label, "Client Name"
	Value string `json:"value"` // what to type; "" for a parameter left empty
}

// Form returns what to type into Pleo's Developer Partner Registration
// form, in the form's order and with its labels, as Pleo's "How to Register
// an OAuth 2.0 Client" page lists them. Lists are written space-separated;
// PKCE Support is "Supported" or "Not supported"; the Subject Type
// Preference is "None" (also when it is not set), "Company" or "Organisation".
// The form does not ask for the token endpoint authentication method, so
// Form leaves it out. Form does not check the registration: call
// [Registration.Validate] first.
func (r *Registration) Form() []FormEntry {
	entries := make([]FormEntry, 0, len(fields))
	for _, f := range fields {
		if f.label == "" {
			continue
		}
		var value string
		switch v := f.target(r).(type) {
		case *string:
			value = *v
		case *[]string:
			value = strings.Join(*v, " ")
		case *bool:
			value = "Not supported"
			if *v {
				value = "Supported"
			}
		case *SubjectType:
			value = map[SubjectType]string{SubjectNone: "None", SubjectCompany: "Company", SubjectOrganisation: "Organisation"}[v.Canonical()]
		}
		if f.name == "scope" {
			value = strings.Join(strings.Fields(value), " ")
		}
		entries = append(entries, FormEntry{Field: f.name, Label: f.label, Value: value})
	}
	return entries
}
