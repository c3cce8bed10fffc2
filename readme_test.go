package pleooauth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxREADMELines keeps the README the front door: what, for whom, the two
// commands, install, a quick start and links. The manual lives in docs/.
const maxREADMELines = 200

// TestREADMEQuickStartNamesWhatExists: every name the README's quick
// start calls in this module's packages (pleooauth.X, connect.X, ...) is
// one they declare, and every file its commands name exists; the example
// it runs, examples/minimal, is tested with two instances of its own.
func TestREADMEQuickStartNamesWhatExists(t *testing.T) {
	t.Parallel()
	section := docSection(t, "README.md", "## Quick start\n")
	dirs := map[string]string{
		"pleooauth": ".", "connect": "connect", "sqlitestore": "connect/sqlitestore",
		"pgstore": "connect/pgstore", "pleooauthtest": "pleooauthtest",
	}
	declared := map[string]map[string]bool{}
	for pkg, dir := range dirs {
		declared[pkg] = declaredNames(t, dir)
	}
	uses := regexp.MustCompile(`\b(pleooauth|connect|sqlitestore|pgstore|pleooauthtest)\.([A-Z]\w*)`).FindAllStringSubmatch(codeBlock(t, section, "```go\n"), -1)
	require.NotEmpty(t, uses)
	for _, u := range uses {
		assert.True(t, declared[u[1]][u[2]], "the quick start calls %s.%s, which %s does not declare", u[1], u[2], dirs[u[1]])
	}
	paths := regexp.MustCompile(`examples/[\w/.-]+\.(?:yaml|go)|\./examples/\w+`).FindAllString(section, -1)
	require.NotEmpty(t, paths)
	for _, p := range paths {
		_, err := os.Stat(p)
		assert.NoError(t, err, "the quick start names %s", p)
	}
}

// declaredNames returns the exported top-level names the package in dir
// declares.
func declaredNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	names := map[string]bool{}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch sp := spec.(type) {
					case *ast.TypeSpec:
						names[sp.Name.Name] = true
					case *ast.ValueSpec:
						for _, n := range sp.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return names
}

// TestLayoutTableNamesTheTree keeps the layout table of docs/layout.md and
// the tree in step: every path it names exists, it names every file of the
// root package, and every directory holding Go code is named or has a file
// named.
func TestLayoutTableNamesTheTree(t *testing.T) {
	t.Parallel()
	table := docSection(t, "docs/layout.md", "# Layout\n")
	named := map[string]bool{}
	for line := range strings.Lines(table) {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.Contains(cells[1], "`") {
			continue
		}
		for _, p := range strings.Split(cells[1], ",") {
			p = strings.Trim(strings.TrimSpace(p), "`")
			_, err := os.Stat(p)
			require.NoError(t, err, "the layout table names %s", p)
			named[p] = true
		}
	}
	require.NotEmpty(t, named, "docs/layout.md has no layout table")
	var unnamed []string
	require.NoError(t, filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != "." && (name == "testdata" || strings.HasPrefix(name, ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		if dir == "." && !named[path] {
			unnamed = append(unnamed, path)
		}
		if dir != "." && !named[dir] && !namesFileIn(named, dir) {
			unnamed = append(unnamed, dir)
		}
		return nil
	}))
	require.Empty(t, unnamed, "the layout table does not name these")
}

// TestREADMEIsTheFrontDoor keeps the README short and every page of the
// manual reachable from it: the README links only docs/*.md files that
// exist, and links every one of them.
func TestREADMEIsTheFrontDoor(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	lines := strings.Count(string(readme), "\n")
	assert.LessOrEqual(t, lines, maxREADMELines, "README.md has %d lines: move the manual into docs/", lines)

	linked := map[string]bool{}
	for _, target := range markdownLinks(string(readme)) {
		file, _, _ := strings.Cut(target, "#")
		if strings.HasPrefix(file, "docs/") && strings.HasSuffix(file, ".md") {
			assert.FileExists(t, file, "README.md links %s", target)
			linked[file] = true
		}
	}
	pages, err := filepath.Glob("docs/*.md")
	require.NoError(t, err)
	require.NotEmpty(t, pages)
	for _, page := range pages {
		assert.True(t, linked[filepath.ToSlash(page)], "README.md does not link %s", page)
	}
}

