package main

import (
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
	envName := fs.String("env", "production", "environment whose rules apply: staging or production")
	format := fs.String("format", "markdown", "output format: markdown (a table like Pleo's Example Registration) or json")
	args, status, carryOn := parseFlags(c, fs, args)
	if !carryOn {
		return status
	}
	env, err := pleooauth.ParseEnvironment(*envName)
	if err != nil {
		return usageError(c, fs, "--env %q: use staging or production", *envName)
	}
	if *format != "markdown" && *format != "json" {
		return usageError(c, fs, "--format %q: use markdown or json", *format)
	}
	if len(args) != 1 {
		return usageError(c, fs, "give exactly one FILE")
	}
	res := validateFile(c, args[0], env, false)
	if res.status != exitOK {
		// The findings go to stderr: stdout is for the form alone.
		writeText(&cli{stdout: c.stderr, color: false}, res, false)
		return res.status
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintf(c.stderr, "%s: %s to look at before submitting:\n", res.File, count(len(res.Warnings), "warning"))
		writeFindings(&cli{color: false}, c.stderr, nil, res.Warnings)
	}
	if *format == "json" {
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

// formRows are the form's parameters in the order and wording of Pleo's
// "How to Register an OAuth 2.0 Client" page.
func formRows(r *pleooauth.Registration) [][2]string {
	pkce := "Not supported"
	if r.PKCESupported {
		pkce = "Supported"
	}
	subject := map[pleooauth.SubjectType]string{
		pleooauth.SubjectNone:         "None",
		pleooauth.SubjectCompany:      "Company",
		pleooauth.SubjectOrganisation: "Organisation",
	}[r.SubjectType.Canonical()]
	return [][2]string{
		{"Client Name", r.ClientName},
		{"Client URI", r.ClientURI},
		{"Logo", r.LogoURI},
		{"Terms of Service", r.TOSURI},
		{"Privacy Policy", r.PolicyURI},
		{"Contacts", strings.Join(r.Contacts, " ")},
		{"Initiation URI", r.InitiationURI},
		{"Settings URI", r.SettingsURI},
		{"Redirect URIs", strings.Join(r.RedirectURIs, " ")},
		{"Scopes", strings.Join(strings.Fields(r.Scope), " ")},
		{"PKCE Support", pkce},
		{"Subject Type Preference", subject},
	}
}

// writeMarkdownForm prints the form as a two-column Markdown table, padded
// like the Example Registration table on Pleo's page. A parameter left
// empty says so.
func writeMarkdownForm(w io.Writer, r *pleooauth.Registration) {
	rows := formRows(r)
	width := [2]int{len("Parameter"), len("Value")}
	for i, row := range rows {
		if row[1] == "" {
			rows[i][1] = "(not set)"
		}
		rows[i][1] = strings.ReplaceAll(rows[i][1], "|", `\|`)
		width[0] = max(width[0], len(row[0]))
		width[1] = max(width[1], len(rows[i][1]))
	}
	fmt.Fprintf(w, "| %-*s | %-*s |\n", width[0], "Parameter", width[1], "Value")
	fmt.Fprintf(w, "| %s | %s |\n", strings.Repeat("-", width[0]), strings.Repeat("-", width[1]))
	for _, row := range rows {
		fmt.Fprintf(w, "| %-*s | %-*s |\n", width[0], row[0], width[1], row[1])
	}
}
