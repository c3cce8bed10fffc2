package pleooauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/partnerkit/pleooauth/internal/suggest"
)

// MaxRegistrationBytes is the largest registration document
// [ParseRegistration] reads. A real one is well under a kilobyte.
const MaxRegistrationBytes = 1 << 20

// SyntaxError reports input to [ParseRegistration] or [ParseAndCheck] that
// is not a JSON or YAML document holding a mapping; find it with
// [errors.As]. It does not match [ErrInvalidRegistration], which is about
// the content of a document that could be read. Its message comes from the
// position and the parser's description, never from the input's text.
type SyntaxError struct {
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	Msg    string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("pleooauth: registration is not valid JSON or YAML: line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return "pleooauth: registration is not valid JSON or YAML: " + e.Msg
}

// ParseRegistration reads a registration from a JSON or YAML document (a
// manifest kept in the partner's repository). A document that starts with
// "{" is JSON; any other is YAML, which is converted to JSON first, so both
// go through the same decoding.
//
// Mistakes in the content do not stop decoding. A field name it does not
// know ([RuleUnknownField], with a suggestion), a client_secret or other
// secret-looking field ([RuleSecretInRegistration]; its value is never read
// into the result nor echoed), a field given twice ([RuleDuplicateField]) or
// a value of the wrong type ([RuleWrongType]) is reported as a [FieldError]:
// ParseRegistration then returns the registration decoded as far as it could
// together with a [ValidationErrors] of those findings, so that a caller can
// show them next to [Registration.Check]'s and the partner sees every
// mistake in one pass.
//
// Only input that is not a JSON or YAML mapping at all (or is larger than
// [MaxRegistrationBytes]) returns a nil registration and a [*SyntaxError]
// with the line and column.
func ParseRegistration(data []byte) (*Registration, error) {
	reg, _, err := parse(data)
	return reg, err
}

// parse is ParseRegistration that also returns the set of field names the
// document gave.
func parse(data []byte) (*Registration, map[string]bool, error) {
	if len(data) > MaxRegistrationBytes {
		return nil, nil, &SyntaxError{Msg: fmt.Sprintf("the document is larger than %d bytes (1 MiB), the most that is read; a registration needs well under a kilobyte", MaxRegistrationBytes)}
	}
	doc, err := toJSON(data)
	if err != nil {
		return nil, nil, err
	}
	return decodeRegistration(doc)
}

var utf8BOM = []byte("\xef\xbb\xbf")

// toJSON returns data as JSON. A document whose first character (after
// white space and a byte-order mark) is "{" or "[" is JSON and must be valid
// JSON; anything else is YAML and is converted. Deciding by the first
// character keeps a broken JSON file from being read as a YAML flow mapping
// that happens to parse.
func toJSON(data []byte) ([]byte, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &SyntaxError{Msg: "the document is empty"}
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		var v any
		var serr *json.SyntaxError
		if err := json.Unmarshal(data, &v); errors.As(err, &serr) {
			line, col := position(data, serr.Offset)
			return nil, &SyntaxError{Line: line, Column: col, Msg: scrub(serr.Error(), data)}
		} else if err != nil {
			return nil, &SyntaxError{Msg: "the JSON document could not be read"}
		}
		return data, nil
	}
	doc, err := yamlToJSON(data)
	if err != nil {
		return nil, yamlSyntaxError(err, data)
	}
	return doc, nil
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col == 0 {
		col = 1
	}
	return line, col
}

// quoted matches a quoted run of characters in a parser's message.
var quoted = regexp.MustCompile(`"[^"]*"|'[^']*'|` + "`[^`]*`")

// scrub removes from a parser's message every quoted piece of the input it
// was given, which may hold a secret on the broken line. A quoted piece of
// one to three characters (as in "invalid character 'x'"), one that is not
// in the input (the parser's own words, as in "',' or ']'") and a
// registration field name are kept.
func scrub(msg string, input []byte) string {
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return quoted.ReplaceAllStringFunc(msg, func(q string) string {
		inner := q[1 : len(q)-1]
		if len(inner) <= 3 || !bytes.Contains(input, []byte(inner)) {
			return q
		}
		if _, known := fieldIndex[inner]; known {
			return q
		}
		return "(text omitted)"
	})
}

