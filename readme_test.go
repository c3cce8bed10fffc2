package pleooauth

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEQuickStartIsTheExample keeps the README's quick start the same
// code as the package Example, which `go test` runs and checks.
func TestREADMEQuickStartIsTheExample(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	_, body, ok := strings.Cut(string(src), "func Example() {\n")
	require.True(t, ok)
	body, _, ok = strings.Cut(body, "\t// Output:")
	require.True(t, ok)
	var lines []string
	for line := range strings.Lines(body) {
		lines = append(lines, strings.TrimPrefix(line, "\t"))
	}
	example := strings.Join(lines, "")

	_, block, ok := strings.Cut(readmeSection(t, "## Quick start\n"), "```go\n")
	require.True(t, ok)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok)
	require.Equal(t, example, block, "README's quick start differs from func Example in example_test.go")
}

// TestREADMELayout keeps the README's layout table and the tree in step:
// every path it names exists, it names every file of the root package, and
// every directory holding Go code is named or has a file named.
func TestREADMELayout(t *testing.T) {
	t.Parallel()
	table := readmeSection(t, "## Layout\n")
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

// readmeSection returns the README's section under heading, up to the
// next heading of its level.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), heading)
	require.True(t, ok, "the README has no %q", heading)
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

func namesFileIn(named map[string]bool, dir string) bool {
	for p := range named {
		if filepath.Dir(p) == dir {
			return true
		}
	}
	return false
}
