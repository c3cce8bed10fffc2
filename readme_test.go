package pleooauth

import (
	"os"
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

	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, quick, ok := strings.Cut(string(readme), "## Quick start")
	require.True(t, ok)
	_, block, ok := strings.Cut(quick, "```go\n")
	require.True(t, ok)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok)
	require.Equal(t, example, block, "README's quick start differs from func Example in example_test.go")
}
