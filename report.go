package pleooauth

import "strings"

// FieldError is one problem found in a registration.
type FieldError struct {
	// Field is the JSON path of the field: "client_name", "contacts[0]",
	// "redirect_uris[1]", "scope". It is empty for a problem that concerns
	// no single field (an unknown environment).
	Field string `json:"field"`
	// Rule is a stable lower_snake identifier of the rule broken, one of
	// the Rule constants (or unknown_environment, for an unknown
	// environment). Match on it, not on Message.
	Rule Rule `json:"rule"`
	// Message is a sentence for a partner engineer that starts with the
	// field, if there is one, and says what to change. It never contains a
	// secret.
	Message string `json:"message"`
}

// Error returns the message, which names the field, after "pleooauth: ".
func (e FieldError) Error() string { return "pleooauth: " + e.Message }

// ValidationErrors is every problem found in a registration, in the order of
// Pleo's form. It is the error [Registration.Validate], [Report.Err] and
// [ParseRegistration] return, and it matches [ErrInvalidRegistration] with
// [errors.Is]. Each element can be reached with [errors.As] as a
// [FieldError].
type ValidationErrors []FieldError

// Error returns every message, after "pleooauth: invalid registration: ".
func (v ValidationErrors) Error() string {
	var b strings.Builder
	b.WriteString("pleooauth: invalid registration: ")
	for i, e := range v {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is reports whether target is [ErrInvalidRegistration].
func (v ValidationErrors) Is(target error) bool { return target == ErrInvalidRegistration }

// Unwrap returns the field errors, so that [errors.As] finds a [FieldError].
func (v ValidationErrors) Unwrap() []error {
	errs := make([]error, len(v))
	for i, e := range v {
		errs[i] = e
	}
	return errs
}

// Report is the outcome of [Registration.Check]: errors, which Pleo would
// refuse or which break the OAuth flow, and warnings, which Pleo accepts
// but which a partner should look at. Both are in the order of Pleo's form.
type Report struct {
	Errors   []FieldError `json:"errors"`
	Warnings []FieldError `json:"warnings"`
}

// Valid reports whether the report holds no errors. Warnings do not count.
func (r Report) Valid() bool { return len(r.Errors) == 0 }

// Err returns nil when the report holds no errors, and the errors as a
// [ValidationErrors] otherwise.
func (r Report) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	return ValidationErrors(r.Errors)
}