// maxDocumentKeys is the most keys a registration document may hold: a
// registration has 13 fields, and every unknown one is a finding.
const maxDocumentKeys = 64

// decodeRegistration decodes a JSON object field by field, so that one bad
// field is one finding and the rest still decode.
func decodeRegistration(doc []byte) (*Registration, map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, &SyntaxError{Msg: "the document could not be read"}
	}
	if tok == nil {
		return nil, nil, &SyntaxError{Line: 1, Column: 1, Msg: "the document is empty (null)"}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, &SyntaxError{Line: 1, Column: 1, Msg: fmt.Sprintf("the document is %s; a registration is a mapping of field names to values", describeToken(tok))}
	}
	reg := &Registration{}
	var findings ValidationErrors
	seen := make(map[string]bool)
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	for n := 0; dec.More(); n++ {
		if n == maxDocumentKeys {
			return nil, nil, &SyntaxError{Msg: fmt.Sprintf("the document holds more than %d fields; a registration has 13", maxDocumentKeys)}
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, &SyntaxError{Msg: "the document could not be read"}
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, &SyntaxError{Msg: "the document could not be read"}
		}
		shown := shortKey(key)
		if seen[key] {
			findings = append(findings, FieldError{shown, RuleDuplicateField, fmt.Sprintf("%s is given more than once; keep one", shown)})
			continue
		}
		seen[key] = true
		i, known := fieldIndex[key]
		switch {
		case known:
			f := fields[i]
			if err := json.Unmarshal(raw, f.target(reg)); err != nil {
				// Leave the field unset rather than half decoded; Check
				// then treats it as missing.
				reflect.ValueOf(f.target(reg)).Elem().SetZero()
				findings = append(findings, FieldError{key, RuleWrongType,
					fmt.Sprintf("%s must be %s, not %s", key, f.want, describeJSON(raw))})
			}
		case secretLooking(key):
			findings = append(findings, FieldError{shown, RuleSecretInRegistration,
				fmt.Sprintf("%s looks like a secret and does not belong in a registration file: Pleo issues the client secret after registration; keep it in a secret store and load it with CredentialsFromEnv (PLEO_CLIENT_SECRET or PLEO_CLIENT_SECRET_FILE). Its value was not read", shown)})
		case key == "client_id":
			findings = append(findings, FieldError{shown, RuleUnknownField,
				"client_id is not part of a registration: Pleo issues it after registration; pass it in Credentials"})
		default:
			hint := ""
			if c := suggestField(key, names); c != "" {
				hint = `; did you mean "` + c + `"?`
			}
			findings = append(findings, FieldError{shown, RuleUnknownField,
				fmt.Sprintf("%s is not a registration field%s", shown, hint)})
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, &SyntaxError{Msg: "the document could not be read"}
	}
	if len(findings) == 0 {
		return reg, seen, nil
	}
	sortByField(findings)
	return reg, seen, findings
}

// fieldAliases are names partners write for a registration field that are
// too far from it for a typo, keyed by their normalised form: the words of
// Pleo's form ("Privacy Policy", "PKCE Support") and of other providers.
var fieldAliases = map[string]string{
	"name": "client_name", "app_name": "client_name", "application_name": "client_name",
	"homepage": "client_uri", "homepage_uri": "client_uri", "homepage_url": "client_uri", "website": "client_uri", "url": "client_uri", "client_url": "client_uri",
	"logo": "logo_uri", "logo_url": "logo_uri", "icon": "logo_uri", "icon_uri": "logo_uri",
	"tos": "tos_uri", "tos_url": "tos_uri", "terms": "tos_uri", "terms_uri": "tos_uri", "terms_url": "tos_uri", "terms_of_service": "tos_uri", "terms_of_service_uri": "tos_uri",
	"privacy": "policy_uri", "privacy_uri": "policy_uri", "privacy_url": "policy_uri", "privacy_policy": "policy_uri", "privacy_policy_uri": "policy_uri", "privacy_policy_url": "policy_uri", "policy_url": "policy_uri",
	"contact": "contacts", "emails": "contacts", "email": "contacts", "contact_emails": "contacts",
	"initiation_url": "initiation_uri", "initiate_uri": "initiation_uri", "start_uri": "initiation_uri", "start_url": "initiation_uri",
	"settings_url": "settings_uri",
	"redirect_uri": "redirect_uris", "redirect_url": "redirect_uris", "redirect_urls": "redirect_uris", "callback_uri": "redirect_uris", "callback_url": "redirect_uris", "callback_urls": "redirect_uris", "redirects": "redirect_uris",
	"scopes": "scope",
	"pkce":   "pkce_supported", "pkce_support": "pkce_supported", "pkce_enabled": "pkce_supported", "use_pkce": "pkce_supported", "pkce_required": "pkce_supported",
	"auth_method": "token_endpoint_auth_method", "token_auth_method": "token_endpoint_auth_method", "client_authentication": "token_endpoint_auth_method",
	"subject": "subject_type", "subject_type_preference": "subject_type",
}

