package pleooauth

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSeedExampleFiles(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"testdata/seed-example.yaml", "testdata/seed-example.json", "examples/registration.yaml"} {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		r, err := ParseRegistration(data)
		require.NoError(t, err, name)
		assert.Equal(t, seedExample(), r, name)
	}
}

func TestParseRegistrationFindings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  []string // field:rule, in order
		says  []string // pieces of the messages
		check func(t *testing.T, r *Registration)
	}{
		{
			name:  "unknown field with suggestion",
			input: "client_name: Example Client\nredirect_uri: [https://client.example/callback]\n",
			want:  []string{"redirect_uri:unknown_field"},
			says:  []string{`did you mean "redirect_uris"?`},
			check: func(t *testing.T, r *Registration) { assert.Equal(t, "Example Client", r.ClientName) },
		},
		{
			name:  "camelCase field",
			input: `{"clientName": "Example Client"}`,
			want:  []string{"clientName:unknown_field"},
			says:  []string{`did you mean "client_name"?`},
		},
		{
			name:  "unknown field without a close match",
			input: "colour: blue\n",
			want:  []string{"colour:unknown_field"},
			says:  []string{"colour is not a registration field"},
		},
		{
			name:  "client_id",
			input: "client_id: 12a3b456-78c9-0d12-34e5-f678ab9bcd0e\n",
			want:  []string{"client_id:unknown_field"},
			says:  []string{"Pleo issues it after registration"},
		},
		{
			name:  "wrong types",
			input: "client_name: 42\ncontacts: name.surname@example.io\nscope: [users:read, users:write]\npkce_supported: yes\nredirect_uris: {a: b}\n",
			want:  []string{"client_name:wrong_type", "contacts:wrong_type", "redirect_uris:wrong_type", "scope:wrong_type", "pkce_supported:wrong_type"},
			says:  []string{"client_name must be a string, not a number", "contacts must be a list of email addresses, not a string", "scope must be one string of space-separated scopes", "not a list", "pkce_supported must be true or false, not a string", "redirect_uris must be a list of URLs, not a mapping"},
			check: func(t *testing.T, r *Registration) {
				// Half-decoded values are not left behind.
				assert.Empty(t, r.ClientName)
				assert.Nil(t, r.Contacts)
				assert.Empty(t, r.Scope)
			},
		},
		{
			name:  "list with a wrong-typed element",
			input: `{"contacts": ["a@client.example", 7]}`,
			want:  []string{"contacts:wrong_type"},
			check: func(t *testing.T, r *Registration) { assert.Nil(t, r.Contacts) },
		},
		{
			name:  "duplicate field in JSON",
			input: `{"client_name": "A", "client_name": "B"}`,
			want:  []string{"client_name:duplicate_field"},
			check: func(t *testing.T, r *Registration) { assert.Equal(t, "A", r.ClientName) },
		},
		{
			name:  "duplicate field in YAML, as in JSON",
			input: "scope: users:read\nclient_name: A\nscope: users:write\n",
			want:  []string{"scope:duplicate_field"},
			says:  []string{"scope is given more than once"},
			check: func(t *testing.T, r *Registration) { assert.Equal(t, "users:read", r.Scope) },
		},
		{
			name:  "null is absent",
			input: "client_name: ~\nlogo_uri: null\n",
			want:  nil,
		},
		{
			name:  "secret-looking keys, in form order after the known fields",
			input: "client_secret: s3cr3t-value-1\nscope: users:read\nClientSecret: s3cr3t-value-2\naccess_token: s3cr3t-value-3\npassword: s3cr3t-value-4\napi_key: s3cr3t-value-5\n",
			want:  []string{"client_secret:secret_in_registration", "ClientSecret:secret_in_registration", "access_token:secret_in_registration", "password:secret_in_registration", "api_key:secret_in_registration"},
			says:  []string{"Its value was not read", "CredentialsFromEnv"},
			check: func(t *testing.T, r *Registration) { assert.Equal(t, "users:read", r.Scope) },
		},
		{
			name:  "odd key is quoted and shortened",
			input: `{"\n` + strings.Repeat("x", 80) + `": 1}`,
			want:  []string{fmt.Sprintf("%q:unknown_field", "\n"+strings.Repeat("x", 63)+"...")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRegistration([]byte(tt.input))
			require.NotNil(t, r, "content mistakes still return the registration")
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidRegistration)
			var verrs ValidationErrors
			require.ErrorAs(t, err, &verrs)
			assert.Equal(t, tt.want, rules(verrs))
			all := err.Error()
			for _, s := range tt.says {
				assert.Contains(t, all, s)
			}
			assert.NotContains(t, all, "s3cr3t")
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestParseRegistrationSyntaxErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		input     string
		line, col int
		says      string
	}{
		{"empty", "", 0, 0, "empty"},
		{"only spaces", "  \n\t\n", 0, 0, "empty"},
		{"yaml null", "~\n", 1, 1, "empty"},
		{"scalar", "hello", 1, 1, "a single string"},
		{"list", "- a\n- b\n", 1, 1, "a list"},
		{"number", "42", 1, 1, "a single number"},
		{"unclosed flow sequence", "client_name: Example\ncontacts: [a@b.io\n", 2, 11, "not found"},
		// The value that starts on line 1 runs on into line 2.
		{"bad indentation", "client_name: Example\n  scope: users:read\n scope2: x\n", 1, 14, "mapping value is not allowed"},
		{"broken JSON", "{\n  \"client_name\": \"Example\",\n  \"scope\": users:read\n}", 3, 12, "invalid character 'u'"},
		// A document that starts with "{" is read as JSON, not as YAML flow.
		{"YAML flow mapping", "{client_name: Example}", 1, 2, "invalid character 'c'"},
		{"two YAML documents", "scope: a:b\n---\nscope: c:d\n", 2, 1, "more than one YAML document"},
		{"YAML alias", "a: &x [1, 2]\nb: *x\n", 2, 4, "aliases"},
		{"YAML merge key", "base: &b {scope: users:read}\nprod:\n  <<: *b\n", 3, 7, "aliases"},
		{"tab indentation", "contacts:\n\t- a@b.io\n", 2, 1, "tab character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRegistration([]byte(tt.input))
			assert.Nil(t, r)
			var serr *SyntaxError
			require.ErrorAs(t, err, &serr)
			assert.NotErrorIs(t, err, ErrInvalidRegistration)
			assert.Equal(t, tt.line, serr.Line, serr.Error())
			if tt.col != 0 {
				assert.Equal(t, tt.col, serr.Column, serr.Error())
			}
			require.NotEmpty(t, tt.says, "a case says what the message holds")
			assert.Contains(t, serr.Msg, tt.says)
			assert.NotContains(t, serr.Error(), "\n")
		})
	}
}

