package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/partnerkit/pleooauth"
)

// The rules of the findings validate makes itself, about a file it cannot
// check. Both are errors; package pleooauth's rules are about a document it
// could read.
const (
	ruleUnreadable  pleooauth.Rule = "unreadable"   // the file cannot be read
	ruleSyntaxError pleooauth.Rule = "syntax_error" // the file is not JSON or YAML (a *pleooauth.SyntaxError)
)

// result is what validate reports for one file; in --format json it is
// printed as one line.
type result struct {
	File        string                  `json:"file"`
	Environment pleooauth.Environment   `json:"environment"`
	Valid       bool                    `json:"valid"`
	Errors      []pleooauth.FieldError  `json:"errors"`
	Warnings    []pleooauth.FieldError  `json:"warnings"`
	status      int                     // exit status for this file
	reg         *pleooauth.Registration // nil when it could not be read
}

func runValidate(c *cli, args []string) int {
	fs := newFlagSet(c, "validate", `Validate checks each registration file (JSON or YAML; - for standard input)
against every rule Pleo states for the environment, and reports every problem
at once. It exits 0 when all files are valid (warnings allowed unless
--strict), 1 when any has errors (or warnings, with --strict), and 2 on a
usage error, an unreadable file or input that is not JSON or YAML.`)
	strict := fs.Bool("strict", false, "fail on warnings too")
	args, env, format, status, carryOn := parseEnvFormat(c, fs, args,
		"output format: text, or json for one JSON object per file per line", "text", "json")
	if !carryOn {
		return status
	}
	if len(args) == 0 {
		return usageError(c, fs, "no FILE given")
	}
	worst := exitOK
	for _, name := range args {
		res := validateFile(c, name, env, *strict)
		if format == "json" {
			writeJSONLine(c.stdout, res)
		} else {
			writeText(c.stdout, c.color, res, *strict)
		}
		worst = max(worst, res.status)
	}
	return worst
}

// validateFile reads, parses and checks one file.
func validateFile(c *cli, name string, env pleooauth.Environment, strict bool) result {
	res := result{File: name, Environment: env, Errors: []pleooauth.FieldError{}, Warnings: []pleooauth.FieldError{}}
	data, err := readInput(c, name)
	if err != nil {
		res.status = exitUsage
		res.Errors = append(res.Errors, pleooauth.FieldError{Rule: ruleUnreadable, Message: err.Error()})
		return res
	}
	reg, report, err := parseFile(name, data, env)
	var serr *pleooauth.SyntaxError
	if errors.As(err, &serr) {
		res.status = exitUsage
		msg := serr.Msg
		if serr.Line > 0 {
			msg = fmt.Sprintf("line %d, column %d: %s", serr.Line, serr.Column, serr.Msg)
		}
		res.Errors = append(res.Errors, pleooauth.FieldError{Rule: ruleSyntaxError, Message: msg})
		return res
	}
	res.reg = reg
	res.Errors = append(res.Errors, report.Errors...)
	res.Warnings = append(res.Warnings, report.Warnings...)
	if len(res.Errors) > 0 || strict && len(res.Warnings) > 0 {
		res.status = exitFindings
	}
	res.Valid = res.status == exitOK
	return res
}

// parseFile parses data by its file name: a .json file must hold JSON;
// anything else (YAML, or standard input) is told apart by its content.
func parseFile(name string, data []byte, env pleooauth.Environment) (*pleooauth.Registration, pleooauth.Report, error) {
	if strings.EqualFold(filepath.Ext(name), ".json") {
		trimmed := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
		if len(trimmed) > 0 && trimmed[0] != '{' && trimmed[0] != '[' {
			return nil, pleooauth.Report{}, &pleooauth.SyntaxError{Line: 1, Column: 1, Msg: "a .json file must hold a JSON object"}
		}
	}
	return pleooauth.ParseAndCheck(data, env)
}

// readInput reads a named file, or standard input for "-", up to one byte
// past the size ParseRegistration accepts (so that it can say the file is
// too large).
func readInput(c *cli, name string) ([]byte, error) {
	const limit = pleooauth.MaxRegistrationBytes + 1
	if name == "-" {
		return io.ReadAll(io.LimitReader(c.stdin, limit))
	}
	return readFile(name, "a registration file", limit)
}

// readFile reads at most limit bytes of a named file; what names the kind
// of file expected, for the error about a directory.
func readFile(name, what string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, cleanPathError(err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not %s", name, what)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, cleanPathError(err)
	}
	return data, nil
}

// cleanPathError turns "open x.yaml: no such file or directory" into
// "x.yaml: no such file or directory".
func cleanPathError(err error) error {
	var perr *os.PathError
	if errors.As(err, &perr) {
		return fmt.Errorf("%s: %w", perr.Path, perr.Err)
	}
	return err
}

func writeJSONLine(w io.Writer, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Every value printed here marshals; say so if one ever does not.
		data, _ = json.Marshal(map[string]string{"error": "pleo-oauth: cannot encode result"})
	}
	data = append(data, '\n')
	_, _ = w.Write(data)
}

// writeText prints, with severities coloured when color is set, a header line with the counts, then one aligned line a
// finding: severity, field, message.
func writeText(w io.Writer, color bool, res result, strict bool) {
	name := res.File
	if name == "-" {
		name = "<stdin>"
	}
	switch res.status {
	case exitUsage:
		fmt.Fprintf(w, "%s: cannot be checked: %s\n", name, res.Errors[0].Message)
		return
	case exitOK:
		fmt.Fprintf(w, "%s: valid for %s (%s, %s)\n", name, res.Environment, count(len(res.Errors), "error"), count(len(res.Warnings), "warning"))
	default:
		verdict := "invalid"
		if len(res.Errors) == 0 && strict {
			verdict = "fails --strict"
		}
		fmt.Fprintf(w, "%s: %s for %s (%s, %s)\n", name, verdict, res.Environment, count(len(res.Errors), "error"), count(len(res.Warnings), "warning"))
	}
	writeFindings(w, color, res.Errors, res.Warnings)
}

// writeFindings prints findings as aligned lines, errors first.
func writeFindings(w io.Writer, color bool, errs, warnings []pleooauth.FieldError) {
	width := 0
	for _, f := range append(errs[:len(errs):len(errs)], warnings...) {
		width = max(width, len(f.Field))
	}
	line := func(severity string, f pleooauth.FieldError) {
		msg := strings.TrimPrefix(f.Message, f.Field+" ")
		label := fmt.Sprintf("%-7s", severity)
		if color {
			code := "33" // yellow
			if severity == "error" {
				code = "31" // red
			}
			label = "\x1b[" + code + "m" + label + "\x1b[0m"
		}
		fmt.Fprintf(w, "  %s  %-*s  %s\n", label, width, f.Field, msg)
	}
	for _, f := range errs {
		line("error", f)
	}
	for _, f := range warnings {
		line("warning", f)
	}
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