// suggestField returns the field an unknown key most likely meant: a known
// alias, a field the key is the start of ("pkce" for pkce_supported), or
// the closest field name.
func suggestField(key string, names []string) string {
	norm := suggest.Normalize(key)
	if f, ok := fieldAliases[norm]; ok {
		return f
	}
	if len(norm) >= 3 {
		for _, name := range names {
			if strings.HasPrefix(name, norm+"_") {
				return name
			}
		}
	}
	return suggest.Closest(key, names)
}

// shortKey quotes a field name for a message when it needs it, and
// shortens a long one: a key is the partner's text, never trusted to be
// short or printable.
func shortKey(key string) string {
	const max = 64
	if len(key) > max {
		key = key[:max] + "..."
	}
	for _, r := range key {
		if !(r == '_' || r == '-' || r == '.' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return fmt.Sprintf("%q", key)
		}
	}
	return key
}

// secretWords are the pieces of a field name that mark it as holding a
// secret. Known fields (token_endpoint_auth_method) are matched first.
var secretWords = []string{"secret", "password", "passwd", "token", "apikey", "api_key", "private_key", "privatekey", "credential", "verifier", "access_key", "accesskey"}

func secretLooking(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func describeToken(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "a list"
	case string:
		return "a single string"
	case float64:
		return "a single number"
	case bool:
		return "a single true/false value"
	}
	return "not a mapping"
}

// describeJSON names the kind of a JSON value without repeating it.
func describeJSON(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '[':
		return "a list"
	case '{':
		return "a mapping"
	case 't', 'f':
		return "true/false"
	case 'n':
		return "null"
	}
	return "a number"
}

// ParseAndCheck parses a registration document and checks it for env in one
// pass, as a CI job or the pleo-oauth command does: the report holds
// [ParseRegistration]'s findings (unknown fields, secrets, wrong types) as
// errors together with [Registration.Check]'s, in the order of Pleo's form.
// A field with a parsing finding gets no further finding from Check: a
// wrong-typed client_name is not also reported as missing. And the document
// tells a missing pkce_supported from one set to false, which a
// [Registration] cannot. So a test that keeps a partner's manifest valid
// gets, in one report, what pleo-oauth validate prints for it.
//
// The error is non-nil only when the document is not JSON or YAML at all
// (a [*SyntaxError]); the registration is then nil.
func ParseAndCheck(data []byte, env Environment) (*Registration, Report, error) {
	reg, seen, err := parse(data)
	var parsed ValidationErrors
	if err != nil && !errors.As(err, &parsed) {
		return nil, Report{}, err
	}
	// The document says whether pkce_supported was given, which the struct
	// cannot: a missing one is reported as missing, not as false.
	c := &checker{env: env, pkceMissing: !seen["pkce_supported"]}
	report := c.run(reg)
	if len(parsed) == 0 {
		return reg, report, nil
	}
	flagged := make(map[string]bool, len(parsed))
	for _, f := range parsed {
		flagged[f.Field] = true
	}
	keep := func(f FieldError) bool { return !flagged[fieldOf(f.Field)] }
	errs := append([]FieldError(parsed), filter(report.Errors, keep)...)
	sortByField(errs)
	report.Errors = errs
	report.Warnings = filter(report.Warnings, keep)
	return reg, report, nil
}

// fieldOf returns the field a path is in: "contacts" for "contacts[1]".
func fieldOf(path string) string {
	if i := strings.IndexByte(path, '['); i > 0 {
		return path[:i]
	}
	return path
}

func filter(v []FieldError, keep func(FieldError) bool) []FieldError {
	var out []FieldError
	for _, f := range v {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}
