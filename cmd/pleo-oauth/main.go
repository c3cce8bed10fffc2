// Command pleo-oauth checks a Pleo OAuth 2.0 client registration kept in a
// partner's repository, the way Pleo will, and prints what to type into
// Pleo's Developer Partner Registration form. Its commands are validate,
// form, scopes, logo, demo, login and fake; 'pleo-oauth help' prints their
// usage and 'pleo-oauth help COMMAND' a command's flags. The usage is
// written once, in the command list, and the README's copy is tested
// against it.
//
// validate exits 0 when every file is valid (warnings allowed unless
// --strict), 1 when any has errors (or warnings, with --strict), and 2 on
// a usage error, an unreadable file, or input that is not JSON or YAML.
// It never reads, prints or stores a client secret. fake prints one: the
// secret it makes up for its own fake Pleo, which works nowhere else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/suggest"
)

// Exit statuses.
const (
	exitOK       = 0 // valid
	exitFindings = 1 // errors found, or warnings with --strict
	exitUsage    = 2 // usage error, unreadable file, not JSON or YAML
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// cli is what a command works with: its streams, whether to colour, and
// what it reaches beyond the process. newCLI sets them for a real run;
// tests point the last ones at their own servers.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	color          bool

	loginEndpoint   *pleooauth.Endpoints // login: nil for Pleo's Staging endpoints
	loginHTTPClient *http.Client         // login: the token endpoint's client; nil for http.DefaultClient
	logoClient      *http.Client         // logo: fetches a logo by URL
	logoTimeout     time.Duration        // logo: how long a fetch may take
	fakeContext     context.Context      // fake: serves until it is done, or SIGINT or SIGTERM; nil for context.Background()
}

// newCLI is the command as a user runs it, on these streams.
func newCLI(stdin io.Reader, stdout, stderr io.Writer) *cli {
	return &cli{
		stdin: stdin, stdout: stdout, stderr: stderr,
		color:       useColor(stdout, os.Getenv),
		logoClient:  newLogoClient(),
		logoTimeout: logoTimeout,
	}
}

type command struct {
	name    string
	args    string
	summary string
	run     func(c *cli, args []string) int
}

// commands lists the commands, in the order help shows them. It is a
// function, not a variable: the commands print their usage from this list,
// and a variable that refers to itself through them cannot be initialised.
func commands() []command {
	return []command{
		{"validate", "[--env staging|production] [--format text|json] [--strict] FILE...", "check registration files the way Pleo will", runValidate},
		{"form", "[--env staging|production] [--format markdown|json] FILE", "print what to type into Pleo's registration form", runForm},
		{"scopes", "[--format text|json]", "list the Pleo API scopes this tool knows", runScopes},
		{"logo", "FILE|URL", "check that a logo image is square (1:1)", runLogo},
		{"demo", "", "run the whole OAuth path against a fake Pleo, in this process", runDemo},
		{"login", "--env staging --registration FILE [--out FILE] [--timeout D] [--no-browser]", "authorise against Pleo's Staging from this machine and save the tokens", runLogin},
		{"fake", "--registration FILE [--addr HOST:PORT]", "serve a fake Pleo for an app on this machine until interrupted", runFake},
	}
}

// run is the whole command, with its streams, so tests drive every path
// in-process. It returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newCLI(stdin, stdout, stderr).run(args)
}

func (c *cli) run(args []string) int {
	if len(args) == 0 {
		usage(c.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(c.stdout)
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintf(c.stdout, "pleo-oauth version %s %s\n", version(), runtime.Version())
		return exitOK
	case "help":
		if len(args) == 1 {
			usage(c.stdout)
			return exitOK
		}
		cmd, ok := lookup(args[1])
		if !ok || len(args) > 2 {
			fmt.Fprintf(c.stderr, "pleo-oauth help %s: unknown command\nRun 'pleo-oauth help' for usage.\n", strings.Join(args[1:], " "))
			return exitUsage
		}
		return cmd.run(c, []string{"-h"})
	}
	cmd, ok := lookup(args[0])
	if !ok {
		names := make([]string, len(commands()))
		for i, cmd := range commands() {
			names[i] = cmd.name
		}
		fmt.Fprintf(c.stderr, "pleo-oauth %s: unknown command%s\n", args[0], suggest.DidYouMean(args[0], names))
		usage(c.stderr)
		return exitUsage
	}
	return cmd.run(c, args[1:])
}

func lookup(name string) (command, bool) {
	for _, cmd := range commands() {
		if cmd.name == name {
			return cmd, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprint(w, "pleo-oauth checks a Pleo OAuth 2.0 client registration kept in your repository, and runs its OAuth flow.\n\nUsage:\n\n")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "\t%s\n", strings.TrimSpace("pleo-oauth "+cmd.name+" "+cmd.args))
	}
	fmt.Fprint(w, "\nCommands:\n\n")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "\t%-9s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, "\nRun 'pleo-oauth help <command>' for a command's flags.\n")
}

// newFlagSet makes a command's flag set, printing its usage and flag errors
// to stderr.
func newFlagSet(c *cli, name, detail string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cmd, _ := lookup(name)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s\n\n%s\n", strings.TrimSpace("pleo-oauth "+name+" "+cmd.args), detail)
		if hasFlags(fs) {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args, flags and file names in any order (as in
// "validate FILE --env staging"); "--" ends the flags, so a file named
// "-x" can follow it. It returns the arguments that are not flags, and
// carryOn false with the exit status to stop with: help asked for is
// printed to stdout with status 0, a flag error to stderr with the usage
// and status 2.
func parseFlags(c *cli, fs *flag.FlagSet, args []string) (rest []string, status int, carryOn bool) {
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(c.stderr)
	for {
		err := fs.Parse(args)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(c.stdout)
			fs.Usage()
			return nil, exitOK, false
		case err != nil:
			fs.SetOutput(c.stderr)
			fmt.Fprintf(c.stderr, "pleo-oauth %s: %v\n", fs.Name(), err)
			fs.Usage()
			return nil, exitUsage, false
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, 0, true
		}
		if consumed := len(args) - len(left); consumed > 0 && args[consumed-1] == "--" {
			return append(rest, left...), 0, true
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}

// usageError prints a usage problem and the command's usage to stderr.
func usageError(c *cli, fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "pleo-oauth %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return exitUsage
}

// parseEnvFormat defines --env (default production) and --format (one of
// formats, the first the default) on fs, parses args with parseFlags and
// checks both values. It returns carryOn false with the status to stop
// with, having printed why.
func parseEnvFormat(c *cli, fs *flag.FlagSet, args []string, formatUsage string, formats ...string) (rest []string, env pleooauth.Environment, format string, status int, carryOn bool) {
	envName := fs.String("env", "production", "environment whose rules apply: staging or production")
	fs.StringVar(&format, "format", formats[0], formatUsage)
	rest, status, carryOn = parseFlags(c, fs, args)
	if !carryOn {
		return nil, "", "", status, false
	}
	env, err := pleooauth.ParseEnvironment(*envName)
	if err != nil {
		return nil, "", "", usageError(c, fs, "--env %q: use staging or production", *envName), false
	}
	if !slices.Contains(formats, format) {
		return nil, "", "", usageError(c, fs, "--format %q: use %s", format, strings.Join(formats, " or ")), false
	}
	return rest, env, format, exitOK, true
}

func version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// useColor reports whether to colour output: only on a terminal, and only
// when NO_COLOR is unset or empty (https://no-color.org) and TERM is not
// "dumb".
func useColor(w io.Writer, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