func TestSyntaxErrorsDoNotEchoTheInput(t *testing.T) {
	t.Parallel()
	const secret = "12345a6bcd789ef012abcd34ef5a6b"
	for _, input := range []string{
		"client_secret: \"" + secret + "\n",
		"client_secret: '" + secret + "\n",
		"client_secret: [" + secret + "\n",
		"{\"client_secret\": \"" + secret + "\"",
		"{\"client_secret\": " + secret + "}",
		"client_secret: " + secret + "\n  - x\n",
		"\"" + secret + "\": x: y\n",
	} {
		_, err := ParseRegistration([]byte(input))
		require.Error(t, err, input)
		assert.NotContains(t, err.Error(), secret[:8], input)
	}
}

func TestParseRegistrationLimits(t *testing.T) {
	t.Parallel()
	// "Billion laughs": each level repeats the previous one ten times.
	var bomb strings.Builder
	bomb.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&bomb, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", "))
	}
	_, err := ParseRegistration([]byte(bomb.String()))
	var serr *SyntaxError
	require.ErrorAs(t, err, &serr)
	assert.Contains(t, err.Error(), "aliases")

	big := make([]byte, MaxRegistrationBytes+1)
	_, err = ParseRegistration(big)
	require.ErrorAs(t, err, &serr)
	assert.Contains(t, err.Error(), "larger than 1048576 bytes")
	assert.NotContains(t, err.Error(), "1048577")

	// A byte-order mark is not an error.
	r, err := ParseRegistration(append([]byte("\xef\xbb\xbf"), []byte("client_name: Example Client\n")...))
	require.NoError(t, err)
	assert.Equal(t, "Example Client", r.ClientName)
}