// TestDocsLinksResolve: every relative link in the README and in docs/
// (pages, images, anchors) reaches a file, and a heading in it.
func TestDocsLinksResolve(t *testing.T) {
	t.Parallel()
	pages, err := filepath.Glob("docs/*.md")
	require.NoError(t, err)
	for _, page := range append([]string{"README.md"}, pages...) {
		src, err := os.ReadFile(page)
		require.NoError(t, err)
		for _, target := range markdownLinks(string(src)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
			}
			if !assert.FileExists(t, path, "%s links %s", page, target) || anchor == "" {
				continue
			}
			doc, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Contains(t, headingAnchors(string(doc)), anchor, "%s links %s: no such heading", page, target)
		}
	}
}

// TestCommandDocUsageIsTheREADMEs keeps the synopsis in docs/command.md the
// same as the README's, which TestREADMEUsage in cmd/pleo-oauth checks
// against what 'pleo-oauth help' prints.
func TestCommandDocUsageIsTheREADMEs(t *testing.T) {
	t.Parallel()
	readme := codeBlock(t, docSection(t, "README.md", "## The pleo-oauth command\n"), "```\n")
	manual := codeBlock(t, docSection(t, "docs/command.md", "# The pleo-oauth command\n"), "```\n")
	require.Equal(t, readme, manual, "docs/command.md's synopsis differs from the README's")
}

// TestREADMEConnectionsSketchIsTheManuals keeps the README's wiring of
// package connect the one docs/connections.md explains.
func TestREADMEConnectionsSketchIsTheManuals(t *testing.T) {
	t.Parallel()
	readme := codeBlock(t, docSection(t, "README.md", "## Quick start\n"), "```go\n")
	manual := codeBlock(t, docSection(t, "docs/connections.md", "# Connections: many Pleo companies, several instances\n"), "```go\n")
	require.Equal(t, manual, readme, "README's connections sketch differs from docs/connections.md's")
}

// docSection returns the section of the Markdown file under heading, up to
// the next heading of level two ("## "), or of level one for a heading of
// level one.
func docSection(t *testing.T, file, heading string) string {
	t.Helper()
	doc, err := os.ReadFile(file)
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(doc), heading)
	require.True(t, ok, "%s has no %q", file, heading)
	next := "\n## "
	if strings.HasPrefix(heading, "# ") {
		next = "\n# "
	}
	section, _, _ = strings.Cut(section, next)
	return section
}

// codeBlock returns the first fenced block in section opened by fence.
func codeBlock(t *testing.T, section, fence string) string {
	t.Helper()
	_, block, ok := strings.Cut(section, fence)
	require.True(t, ok, "no %q block", strings.TrimSpace(fence))
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok, "an unclosed %q block", strings.TrimSpace(fence))
	return block
}

var markdownLink = regexp.MustCompile(`\]\(([^()\s]+)\)`)

// markdownLinks returns the targets of the links and images in a Markdown
// document, outside fenced code blocks.
func markdownLinks(doc string) []string {
	var targets []string
	fenced := false
	for line := range strings.Lines(doc) {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range markdownLink.FindAllStringSubmatch(line, -1) {
			targets = append(targets, m[1])
		}
	}
	return targets
}

// headingAnchors returns the anchors GitHub gives a document's headings:
// lower case, spaces as hyphens, other punctuation dropped.
func headingAnchors(doc string) []string {
	var anchors []string
	fenced := false
	for line := range strings.Lines(doc) {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchors = append(anchors, b.String())
	}
	return anchors
}

func namesFileIn(named map[string]bool, dir string) bool {
	for p := range named {
		if filepath.Dir(p) == dir {
			return true
		}
	}
	return false
}
