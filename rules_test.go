package pleooauth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryRuleIsMarked: each Rule constant declared in rules.go is in the
// severities table, and the table holds nothing else, so no rule is an
// error by default because it was forgotten.
func TestEveryRuleIsMarked(t *testing.T) {
	t.Parallel()
	file, err := parser.ParseFile(token.NewFileSet(), "rules.go", nil, 0)
	require.NoError(t, err)
	declared := map[Rule]bool{}
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || spec.Type == nil || spec.Type.(*ast.Ident).Name != "Rule" {
			return true
		}
		for _, v := range spec.Values {
			s, err := strconv.Unquote(v.(*ast.BasicLit).Value)
			require.NoError(t, err)
			declared[Rule(s)] = true
		}
		return true
	})
	require.True(t, declared[RuleRequired] && declared[RuleTooMany] && declared[ruleUnknownEnvironment], "the walk of rules.go found %v", declared)
	for rule := range declared {
		_, marked := severities[rule]
		assert.True(t, marked, "rule %s is not marked error or warning in severities", rule)
	}
	for rule := range severities {
		assert.True(t, declared[rule], "severities marks %s, which rules.go does not declare", rule)
	}
}

func TestRuleWarning(t *testing.T) {
	t.Parallel()
	assert.True(t, RuleMissingRecommended.Warning())
	assert.True(t, RulePKCERecommended.Warning())
	assert.False(t, RuleRequired.Warning())
	assert.False(t, ruleUnknownEnvironment.Warning())
	assert.False(t, RuleScopeTypo.Warning(), "a likely typo of a documented scope is an error")
	assert.True(t, RuleUnknownScope.Warning())
	assert.False(t, Rule("no_such_rule").Warning())
}
