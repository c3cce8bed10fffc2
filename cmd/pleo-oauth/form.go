package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/partnerkit/pleooauth"
)

func runForm(c *cli, args []string) int {
	fs := newFlagSet(c, "form", `Form prints what to type into Pleo's Developer Partner Registration form, in
the form's order and wording. It refuses (exit 1) a registration that has
errors, and prints the findings instead; warnings go to standard error.`)
	args, env, format, status, carryOn := parseEnvFormat(c, fs, args,
		"output format: markdown (a table like Pleo's Example Registration) or json", "markdown", "json")
	if !carryOn {
		return status
	}
	if len(args) != 1 {
		return usageError(c, fs, "give exactly one FILE")
	}
	res := validateFile(c, args[0], env, false)
	if res.status != exitOK {
		// The findings go to stderr: stdout is for the form alone.
		writeText(c.stderr, false, res, false)
		return res.status
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintf(c.stderr, "%s: %s to look at before submitting:\n", res.File, count(len(res.Warnings), "warning"))
		writeFindings(c.stderr, false, nil, res.Warnings)
	}
	if format == "json" {
		reg := *res.reg
		reg.SubjectType = reg.SubjectType.Canonical()
		reg.TokenEndpointAuthMethod = reg.AuthMethod()
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(&reg)
		return exitOK
	}
	writeMarkdownForm(c.stdout, res.reg)
	return exitOK
}

// writeMarkdownForm prints the form as a two-column Markdown table, padded
// like the Example Registration table on Pleo's page. A parameter left
// empty says so.
func writeMarkdownForm(w io.Writer, r *pleooauth.Registration) {
	var rows [][2]string
	width := [2]int{len("Parameter"), len("Value")}
	for _, e := range r.Form() {
		value := cmp.Or(e.Value, "(not set)")
		value = strings.ReplaceAll(value, "|", `\|`)
		rows = append(rows, [2]string{e.Label, value})
		width[0] = max(width[0], len(e.Label))
		width[1] = max(width[1], len(value))
	}
	fmt.Fprintf(w, "| %-*s | %-*s |\n", width[0], "Parameter", width[1], "Value")
	fmt.Fprintf(w, "| %s | %s |\n", strings.Repeat("-", width[0]), strings.Repeat("-", width[1]))
	for _, row := range rows {
		fmt.Fprintf(w, "| %-*s | %-*s |\n", width[0], row[0], width[1], row[1])
	}
}
