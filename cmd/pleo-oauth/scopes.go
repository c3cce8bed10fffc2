package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/partnerkit/pleooauth"
)

func runScopes(c *cli, args []string) int {
	fs := newFlagSet(c, "scopes", `Scopes lists the Pleo API scopes this tool knows: the scope, its API, what it
grants, and how sure the catalogue is of it (documented by Pleo, a Staging
testing value, unconfirmed, or legacy).`)
	format := fs.String("format", "text", "output format: text or json")
	args, status, carryOn := parseFlags(c, fs, args)
	if !carryOn {
		return status
	}
	if *format != "text" && *format != "json" {
		return usageError(c, fs, "--format %q: use text or json", *format)
	}
	if len(args) != 0 {
		return usageError(c, fs, "takes no arguments")
	}
	scopes := pleooauth.KnownScopes()
	if *format == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(scopes)
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tAPI\tSTATUS\tGRANTS")
	for _, s := range scopes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Scope, s.API, s.Status, s.Grants)
	}
	_ = tw.Flush()
	return exitOK
}