// hostileYAML are documents under the read cap that made the YAML parser
// take gigabytes or minutes before it was bounded, with what the refusal
// must say. The command's tests and the fuzz corpus use them too.
func hostileYAML() []struct{ name, doc, says string } {
	keys := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "k%d: 1\n", i)
		}
		return b.String()
	}
	indent := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(strings.Repeat(" ", i) + "a:\n")
		}
		return b.String()
	}
	return []struct{ name, doc, says string }{
		{"131072 [ (128 KiB)", "client_name: " + strings.Repeat("[", 131072), "at most 65536 bytes"},
		{"65536 [ (64 KiB)", "client_name: " + strings.Repeat("[", 65536), "at most 65536 bytes"},
		{"65000 [ (under 64 KiB)", "client_name: " + strings.Repeat("[", 65000), "more than 4096 tokens"},
		{"3000 [", "client_name: " + strings.Repeat("[", 3000), "more than 8 levels deep"},
		{"3000 {", "client_name: " + strings.Repeat("{", 3000), "more than 8 levels deep"},
		{"9 nested flow lists", "contacts: " + strings.Repeat("[", 9) + strings.Repeat("]", 9), "more than 8 levels deep"},
		{"32000 - on one line", strings.Repeat("- ", 32000), "more than 4096 tokens"},
		{"2000 - on one line", strings.Repeat("- ", 2000), "more than 8 levels deep"},
		{"100000 lines of kN: 1", keys(100000), "at most 65536 bytes"},
		{"2000 lines of kN: 1", keys(2000), "more than 4096 tokens"},
		{"200 lines each indented one more", indent(200), "more than 8 levels deep"},
		{"64 KiB of comment lines", strings.Repeat("#\n", 30000), "more than 4096 tokens"},
	}
}

func TestParseRegistrationRefusesHostileYAML(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileYAML() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Less(t, len(tt.doc), MaxRegistrationBytes, "every shape is under the read cap")
			r, err := ParseRegistration([]byte(tt.doc))
			assert.Nil(t, r)
			var serr *SyntaxError
			require.ErrorAs(t, err, &serr)
			require.NotEmpty(t, tt.says, "a case says what the message holds")
			assert.Contains(t, err.Error(), tt.says)
		})
	}
}

func TestParseRegistrationKeepsRealYAMLWithinBounds(t *testing.T) {
	t.Parallel()
	// Eight levels are allowed, and lists as long as a real registration's.
	deep := "contacts: " + strings.Repeat("[", 7) + strings.Repeat("]", 7) + "\n"
	_, err := ParseRegistration([]byte(deep))
	var serr *SyntaxError
	assert.NotErrorAs(t, err, &serr)
	var many strings.Builder
	many.WriteString("# a long, commented registration\nclient_name: Example Client\nredirect_uris:\n")
	for i := range 200 {
		fmt.Fprintf(&many, "  - https://client.example/callback/%d # comment\n", i)
	}
	r, err := ParseRegistration([]byte(many.String()))
	require.NoError(t, err)
	assert.Len(t, r.RedirectURIs, 200)
}

func TestParseYAMLAndJSONAgree(t *testing.T) {
	t.Parallel()
	yamlDoc := `
client_name: "Example: Client"   # a colon inside quotes
client_uri: https://client.example/
contacts:
  - a@client.example
  - b@client.example
redirect_uris: ["https://client.example/callback", "http://localhost:8080/callback"]
scope: >-
  users:read
  users:write
pkce_supported: false
token_endpoint_auth_method: client_secret_post
subject_type: organization
`
	jsonDoc := `{"client_name":"Example: Client","client_uri":"https://client.example/",
	"contacts":["a@client.example","b@client.example"],
	"redirect_uris":["https://client.example/callback","http://localhost:8080/callback"],
	"scope":"users:read users:write","pkce_supported":false,
	"token_endpoint_auth_method":"client_secret_post","subject_type":"organization"}`
	fromYAML, err := ParseRegistration([]byte(yamlDoc))
	require.NoError(t, err)
	fromJSON, err := ParseRegistration([]byte(jsonDoc))
	require.NoError(t, err)
	assert.Equal(t, fromJSON, fromYAML)
	assert.Equal(t, AuthClientSecretPost, fromYAML.AuthMethod())
	assert.Equal(t, []Scope{ScopeUsersRead, ScopeUsersWrite}, fromYAML.Scopes())
}

func TestParseAndCheck(t *testing.T) {
	t.Parallel()
	doc := `
client_name: 42
client_uri: http://client.example/
redirect_urls: [https://client.example/callback]
client_secret: 12345a6bcd789ef012abcd34ef5a6b
contacts: [name.surname@example.io]
scope: users:read
pkce_supported: true
`
	reg, report, err := ParseAndCheck([]byte(doc), Production)
	require.NoError(t, err)
	require.NotNil(t, reg)
	assert.Equal(t, []string{
		"client_name:wrong_type", // not also client_name:required
		"client_uri:https_required",
		"tos_uri:required",
		"policy_uri:required",
		"redirect_uris:required",
		"redirect_urls:unknown_field",
		"client_secret:secret_in_registration",
	}, rules(report.Errors))
	assert.Equal(t, recommendedWarnings, rules(report.Warnings))
	assert.NotContains(t, fmt.Sprint(report), "12345a6bcd789ef012abcd34ef5a6b")

	reg, report, err = ParseAndCheck([]byte("client_name: [\n"), Staging)
	assert.Nil(t, reg)
	var serr *SyntaxError
	assert.ErrorAs(t, err, &serr)
	assert.Empty(t, report.Errors)

	_, report, err = ParseAndCheck([]byte(`{"client_name": "Example Client"}`), Staging)
	require.NoError(t, err)
	assert.NotEmpty(t, report.Errors)
}

// TestMessagesSayWhatToDo: findings for the mistakes partners make most
// name the fix.
func TestMessagesSayWhatToDo(t *testing.T) {
	t.Parallel()
	base := "client_name: Example Client\nclient_uri: https://client.example/\ntos_uri: https://client.example/tos\npolicy_uri: https://client.example/privacy\ncontacts: [name.surname@example.io]\nredirect_uris: [https://client.example/callback]\n"
	tests := []struct {
		name, extra string
		field       string
		rule        Rule
		says        string
	}{
		{"pkce_supported missing", "scope: users:read\n", "pkce_supported", RulePKCERecommended, "pkce_supported is missing, which counts as false"},
		{"pkce_supported missing, public client", "scope: users:read\ntoken_endpoint_auth_method: none\n", "pkce_supported", RulePKCERequired, "pkce_supported is missing; set it to true"},
		{"pkce_supported false", "scope: users:read\npkce_supported: false\n", "pkce_supported", RulePKCERecommended, "pkce_supported is false"},
		{"pkce for pkce_supported", "scope: users:read\npkce: true\n", "pkce", RuleUnknownField, `did you mean "pkce_supported"?`},
		{"privacy_uri for policy_uri", "scope: users:read\npkce_supported: true\nprivacy_uri: https://client.example/p\n", "privacy_uri", RuleUnknownField, `did you mean "policy_uri"?`},
		{"PKCE Support, as Pleo's form says", "scope: users:read\npkce_supported: true\nPKCE Support: true\n", `"PKCE Support"`, RuleUnknownField, `did you mean "pkce_supported"?`},
		{"exports:read", "scope: exports:read\npkce_supported: true\n", "scope", RuleUnknownScope, `did you mean "export-jobs:read"?`},
		{"user:read", "scope: user:read\npkce_supported: true\n", "scope", RuleScopeTypo, `did you mean "users:read"?`},
		{"a comma after a scope", "scope: \"user:read, users:write\"\npkce_supported: true\n", "scope", RuleMalformedScope, `scopes are separated by spaces, not commas; did you mean "users:read"?`},
		{"a contact without a dot in its domain", "scope: users:read\npkce_supported: true\ncontacts: [dev@acme]\n", "contacts[0]", RuleUnqualifiedEmail, `has the domain "acme", which has no dot`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := tt.extra + base
			if strings.Contains(tt.extra, "contacts:") {
				doc = strings.Replace(base, "contacts: [name.surname@example.io]\n", "", 1) + tt.extra
			}
			_, report, err := ParseAndCheck([]byte(doc), Production)
			require.NoError(t, err)
			f := requireFinding(t, append(report.Errors, report.Warnings...), tt.field, tt.rule)
			require.NotEmpty(t, tt.says, "a case says what the message holds")
			assert.Contains(t, f.Message, tt.says)
		})
	}
}
